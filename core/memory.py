"""The process's native memory: glibc malloc's own account, and giving freed memory back.

glibc keeps what Python and native code free in its arenas rather than returning it to the
system. Measured with ``bench.archive`` and ``/debug/memory`` (docs/operations.md): over eight
minutes of archiving, the operator's malloc heap went from 65 to 120 MiB of which 54 MiB was free
but kept, and its RSS grew with it, while the Python objects it holds stayed near 12 MiB.
``malloc_trim`` hands that free memory back; the API server and the operator call it every
``memory.trim_seconds``.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


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
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to report or trim
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


def trimmer() -> Callable[[], object] | None:
    """``malloc_trim(0)`` of this process, or None where there is none."""
    libc = _LIBC
    return None if libc is None else lambda: libc.malloc_trim(0)


async def trim_periodically(seconds: float) -> None:
    """Give free malloc memory back every ``seconds`` (0: never), off the event loop (it takes
    malloc's locks for a few milliseconds)."""
    trim = trimmer()
    if trim is None or seconds <= 0:
        return
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(trim)
