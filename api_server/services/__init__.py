"""RPC implementations, one module per group, merged into one registry keyed by gRPC method
path (``/flyteidl.service.AdminService/GetProject``). Both doors serve this registry."""

from __future__ import annotations

import asyncio
from typing import NoReturn

from google.protobuf.message import Message

from flyteadmin.api_server.auth.authorization import authorize, authorizer_for
from flyteadmin.api_server.context import CallContext, Handler, Response
from flyteadmin.api_server.routes import SERVICES
from flyteadmin.api_server.services import (
    attributes,
    dataproxy,
    events,
    executions,
    identity,
    projects,
    registration,
    signals,
    version,
)
from flyteadmin.core.auth.runtime import Auth
from flyteadmin.core.backend import Backend
from flyteadmin.core.errors import unimplemented
from flyteadmin.core.validation.requests import check_request


def _unimplemented(full_method: str) -> Handler:
    method = full_method.rsplit("/", 1)[-1]

    async def handler(request: Message, ctx: CallContext) -> NoReturn:
        raise unimplemented(f"{method} is not implemented by this control plane yet")

    return handler


def build_registry(backend: Backend, auth: Auth | None = None) -> dict[str, Handler]:
    registry: dict[str, Handler] = {}
    modules = (attributes, dataproxy, events, executions, projects, registration, signals, version)
    groups = [module.handlers(backend) for module in modules] + [identity.handlers(auth)]
    for group in groups:
        for name, handler in group.items():
            if name in registry:
                raise ValueError(f"{name} is implemented twice")
            registry[name] = handler
    registry = {name: checked(handler) for name, handler in complete(registry).items()}
    if auth is not None and auth.authorization_on:
        registry = authorize(registry, authorizer_for(backend, auth))
    return registry


# A request this large is checked on a worker thread: the walk is Python code, and the event
# loop must keep serving others meanwhile.
_CHECK_OFF_LOOP_BYTES = 256 * 1024


def checked(handler: Handler) -> Handler:
    """``handler`` behind the checks every request passes first (defined enum numbers,
    bounded identifiers: core/validation/requests.py)."""

    async def run(request: Message, ctx: CallContext) -> Response:
        if request.ByteSize() > _CHECK_OFF_LOOP_BYTES:
            await asyncio.to_thread(check_request, request)
        else:
            check_request(request)
        return await handler(request, ctx)

    return run


def complete(registry: dict[str, Handler]) -> dict[str, Handler]:
    """Give every RPC of every served service an entry, so both doors answer alike."""
    for service in SERVICES:
        for method in service.methods:
            full = f"/{service.full_name}/{method.name}"
            registry.setdefault(full, _unimplemented(full))
    return registry
