"""The process's native memory as glibc malloc accounts for it (``/debug/memory``).

Python's tracemalloc sees Python's allocations only; a process whose RSS grows while its Python
objects do not is growing in native code (or in what malloc keeps free): this tells which.
"""

from __future__ import annotations

import ctypes


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
