"""The gRPC door's authentication: one server interceptor. A guarded method whose caller does not
authenticate answers UNAUTHENTICATED before its handler runs; otherwise the handler runs with
the caller in ``context.CALLER``. Health, reflection and the AuthMetadataService stay open."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from flyteadmin.api_server.auth.authentication import OPEN_METHODS, Authenticator
from flyteadmin.api_server.context import CALLER, metadata_of
from flyteadmin.api_server.grpc_server import status_of
from flyteadmin.api_server.routes import SERVICES
from flyteadmin.api_server.unary import (
    AioContext,
    Continuation,
    MethodHandler,
    behaviour_of,
    rebuilt,
)
from flyteadmin.core.errors import AdminError, Code

log = logging.getLogger(__name__)

GUARDED_SERVICES = frozenset(s.full_name for s in SERVICES)


def guarded(method: str) -> bool:
    """Whether a gRPC method path needs a token (flyteidl services, minus the open RPCs)."""
    service = method.split("/")[1] if method.count("/") == 2 else ""
    return service in GUARDED_SERVICES and method not in OPEN_METHODS


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Continuation,
        details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        handler = await continuation(details)
        inner = behaviour_of(handler) if handler is not None else None
        if handler is None or inner is None or not guarded(details.method):
            return handler  # every flyteidl RPC is unary-unary
        metadata = metadata_of(details.invocation_metadata)
        try:
            identity = await self.authenticator.authenticate(metadata)
        except Exception as exc:
            if not isinstance(exc, AdminError):  # a bug: INTERNAL, never UNKNOWN
                log.exception("authenticating %s failed", details.method)
                exc = AdminError(Code.INTERNAL, "internal error")
            refusal = exc

            async def reject(request: Any, context: AioContext) -> None:
                await context.abort_with_status(status_of(refusal))  # (with the request id)

            return rebuilt(handler, reject)

        async def behaviour(request: Any, context: AioContext) -> Any:
            token = CALLER.set(identity)
            try:
                return await inner(request, context)
            finally:
                CALLER.reset(token)

        return rebuilt(handler, behaviour)
