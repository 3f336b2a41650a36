"""Keep an API server's Python threads on one CPU (``server.thread_pinning``).

A call crosses threads several times: grpc's own threads (not Python threads) read and write
the sockets and complete its operations, a Python poller thread of grpc.aio takes each
completion and wakes the event loop's thread, which runs the handler. Left to the kernel, the
event loop's thread wakes on whichever core is free, so at one client nearly every wake-up
crossed cores and found a cold cache: the API worker spent 245-260 µs of CPU per GetProject
instead of 141-157 µs with its Python threads on one CPU, and answered 2,450-2,550 calls/s
instead of 4,300-4,950 (bench/README.md, "Python threads on one CPU"). Pinning grpc's threads
as well costs the sixteen-client rate (the sockets' work no longer runs beside the handlers),
so they keep every CPU the process may use; threads they start later inherit that.

Not unless asked (``auto`` pins only in ``flyteadmin dev``): a process that pins itself
cannot move away from a CPU that something else keeps busy, which on a node shared with other
pods is their choice to make, not ours.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)


def pin_python_threads(index: int) -> int | None:
    """Pin every Python thread of this process, and the threads they start from now on, to one
    CPU: the ``index``-th from the end of the CPUs the process may use (API-server workers
    spread over them; the end, because interrupts favour the first CPUs). Returns the CPU, or
    None where the platform cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1 - index % len(allowed)]
    try:
        for thread in threading.enumerate():
            if thread.native_id is not None:
                try:
                    os.sched_setaffinity(thread.native_id, {cpu})
                except ProcessLookupError:
                    pass  # the thread ended meanwhile
    except OSError as exc:  # e.g. a sandbox that forbids it: serve unpinned rather than not
        log.warning("cannot pin the Python threads to CPU %d (server.thread_pinning): %s", cpu, exc)
        return None
    log.info("Python threads pinned to CPU %d (server.thread_pinning)", cpu)
    return cpu
