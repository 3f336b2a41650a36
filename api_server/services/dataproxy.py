"""The DataProxyService: upload and download locations, download links (decks) and GetData."""

from __future__ import annotations

from flyteidl.service import dataproxy_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend
from flyteadmin.core.dataproxy import DataProxy

DATA_PROXY = "/flyteidl.service.DataProxyService/"


def handlers(backend: Backend) -> dict[str, Handler]:
    proxy = DataProxy(
        backend.blobs, backend.projects, backend.settings.data_proxy, events=backend.events
    )

    async def upload(
        request: dataproxy_pb2.CreateUploadLocationRequest, ctx: CallContext
    ) -> dataproxy_pb2.CreateUploadLocationResponse:
        return await proxy.create_upload_location(request)

    async def download(
        request: dataproxy_pb2.CreateDownloadLocationRequest, ctx: CallContext
    ) -> dataproxy_pb2.CreateDownloadLocationResponse:
        return await proxy.create_download_location(request)

    async def download_link(
        request: dataproxy_pb2.CreateDownloadLinkRequest, ctx: CallContext
    ) -> dataproxy_pb2.CreateDownloadLinkResponse:
        return await proxy.create_download_link(request)

    async def get_data(
        request: dataproxy_pb2.GetDataRequest, ctx: CallContext
    ) -> dataproxy_pb2.GetDataResponse:
        return await proxy.get_data(request)

    return {
        DATA_PROXY + "CreateUploadLocation": upload,
        DATA_PROXY + "CreateDownloadLocation": download,
        DATA_PROXY + "CreateDownloadLink": download_link,
        DATA_PROXY + "GetData": get_data,
    }
