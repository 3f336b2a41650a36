"""Typed access to grpc.aio's unary-unary method handlers, and their decorations.

A decoration changes one method's handler (telemetry, authentication, lenient decoding) and is
applied once per method, when the method is first served: a ``grpc.aio.ServerInterceptor``
would run per call, and its pipeline, with the handler it rebuilds for each call, cost 7% of
the server's CPU for a GetProject (bench/README.md, "Decorations, not interceptors").

grpc's stubs type a handler's behaviour for the synchronous server (a function of the request
and a ``grpc.ServicerContext``); under ``grpc.aio`` it is a coroutine function of the request and
a ``grpc.aio.ServicerContext``. Every flyteidl RPC and health's Check are unary-unary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias, cast

import grpc
import grpc.aio

# Strings: grpc's classes are generic in its stubs only.
AioContext: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Behaviour: TypeAlias = "Callable[[Any, AioContext], Awaitable[Any]]"
MethodHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[MethodHandler | None]]"
Deserializer = Callable[[bytes], Any]
Serializer = Callable[[Any], bytes]


def behaviour_of(handler: MethodHandler) -> Behaviour | None:
    """The handler's unary-unary behaviour (None for a streaming method)."""
    return cast("Behaviour | None", handler.unary_unary)


def rebuilt(
    handler: MethodHandler,
    behaviour: Behaviour,
    *,
    deserializer: Deserializer | None = None,
    serializer: Serializer | None = None,
) -> MethodHandler:
    """A unary-unary ``handler`` with another behaviour (and (de)serializer, when given)."""
    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=deserializer or handler.request_deserializer,
        response_serializer=serializer or handler.response_serializer,
    )


# (the method's path ``/package.Service/Method``, its handler) -> the handler to serve.
Decoration = Callable[[str, MethodHandler], MethodHandler]


def decorated(
    method: str, handler: MethodHandler, decorations: Sequence[Decoration]
) -> MethodHandler:
    """``handler`` with ``decorations`` applied, the first one outermost."""
    for decorate in reversed(decorations):
        handler = decorate(method, handler)
    return handler


class _DecoratedHandlers(grpc.GenericRpcHandler):
    """A generic handler's methods, each decorated the first time it is served. The cache holds
    only methods ``inner`` has, so a caller's made-up method names do not grow it."""

    def __init__(self, inner: grpc.GenericRpcHandler, decorations: Sequence[Decoration]) -> None:
        self._inner, self._decorations = inner, tuple(decorations)
        self._handlers: dict[str, MethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> MethodHandler | None:
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            found = self._inner.service(handler_call_details)
            if found is None:
                return None
            handler = self._handlers[method] = decorated(method, found, self._decorations)
        return handler


class DecoratingServer:
    """What a service's registration function (a generated ``add_*Servicer_to_server``,
    health's) is given instead of the server: what it registers is served decorated."""

    def __init__(self, server: grpc.aio.Server, decorations: Sequence[Decoration]) -> None:
        self.server, self.decorations = server, tuple(decorations)

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        wrapped = tuple(_DecoratedHandlers(h, self.decorations) for h in handlers)
        self.server.add_generic_rpc_handlers(wrapped)

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, MethodHandler]
    ) -> None:
        self.server.add_registered_method_handlers(
            service,
            {m: decorated(f"/{service}/{m}", h, self.decorations) for m, h in handlers.items()},
        )
