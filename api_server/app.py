"""The API server's composition root: the core backend, the handler registry, and both doors.

Nothing starts in a constructor; ``start`` starts the caches, then the gRPC and HTTP servers,
and ``stop`` stops them in reverse order. The same object serves ``flyteadmin serve``,
``flyteadmin dev`` and the tests.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler as HttpHandler
from aiohttp.typedefs import Middleware
from google.protobuf.message import Message

from flyteadmin.api_server.affinity import pin_python_threads
from flyteadmin.api_server.auth.authentication import Authenticator
from flyteadmin.api_server.auth.grpc_authentication import authenticating
from flyteadmin.api_server.auth.http_middleware import auth_middleware, oauth2_routes
from flyteadmin.api_server.context import CallContext, Handler, Response
from flyteadmin.api_server.gateway import build_http_app
from flyteadmin.api_server.grpc_server import build_grpc_server, mark_serving
from flyteadmin.api_server.services import build_registry
from flyteadmin.api_server.telemetry import grpc_telemetry, observe, telemetry_middleware
from flyteadmin.core.auth.runtime import build_auth
from flyteadmin.core.backend import Backend
from flyteadmin.core.config import Settings
from flyteadmin.core.watermarks import Watermarks

log = logging.getLogger(__name__)

WORKER_HEADER = "X-Flyteadmin-Worker"


def _after_barrier(registry: dict[str, Handler], backend: Backend) -> dict[str, Handler]:
    """Each handler first waits for the writes other workers acknowledged (core/watermarks)."""

    def wrap(handler: Handler) -> Handler:
        async def handle(request: Message, ctx: CallContext) -> Response:
            await backend.barrier()
            return await handler(request, ctx)

        return handle

    return {name: wrap(handler) for name, handler in registry.items()}


def _worker_header(worker: int) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: HttpHandler) -> web.StreamResponse:
        response = await handler(request)
        response.headers[WORKER_HEADER] = str(worker)
        return response

    return middleware


class ApiServer:
    """One API server. With ``watermarks`` it is worker ``worker`` of several sharing the ports
    (api_server/workers.py)."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend | None = None,
        *,
        watermarks: Watermarks | None = None,
        worker: int | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend or Backend(settings)
        self.auth = build_auth(settings)  # None when auth.mode is off
        self.registry = build_registry(self.backend, self.auth)
        if watermarks is not None and watermarks.workers > 1:
            # A lone worker has no other worker's writes to wait for: no barrier, no publishing.
            self.backend.share_writes(watermarks)
            self.registry = _after_barrier(self.registry, self.backend)
        # Every handler describes its call (RPC, project, execution) for logs and metrics.
        self.registry = observe(self.registry)
        self._shared_ports = watermarks is not None
        self._worker = worker
        server = settings.server
        authenticator = Authenticator(self.auth) if self.auth is not None else None
        # Telemetry first (outermost), so that refused calls are counted and logged too.
        middlewares = [auth_middleware(authenticator)] if authenticator else []
        if worker is not None:
            middlewares.insert(0, _worker_header(worker))
        middlewares.insert(0, telemetry_middleware)
        self.grpc, self.grpc_port = build_grpc_server(
            self.registry,
            address=f"{server.host}:{server.grpc_port}",
            reflection_on=server.grpc_reflection,
            decorations=[grpc_telemetry]
            + ([authenticating(authenticator)] if authenticator else []),
            max_message_bytes=server.max_message_bytes,
            reuse_port=self._shared_ports,
        )
        self.http_app = build_http_app(
            self.registry,
            cors_origins=server.cors_allowed_origins,
            max_body_bytes=server.max_message_bytes,
            middlewares=middlewares,
            extra_routes=oauth2_routes(self.auth) if self.auth is not None else [],
        )
        self._http_runner: web.AppRunner | None = None
        self._warming: asyncio.Task[None] | None = None
        self.http_port = server.http_port

    async def start(self) -> None:
        await self.backend.start()
        self.backend.fold_journal()
        # History files are fetched and the engine warmed in the background (reads fetch
        # whatever they need themselves; this only keeps clients from waiting for it).
        self._warming = asyncio.create_task(self.backend.history.keep_warm())
        await self.grpc.start()
        self._http_runner = web.AppRunner(self.http_app, access_log=None)
        await self._http_runner.setup()
        site = web.TCPSite(
            self._http_runner,
            self.settings.server.host,
            self.http_port,
            reuse_port=self._shared_ports or None,
        )
        await site.start()
        if self.http_port == 0:
            self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await mark_serving(self.grpc)
        if self.settings.server.thread_pinning == "always":  # `auto` is resolved by `dev`
            # Last: every Python thread of the server (watches, grpc.aio's poller) runs by now.
            pin_python_threads(self._worker or 0)
        log.info("serving gRPC on %s and HTTP on %s", self.grpc_port, self.http_port)

    async def stop(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            await asyncio.gather(self._warming, return_exceptions=True)
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        await self.grpc.stop(grace=2)
        await self.backend.stop()
