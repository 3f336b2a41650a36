"""Which CPU an API-server process pins its Python threads to, and what happens where it may not
(api_server/affinity.py). The pinning itself is checked on real workers in
tests/integration/test_workers.py."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from flyteadmin.api_server import affinity


@pytest.fixture
def pins(monkeypatch):
    """The process may use CPUs 0-3; ``sched_setaffinity`` is recorded, not done."""
    done: list[tuple[int, set[int]]] = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "sched_setaffinity", lambda tid, cpus: done.append((tid, set(cpus))))
    return done


@pytest.mark.parametrize("index, cpu", [(0, 3), (1, 2), (3, 0), (5, 2)])
def test_workers_spread_from_the_last_cpu_down(pins, index, cpu):
    assert affinity.pin_python_threads(index) == cpu
    pinned = {tid for tid, cpus in pins if cpus == {cpu}}
    assert {t.native_id for t in threading.enumerate()} <= pinned
    assert all(cpus == {cpu} for _, cpus in pins)


def test_a_process_that_may_not_pin_serves_unpinned(monkeypatch, caplog):
    def refuse(tid, cpus):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    with caplog.at_level(logging.WARNING, logger=affinity.__name__):
        assert affinity.pin_python_threads(0) is None
    assert "cannot pin the Python threads" in caplog.text
