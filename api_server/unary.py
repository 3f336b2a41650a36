"""Typed access to grpc.aio's unary-unary method handlers, for the interceptors.

grpc's stubs type a handler's behaviour for the synchronous server (a function of the request
and a ``grpc.ServicerContext``); under ``grpc.aio`` it is a coroutine function of the request and
a ``grpc.aio.ServicerContext``. Every flyteidl RPC and health's Check are unary-unary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
