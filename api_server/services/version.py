"""GetVersion: the control plane's build, version and build time (§13.1)."""

from __future__ import annotations

from importlib import metadata

from flyteidl.admin import version_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend

DISTRIBUTION = "flyteadmin-k8s"


def package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def handlers(backend: Backend) -> dict[str, Handler]:
    response = version_pb2.GetVersionResponse(
        control_plane_version=version_pb2.Version(
            Build="python", Version=package_version(), BuildTime=""
        )
    )

    async def get_version(request: version_pb2.GetVersionRequest, ctx: CallContext):
        return response

    return {"/flyteidl.service.AdminService/GetVersion": get_version}
