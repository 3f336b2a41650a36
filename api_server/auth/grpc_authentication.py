"""The gRPC door's authentication: a decoration of each method (api_server/unary.py). A guarded
method whose caller does not authenticate answers UNAUTHENTICATED before its handler runs;
otherwise the handler runs with the caller in ``context.CALLER``. Health, reflection and the
AuthMetadataService stay open."""

from __future__ import annotations

import logging
from typing import Any

from flyteadmin.api_server.auth.authentication import OPEN_METHODS, Authenticator
from flyteadmin.api_server.context import CALLER, metadata_of
from flyteadmin.api_server.grpc_server import status_of
from flyteadmin.api_server.routes import SERVICES
from flyteadmin.api_server.unary import (
    AioContext,
    Decoration,
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


def authenticating(authenticator: Authenticator) -> Decoration:
    """The decoration (api_server/unary.py) that authenticates the caller of a guarded method."""

    def decorate(method: str, handler: MethodHandler) -> MethodHandler:
        inner = behaviour_of(handler)
        if inner is None or not guarded(method):
            return handler  # every flyteidl RPC is unary-unary

        async def behaviour(request: Any, context: AioContext) -> Any:
            metadata = metadata_of(context.invocation_metadata())
            try:
                identity = await authenticator.authenticate(metadata)
            except Exception as exc:
                if not isinstance(exc, AdminError):  # a bug: INTERNAL, never UNKNOWN
                    log.exception("authenticating %s failed", method)
                    exc = AdminError(Code.INTERNAL, "internal error")
                await context.abort_with_status(status_of(exc))  # (with the request id)
            token = CALLER.set(identity)
            try:
                return await inner(request, context)
            finally:
                CALLER.reset(token)

        return rebuilt(handler, behaviour)

    return decorate
