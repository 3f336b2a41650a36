"""glibc malloc arenas are limited at start (core/memory.py ``limit_malloc_arenas``): threads
that allocate share at most 2 arenas, children inherit the limit, and a value the user set
wins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# Threads that each allocate and hold memory, then glibc's own report of its arenas
# (malloc_info's XML has one <heap nr="..."> per arena).
PROBE = textwrap.dedent(
    """
    import ctypes, os, sys, tempfile, threading
    from flyteadmin.core import memory
    if sys.argv[1] == "limit":
        memory.limit_malloc_arenas()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.fopen.restype = ctypes.c_void_p
    held, barrier = [], threading.Barrier(8)
    def work():
        held.append(libc.malloc(1000))
        barrier.wait()  # all alive at once: each would get an arena of its own
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    path = tempfile.mktemp()
    fp = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(fp))
    libc.fclose(ctypes.c_void_p(fp))
    print(open(path).read().count("<heap nr="), os.environ.get("MALLOC_ARENA_MAX"))
    """
)


def probe(mode: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), out[1]


def test_threads_share_at_most_two_arenas_once_limited():
    unlimited, _ = probe("none")
    limited, inherited = probe("limit")
    assert unlimited > 2  # the probe can tell: without the limit, threads get arenas
    assert limited <= 2
    assert inherited == "2"  # what the processes it starts read at their start


def test_a_value_in_the_environment_wins():
    _, kept = probe("limit", MALLOC_ARENA_MAX="4")
    assert kept == "4"
