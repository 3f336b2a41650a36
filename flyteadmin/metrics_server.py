"""The metrics port of ``flyteadmin serve``, ``flyteadmin operator`` and ``flyteadmin dev``:
``/metrics`` (Prometheus), ``/livez`` and ``/readyz`` (the kubelet's probes), never
authenticated, on a port of its own (``metrics.port``) so the API can require tokens. The
commands start it (the core serves nothing; core/health.py decides readiness).

- ``/livez`` answers 200 whenever the event loop runs: no dependency is checked, so a slow or
  unreachable kube-apiserver never gets the pod restarted (a restart would not fix it).
- ``/readyz`` answers 200 only when ``core.health.Readiness`` finds no problem; otherwise 503
  with the reasons, one per line. A not-ready API server pod leaves its Service's endpoints
  until it recovers.
- ``/debug/memory``: where the process's Python memory is (tracemalloc's largest allocation
  sites, and what grew since the first GET), while tracing; 409 otherwise. Tracing slows the
  process, so it is off unless asked for: ``POST /debug/memory?frames=N`` starts it at run time
  (it then sees what is allocated from that moment: what a slow growth is made of), or start
  the process with ``PYTHONTRACEMALLOC=N``. Like flyteadmin's heap profile on its profiler port.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flyteadmin.core import kube, memory, metrics
from flyteadmin.core.config import Settings
from flyteadmin.core.health import Readiness

log = logging.getLogger(__name__)


class MetricsServer:
    """An aiohttp app on the process's event loop; ``start`` binds, ``stop`` closes."""

    def __init__(self, settings: Settings, readiness: Readiness | None = None) -> None:
        self.host = settings.metrics.host or settings.server.host
        self.port = settings.metrics.port
        self.readiness = readiness
        self._runner: web.AppRunner | None = None
        self._own: tuple[Any, kube.KubeHttp] | None = None  # a client of its own, closed here
        self._first_snapshot: tracemalloc.Snapshot | None = None  # /debug/memory's baseline

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/metrics"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._live)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/debug/memory", self._memory)
        app.router.add_post("/debug/memory", self._start_tracing)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        # Off the event loop: a scrape walks every series (in multiprocess mode, every file).
        body = await asyncio.to_thread(generate_latest, metrics.registry())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _live(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _ready(self, request: web.Request) -> web.Response:
        problems = await self.readiness.problems() if self.readiness is not None else []
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ok\n")

    async def _memory(self, request: web.Request) -> web.Response:
        if not tracemalloc.is_tracing():
            text = "tracemalloc is off: POST /debug/memory?frames=N to start it\n"
            return web.Response(status=409, text=text)
        limit = _bounded_int(request, "limit", 25, 500)
        if limit is None:
            return web.Response(status=400, text="limit must be an integer\n")
        # Off the event loop: a snapshot walks every traced block (the API's calls go on).
        snapshot = await asyncio.to_thread(_snapshot)
        first, self._first_snapshot = self._first_snapshot, self._first_snapshot or snapshot
        text = await asyncio.to_thread(_memory_report, snapshot, first, limit)
        return web.Response(text=text)

    async def _start_tracing(self, request: web.Request) -> web.Response:
        frames = _bounded_int(request, "frames", 1, 50)
        if frames is None:
            return web.Response(status=400, text="frames must be an integer\n")
        if tracemalloc.is_tracing():
            return web.Response(text="tracemalloc was already tracing\n")
        tracemalloc.start(frames)
        self._first_snapshot = None
        return web.Response(text=f"tracemalloc started ({frames} frames per allocation)\n")

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("metrics on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._own is not None:
            api, http = self._own
            await http.close()
            api.close()
            self._own = None


def _bounded_int(request: web.Request, name: str, default: int, most: int) -> int | None:
    """Query parameter ``name`` clamped to 1..``most``; None when it is not an integer."""
    try:
        return max(1, min(int(request.query.get(name, str(default))), most))
    except ValueError:
        return None


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )


def _memory_report(
    snapshot: tracemalloc.Snapshot, first: tracemalloc.Snapshot | None, limit: int
) -> str:
    """The traced total, malloc's account, the largest sites and what grew since ``first``."""
    traced, peak = tracemalloc.get_traced_memory()
    lines = [
        f"traced {traced / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB)",
        memory.malloc_summary(),
        "",
        "largest:",
    ]
    for stat in snapshot.statistics("traceback")[:limit]:
        lines += _described(stat)
    if first is not None:
        lines += ["", "grown since the first call:"]
        for diff in snapshot.compare_to(first, "traceback")[:limit]:
            lines += _described(diff) if diff.size_diff > 0 else []
    return "\n".join(lines) + "\n"


def _described(stat: tracemalloc.Statistic | tracemalloc.StatisticDiff) -> list[str]:
    """One allocation site: its sizes, then the calls that led to it (innermost first)."""
    return [str(stat)] + [f"    {line}" for line in stat.traceback.format(most_recent_first=True)]


async def serve_metrics(
    settings: Settings, backend: Any = None, *, also: Callable[[], list[str]] | None = None
) -> MetricsServer:
    """Start the metrics port. Ready once ``backend``'s caches have synced (start the port
    before the backend, so liveness holds during a long first sync) while kube-apiserver
    answers, and ``also`` reports no problem (e.g. API-server workers not serving yet). Without
    a backend (a process that supervises workers) the apiserver is checked with a client of its
    own."""
    server = MetricsServer(settings)
    if backend is not None:
        server.readiness = Readiness(backend.watched, backend.http, also)
    else:
        api = kube.api_client(settings.kubernetes.kubeconfig)
        server._own = (api, kube.KubeHttp(api))
        server.readiness = Readiness([], server._own[1], also)
    await server.start()
    return server
