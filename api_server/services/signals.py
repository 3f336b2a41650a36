"""SignalService: GetOrCreateSignal, ListSignals, SetSignal."""

from __future__ import annotations

from flyteidl.admin import signal_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend

SIGNALS = "/flyteidl.service.SignalService/"


def handlers(backend: Backend) -> dict[str, Handler]:
    signals = backend.signals

    async def get_or_create(
        request: signal_pb2.SignalGetOrCreateRequest, ctx: CallContext
    ) -> signal_pb2.Signal:
        return await signals.get_or_create(request)

    async def list_(
        request: signal_pb2.SignalListRequest, ctx: CallContext
    ) -> signal_pb2.SignalList:
        return await signals.list(request)

    async def set_(
        request: signal_pb2.SignalSetRequest, ctx: CallContext
    ) -> signal_pb2.SignalSetResponse:
        await signals.set(request)
        return signal_pb2.SignalSetResponse()

    return {
        SIGNALS + "GetOrCreateSignal": get_or_create,
        SIGNALS + "ListSignals": list_,
        SIGNALS + "SetSignal": set_,
    }
