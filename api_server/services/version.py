"""GetVersion: the control plane's version, the git commit it was built from, and when (§13.1),
which ``flytectl version`` shows as the control plane's Version, Build and BuildTime."""

from __future__ import annotations

from flyteidl.admin import version_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.buildinfo import build_info
from flyteadmin.core.backend import Backend


def handlers(backend: Backend) -> dict[str, Handler]:
    info = build_info()
    response = version_pb2.GetVersionResponse(
        control_plane_version=version_pb2.Version(
            Build=info.commit, Version=info.version, BuildTime=info.build_time
        )
    )

    async def get_version(
        request: version_pb2.GetVersionRequest, ctx: CallContext
    ) -> version_pb2.GetVersionResponse:
        return response

    return {"/flyteidl.service.AdminService/GetVersion": get_version}
