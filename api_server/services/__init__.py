"""RPC implementations, one module per group, merged into one registry keyed by gRPC method
path (``/flyteidl.service.AdminService/GetProject``). Both doors serve this registry."""

from __future__ import annotations

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.api_server.routes import SERVICES
from flyteadmin.api_server.services import (
    attributes,
    dataproxy,
    events,
    executions,
    projects,
    registration,
    signals,
    version,
)
from flyteadmin.core.backend import Backend
from flyteadmin.core.errors import unimplemented


def _unimplemented(full_method: str) -> Handler:
    method = full_method.rsplit("/", 1)[-1]

    async def handler(request, ctx: CallContext):
        raise unimplemented(f"{method} is not implemented by this control plane yet")

    return handler


def build_registry(backend: Backend) -> dict[str, Handler]:
    registry: dict[str, Handler] = {}
    modules = (attributes, dataproxy, events, executions, projects, registration, signals, version)
    for module in modules:
        for name, handler in module.handlers(backend).items():
            if name in registry:
                raise ValueError(f"{name} is implemented twice")
            registry[name] = handler
    return complete(registry)


def complete(registry: dict[str, Handler]) -> dict[str, Handler]:
    """Give every RPC of every served service an entry, so both doors answer alike."""
    for service in SERVICES:
        for method in service.methods:
            full = f"/{service.full_name}/{method.name}"
            registry.setdefault(full, _unimplemented(full))
    return registry
