"""The gRPC door: flyteidl's generated service bases, health, reflection, keepalive.

Each service's servicer is a subclass of the generated ``<Service>Servicer`` whose methods are
built from the handler registry; a method without a handler answers UNIMPLEMENTED. Errors are
translated here once: ``AdminError`` -> its status with details; anything else -> INTERNAL
(grpcio would say UNKNOWN, which flytekit takes for an expired token and starts a login).
Request bytes that do not decode are INVALID_ARGUMENT (grpcio's own decoding runs before any
servicer and would answer UNKNOWN), and every status fits in what a default client accepts as
trailing metadata.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from flyteadmin.api_server.context import REQUEST_ID_KEY, CallContext, Handler, metadata_of
from flyteadmin.api_server.routes import SERVICES
from flyteadmin.api_server.unary import (
    AioContext,
    Behaviour,
    DecoratingServer,
    Decoration,
    Deserializer,
    MethodHandler,
    behaviour_of,
    rebuilt,
)
from flyteadmin.core.errors import AdminError
from flyteadmin.core.logs import current_request_id
from flyteadmin.core.wire import Encoded

log = logging.getLogger(__name__)

HEALTH_SERVICE_NAME = "flyteadmin"

# flytekit pings every 30 s even when idle; grpcio's defaults would answer with GOAWAY
# "too_many_pings" (clients.md §1.5).
SERVER_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
]

# grpc-core clients refuse received metadata above 8 KiB (sometimes, up to 16 KiB always) and
# then report RESOURCE_EXHAUSTED instead of the real status. A status travels as grpc-message
# (percent-encoded: 3 bytes for each byte outside printable ASCII) and grpc-status-details-bin
# (base64 of the whole google.rpc.Status, message included); both stay under this together.
TRAILER_BUDGET = 6 * 1024


def message_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """The largest request and response (``server.max_message_bytes``)."""
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


def _trailer_bytes(status: status_pb2.Status) -> int:
    text = status.message.encode()
    encoded = sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in text)
    return encoded + 4 * ((status.ByteSize() + 2) // 3)


def status_of(error: AdminError) -> grpc.Status:
    status = status_pb2.Status(code=int(error.code), message=error.message)
    for message in error.details:
        status.details.add().Pack(message)
    if _trailer_bytes(status) > TRAILER_BUDGET:
        del status.details[:]  # like flyteadmin's truncation: a shortened message loses them
        text = error.message
        while _trailer_bytes(status) > TRAILER_BUDGET:
            text = text[: len(text) * 2 // 3]
            status.message = text + " ... (shortened)"
    grpc_status = rpc_status.to_status(status)
    # An abort replaces the trailers the call set: the request id goes with the status.
    if request_id := current_request_id():
        trailers = (*grpc_status.trailing_metadata, (REQUEST_ID_KEY, request_id))
        return _Status(grpc_status.code, grpc_status.details, trailers)
    return grpc_status


@dataclass(frozen=True)
class _Status(grpc.Status):
    """A status with other trailers (grpc.Status is an interface of these three fields)."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


class _Undecodable:
    """What a request that does not decode becomes, so that its method can refuse it."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _lenient(deserialize: Deserializer) -> Deserializer:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # noqa: BLE001 - any failure to decode is the client's
            return _Undecodable(error)

    return decode


def _refusing_undecodable(behavior: Behaviour) -> Behaviour:
    async def method(request: Any, context: AioContext) -> Any:
        if isinstance(request, _Undecodable):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"cannot decode the request: {request.error}"
            )
        return await behavior(request, context)

    return method


def decode_errors(method: str, handler: MethodHandler) -> MethodHandler:
    """The decoration that answers INVALID_ARGUMENT for request bytes that are not the method's
    message (garbage, a truncated message, invalid UTF-8 in a string), instead of grpcio's
    UNKNOWN."""
    inner = behaviour_of(handler)
    if inner is None or handler.request_deserializer is None:
        return handler
    return rebuilt(
        handler,
        _refusing_undecodable(inner),
        deserializer=_lenient(handler.request_deserializer),
    )


def encoded_answers(method: str, handler: MethodHandler) -> MethodHandler:
    """The decoration that sends an answer a handler returned already serialized
    (core/wire.py, the list RPCs) as it is, and serializes every other one as before."""
    inner, serialize = behaviour_of(handler), handler.response_serializer
    if inner is None or serialize is None:
        return handler

    def write(response: Any) -> bytes:
        return response.data if isinstance(response, Encoded) else serialize(response)

    return rebuilt(handler, inner, serializer=write)


def _adapt(full_method: str, handler: Handler) -> Callable[[Any, Any, AioContext], Awaitable[Any]]:
    async def method(self: Any, request: Any, context: AioContext) -> Any:
        ctx = CallContext.from_metadata(metadata_of(context.invocation_metadata()))
        try:
            return await handler(request, ctx)
        except AdminError as error:
            await context.abort_with_status(status_of(error))
        except Exception:
            log.exception("%s failed", full_method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")

    method.__name__ = full_method.rsplit("/", 1)[-1]
    return method


def _servicer(
    service: ServiceDescriptor, registry: Mapping[str, Handler]
) -> tuple[object, Callable[[Any, grpc.aio.Server], None]]:
    module = importlib.import_module(
        service.file.name.replace("/", ".").removesuffix(".proto") + "_pb2_grpc"
    )
    base = getattr(module, f"{service.name}Servicer")
    methods = {}
    for method in service.methods:
        full = f"/{service.full_name}/{method.name}"
        methods[method.name] = _adapt(full, registry[full])
    servicer = type(f"{service.name}Impl", (base,), methods)()
    return servicer, getattr(module, f"add_{service.name}Servicer_to_server")


def build_grpc_server(
    registry: Mapping[str, Handler],
    *,
    address: str,
    reflection_on: bool = True,
    decorations: Sequence[Decoration] = (),
    max_message_bytes: int = 64 * 1024 * 1024,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """Create the server bound to ``address`` (host:port, port 0 picks one); returns the port.
    ``decorations`` (api_server/unary.py) apply to every unary method, the first outermost.

    SO_REUSEPORT only when asked (API-server workers share a port): grpcio turns it on by
    default, which would let a second server on the same port take half the connections."""
    options = [
        *SERVER_OPTIONS,
        *message_options(max_message_bytes),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ]
    server = grpc.aio.server(options=options)
    # Registration functions call only what DecoratingServer has of a server.
    decorating = cast(
        grpc.aio.Server, DecoratingServer(server, [*decorations, decode_errors, encoded_answers])
    )
    for service in SERVICES:
        servicer, add = _servicer(service, registry)
        add(servicer, decorating)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, decorating)
    names = [s.full_name for s in SERVICES] + [
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    ]
    if reflection_on:
        names.append(reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port(address)
    server.health_servicer = health_servicer  # type: ignore[attr-defined]
    return server, port


async def mark_serving(server: grpc.aio.Server) -> None:
    servicer = server.health_servicer  # type: ignore[attr-defined]
    for name in ("", HEALTH_SERVICE_NAME):
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
