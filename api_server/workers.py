"""Several API-server processes on one host, sharing the gRPC and HTTP ports.

One Python process serves at most one core (the GIL). ``Workers`` starts ``server.workers``
processes, each a whole ``ApiServer`` with its own watch caches, all bound to the same ports with
SO_REUSEPORT, so the kernel spreads connections over them (a gRPC channel is one connection, so a
client's calls stay on one worker while its connection lives). Read-your-writes across workers
holds through core/watermarks.py: before serving a call a worker waits until its caches have seen
every write another worker acknowledged. The parent only supervises: a worker that dies is
started again (with backoff), and too many deaths in a row stop everything with an error.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, cast

from flyteadmin.core import event_loop, metrics
from flyteadmin.core.config import Settings
from flyteadmin.core.watermarks import Watermarks

log = logging.getLogger(__name__)

KIND_SLOTS = 32  # watermark slots per worker: at least the number of store collections
_START_TIMEOUT = 120.0
_MAX_RESTARTS = 5  # within _RESTART_WINDOW seconds, then give up
_RESTART_WINDOW = 60.0
_PR_SET_PDEATHSIG = 1


def worker_count(settings: Settings) -> int:
    """``server.workers``; 0 means one per core."""
    return settings.server.workers or max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class _Spec:
    settings: Settings
    index: int
    count: int
    watermarks: str
    log_level: int


def _exit_with_parent() -> None:
    """SIGTERM when the process that started this worker dies, even by SIGKILL: a worker left
    behind would go on serving the shared ports with nothing behind it (and a new
    ``flyteadmin dev`` binds the same ports beside it)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the prctl
        os._exit(1)


def _run_worker(spec: _Spec, ready: Connection) -> None:
    """A worker process: one ApiServer until SIGTERM/SIGINT."""
    _exit_with_parent()
    from flyteadmin.core import heap, logs, tracing

    logs.configure(spec.settings.logging, logging.getLevelName(spec.log_level), worker=spec.index)
    tracing.configure(spec.settings.tracing, "flyteadmin-api-server")
    heap.manage(spec.settings.freeze_caches)
    event_loop.run(_serve(spec, ready), spec.settings.event_loop)


async def _serve(spec: _Spec, ready: Connection) -> None:
    from flyteadmin.api_server.app import ApiServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    marks = Watermarks(Path(spec.watermarks), spec.count, KIND_SLOTS)
    marks.worker = spec.index
    server = ApiServer(spec.settings, watermarks=marks, worker=spec.index)
    try:
        await server.start()
        ready.send(spec.index)
        ready.close()
        await stop.wait()
    finally:
        await server.stop()
        marks.close()


class Workers:
    """Start, supervise and stop the worker processes (call from one thread)."""

    def __init__(
        self,
        settings: Settings,
        count: int | None = None,
        *,
        say: Callable[[str], None] = log.info,
    ) -> None:
        server = settings.server
        if count is None:
            count = worker_count(settings)
        # Every worker binds the same ports, so they must be known before the first starts.
        grpc_port = server.grpc_port or free_port()
        http_port = server.http_port or free_port()
        self.settings = dataclasses.replace(
            settings, server=dataclasses.replace(server, grpc_port=grpc_port, http_port=http_port)
        )
        self.count = count
        self.grpc_port, self.http_port = grpc_port, http_port
        self._say = say
        self._dir = Path(tempfile.mkdtemp(prefix="flyteadmin-workers-", dir=_shm_dir()))
        self._marks_path = self._dir / "watermarks"
        self._marks = Watermarks(self._marks_path, count, KIND_SLOTS, create=True)
        # spawn, not fork: the parent may hold threads (watch caches, the operator) and locks.
        self._context = multiprocessing.get_context("spawn")
        # Each worker says it is ready on a pipe of its own. Not one shared Queue: its writers
        # share a lock, and a worker killed between sending and releasing it (the parent may
        # read the message first) would leave every later worker unable to say it is ready.
        self._ready: list[Connection | None] = [None] * count
        self._processes: list[Any] = [None] * count
        self._serving: set[int] = set()  # workers that said they are ready (caches synced)
        self._deaths: list[float] = []

    def _start_one(self, index: int) -> None:
        spec = _Spec(
            self.settings, index, self.count, str(self._marks_path), logging.getLogger().level
        )
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_run_worker, args=(spec, writer), name=f"flyteadmin-worker-{index}"
        )
        process.start()
        writer.close()  # the worker holds the only writer: its death reads as EOF here
        self._close_ready(index)
        self._ready[index] = reader
        self._processes[index] = process
        self._serving.discard(index)

    def start(self, timeout: float = _START_TIMEOUT) -> None:
        # A child started from the repository root must not import the folder operator/ as the
        # standard library's operator module (README, "Layout").
        os.environ.setdefault("PYTHONSAFEPATH", "1")
        for index in range(self.count):
            self._start_one(index)
        self._wait_ready(set(range(self.count)), timeout)

    def _wait_ready(self, pending: set[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        readers: dict[Connection, int] = {}
        for index in pending:
            reader = self._ready[index]
            assert reader is not None, f"worker {index} was not started"
            readers[reader] = index
        while readers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"API-server workers {sorted(readers.values())} not ready")
            for ready in wait(list(readers), timeout=left):
                reader = cast(Connection, ready)
                index = readers.pop(reader)
                try:
                    reader.recv()
                except EOFError:
                    process = self._processes[index]
                    process.join(5)
                    raise RuntimeError(
                        f"API-server worker {index} exited with {process.exitcode}"
                    ) from None
                self._close_ready(index)
                self._serving.add(index)

    def _close_ready(self, index: int) -> None:
        reader, self._ready[index] = self._ready[index], None
        if reader is not None:
            reader.close()

    def check(self) -> None:
        """Start again any worker that died; raise when they keep dying."""
        for index, process in enumerate(self._processes):
            if process is None or process.is_alive():
                continue
            metrics.process_ended(process.pid)
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < _RESTART_WINDOW] + [now]
            if len(self._deaths) > _MAX_RESTARTS:
                raise RuntimeError(
                    f"API-server workers died {len(self._deaths)} times in "
                    f"{_RESTART_WINDOW:.0f}s (last: worker {index}, exit code {process.exitcode})"
                )
            self._say(f"API-server worker {index} exited with {process.exitcode}; restarting it")
            time.sleep(min(0.2 * 2 ** len(self._deaths), 5.0))
            self._start_one(index)
            self._wait_ready({index}, _START_TIMEOUT)

    def problems(self) -> list[str]:
        """Why the API is not ready, for the metrics port's /readyz: a worker not running, or
        not yet ready (a worker is ready once its caches have synced)."""
        return [
            f"API-server worker {index} is not serving"
            for index, process in enumerate(self._processes)
            if process is None or not process.is_alive() or index not in self._serving
        ]

    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p is not None]

    def stop(self, grace: float = 10.0) -> None:
        for process in self._processes:
            if process is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self._processes:
            if process is not None:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
        self._marks.close()
        for index in range(self.count):
            self._close_ready(index)
        for path in (self._marks_path, self._dir):
            try:
                path.unlink() if path.is_file() else path.rmdir()
            except OSError:
                pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shm_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
