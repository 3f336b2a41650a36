"""core/memory.py: glibc's account of the process's memory, and the periodic trim."""

from __future__ import annotations

import asyncio

import pytest

from flyteadmin.core import memory


def test_malloc_summary_reports_what_glibc_holds():
    text = memory.malloc_summary()
    assert text.startswith("malloc: in use ") and "free but kept" in text


def test_the_trim_runs_every_period_until_cancelled(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(memory, "trimmer", lambda: lambda: calls.append(1))

    async def scenario() -> None:
        task = asyncio.create_task(memory.trim_periodically(0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_zero_seconds_means_never(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(memory, "trimmer", lambda: lambda: calls.append(1))
    asyncio.run(asyncio.wait_for(memory.trim_periodically(0), 5))  # returns at once
    assert calls == []


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_the_real_trim_gives_freed_memory_back():
    trim = memory.trimmer()
    assert trim is not None  # glibc here
    blocks = [bytearray(1000) for _ in range(100_000)]  # ~100 MiB of malloc blocks (> 512 B)
    pins = blocks[::100]  # every 100th stays: the free space between them cannot be unmapped
    del blocks
    before = _rss_mib()
    trim()
    assert _rss_mib() < before - 40  # the free pages between the pins went back
    del pins
