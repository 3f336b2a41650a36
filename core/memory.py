"""The process's native memory as glibc malloc accounts for it (``/debug/memory``).

Python's tracemalloc sees Python's allocations only; a process whose RSS grows while its Python
objects do not is growing in native code (or in what malloc keeps free): this tells which.
"""

from __future__ import annotations

import ctypes
import os


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to report
        return None


_LIBC = _libc()


def malloc_summary() -> str:
    """What malloc holds: in use, free but kept (fragmentation), its heap and its mmapped
    blocks. Memory mapped by other allocators (pymalloc's arenas, DuckDB's) is not in it."""
    if _LIBC is None:
        return "malloc: not glibc, no account"
    info = _LIBC.mallinfo2()
    mib = 2**20
    return (
        f"malloc: in use {info.uordblks / mib:.1f} MiB, free but kept {info.fordblks / mib:.1f}"
        f" MiB, heap {info.arena / mib:.1f} MiB, mmapped {info.hblkhd / mib:.1f} MiB"
    )


ARENA_MAX_ENV = "MALLOC_ARENA_MAX"
DEFAULT_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def limit_malloc_arenas() -> None:
    """At most ``MALLOC_ARENA_MAX`` (default 2) glibc malloc arenas in this process and the
    processes it starts. glibc gives threads arenas of their own (up to 8 per core), and the
    threads of DuckDB, the to_thread pools and Kopf each left free memory in theirs that no
    other thread could reuse: the operator's RSS grew by about 3 MiB a minute while archiving,
    and stays flat with 2 (bench/README.md, "Memory"). A value already in the environment wins
    (glibc has read it); call this before threads start."""
    if ARENA_MAX_ENV in os.environ:
        return
    os.environ[ARENA_MAX_ENV] = str(DEFAULT_ARENAS)  # for the children, read at their start
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, DEFAULT_ARENAS)
