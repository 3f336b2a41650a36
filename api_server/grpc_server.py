"""The gRPC door: flyteidl's generated service bases, health, reflection, keepalive.

Each service's servicer is a subclass of the generated ``<Service>Servicer`` whose methods are
built from the handler registry; a method without a handler answers UNIMPLEMENTED. Errors are
translated here once: ``AdminError`` -> its status with details; anything else -> INTERNAL
(grpcio would say UNKNOWN, which flytekit takes for an expired token and starts a login).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from flyteadmin.api_server.context import REQUEST_ID_KEY, CallContext, Handler, metadata_of
from flyteadmin.api_server.routes import SERVICES
from flyteadmin.core.errors import AdminError
from flyteadmin.core.logs import current_request_id

log = logging.getLogger(__name__)

HEALTH_SERVICE_NAME = "flyteadmin"

# flytekit pings every 30 s even when idle; grpcio's defaults would answer with GOAWAY
# "too_many_pings" (clients.md §1.5). Messages up to flytekit's 20 MiB receive limit and more.
SERVER_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def status_of(error: AdminError) -> grpc.Status:
    details = []
    for message in error.details:
        packed = any_pb2.Any()
        packed.Pack(message)
        details.append(packed)
    status = rpc_status.to_status(
        status_pb2.Status(code=int(error.code), message=error.message, details=details)
    )
    # An abort replaces the trailers the call set: the request id goes with the status.
    if request_id := current_request_id():
        trailers = (*status.trailing_metadata, (REQUEST_ID_KEY, request_id))
        status = status._replace(trailing_metadata=trailers)
    return status


def _adapt(full_method: str, handler: Handler):
    async def method(self, request, context: grpc.aio.ServicerContext):
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


def _servicer(service, registry: Mapping[str, Handler]):
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
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """Create the server bound to ``address`` (host:port, port 0 picks one); returns the port.

    SO_REUSEPORT only when asked (API-server workers share a port): grpcio turns it on by
    default, which would let a second server on the same port take half the connections."""
    options = [*SERVER_OPTIONS, ("grpc.so_reuseport", 1 if reuse_port else 0)]
    server = grpc.aio.server(options=options, interceptors=list(interceptors))
    for service in SERVICES:
        servicer, add = _servicer(service, registry)
        add(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
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
