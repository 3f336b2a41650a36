"""Waiting for a cache to see a version (read-your-writes across API-server workers, and the
operator's handlers waiting for the core's cache): the watch thread wakes the waiters."""

from __future__ import annotations

import asyncio
import threading

import pytest
from flyteidl.admin import project_pb2
from kubernetes import client

from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.store import Collection


@pytest.fixture
def projects() -> Collection[project_pb2.Project]:
    # Never started: no watch, no cluster; _saw is what the watch thread calls.
    return Collection(client.ApiClient(), "ns", ProjectCodec(), http=None)  # type: ignore[arg-type]


def test_a_version_already_seen_needs_no_wait(projects):
    projects._saw(7)
    assert asyncio.run(projects.wait_seen(7, timeout=0)) is True
    assert asyncio.run(projects.wait_seen(3, timeout=0)) is True
    assert asyncio.run(projects.wait_seen(8, timeout=0)) is False


def test_the_watch_thread_wakes_the_waiters_it_has_passed(projects):
    async def scenario() -> list[bool]:
        waits = [asyncio.create_task(projects.wait_seen(v, timeout=30)) for v in (5, 9)]
        await asyncio.sleep(0.05)
        assert len(projects._seen_waiters) == 2 and not any(w.done() for w in waits)
        # The watch delivers 4, then 5 (only the first waiter), then 12 (the second).
        thread = threading.Thread(target=lambda: [projects._saw(v) for v in (4, 5)])
        thread.start()
        thread.join()
        first = await asyncio.wait_for(waits[0], 5)
        assert not waits[1].done() and len(projects._seen_waiters) == 1
        threading.Thread(target=projects._saw, args=(12,)).start()
        return [first, await asyncio.wait_for(waits[1], 5)]

    assert asyncio.run(scenario()) == [True, True]
    assert projects._seen_waiters == [] and projects.seen_version == 12


def test_a_wait_that_times_out_says_so_and_leaves_nothing_behind(projects):
    assert asyncio.run(projects.wait_seen(3, timeout=0.05)) is False
    assert projects._seen_waiters == []
    projects._saw(3)  # nobody to wake, no error
    assert projects.seen_version == 3
    projects._saw(2)  # the seen version never goes back
    assert projects.seen_version == 3
