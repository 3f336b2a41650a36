"""CreateUploadLocation and CreateDownloadLocation. CreateDownloadLink and GetData read
executions and stay UNIMPLEMENTED (the registry's default) until those land."""

from __future__ import annotations

from flyteidl.service import dataproxy_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend
from flyteadmin.core.dataproxy import DataProxy

DATA_PROXY = "/flyteidl.service.DataProxyService/"


def handlers(backend: Backend) -> dict[str, Handler]:
    proxy = DataProxy(backend.blobs, backend.projects, backend.settings.data_proxy)

    async def upload(
        request: dataproxy_pb2.CreateUploadLocationRequest, ctx: CallContext
    ) -> dataproxy_pb2.CreateUploadLocationResponse:
        return await proxy.create_upload_location(request)

    async def download(
        request: dataproxy_pb2.CreateDownloadLocationRequest, ctx: CallContext
    ) -> dataproxy_pb2.CreateDownloadLocationResponse:
        return await proxy.create_download_location(request)

    return {
        DATA_PROXY + "CreateUploadLocation": upload,
        DATA_PROXY + "CreateDownloadLocation": download,
    }
