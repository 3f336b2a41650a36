"""core/heap.py, in a child process each: freezing changes the whole interpreter's collector,
which the test process must keep as Python's defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

PRELUDE = """
import gc
from prometheus_client import REGISTRY
from flyteadmin.core import heap, metrics

class Node:
    pass

def passes(generation):
    metrics.record_store([])  # publishes what the collector reported
    return REGISTRY.get_sample_value(
        "flyteadmin_gc_pass_seconds_count", {"generation": str(generation)}
    ) or 0.0
"""


def run(body: str) -> None:
    script = PRELUDE + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_loaded_caches_and_the_many_survivors_of_a_full_pass_are_frozen_and_passes_timed():
    run(
        """
        heap.manage()
        heap.FREEZE_AT = 2000
        cached = [Node() for _ in range(5000)]
        heap.caches_loaded()
        loaded = gc.get_freeze_count()
        assert loaded >= 5000, loaded
        metrics.record_store([])
        assert REGISTRY.get_sample_value("flyteadmin_gc_frozen_objects") == loaded

        # A full pass whose survivors are fewer than FREEZE_AT leaves them to the collector
        # (after a full pass it keeps them in its oldest generation; frozen ones are in none).
        few = [Node() for _ in range(100)]
        before = passes(2)
        gc.collect()
        assert passes(2) == before + 1
        kept = {id(o) for o in gc.get_objects(generation=2)}
        assert all(id(n) in kept for n in few)
        # Once they are FREEZE_AT or more, they are frozen.
        later = [Node() for _ in range(3000)]
        gc.collect()
        kept = {id(o) for o in gc.get_objects(generation=2)}
        assert not any(id(n) in kept for n in few + later)
        assert gc.get_freeze_count() >= loaded + 3000
        # Frozen objects are still freed by reference counting.
        del cached, few, later
        assert gc.get_freeze_count() < loaded
        """
    )


def test_cycles_made_after_a_freeze_are_still_collected():
    run(
        """
        heap.manage()
        heap.caches_loaded()
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
        """
    )


def test_an_unmanaged_process_keeps_pythons_collector():
    run(
        """
        cached = [Node() for _ in range(1000)]
        heap.caches_loaded()
        gc.collect()
        assert gc.get_freeze_count() == 0
        assert passes(2) == 0
        """
    )


def test_a_managed_process_exits_with_nothing_frozen():
    # The interpreter's last full pass runs after atexit: were it to freeze again, native
    # extensions (DuckDB's, through nanobind) would print their objects as leaked.
    script = PRELUDE + textwrap.dedent(
        """
        import duckdb
        duckdb.connect().execute("select 1").fetchall()
        heap.manage()
        heap.caches_loaded()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_freeze_caches_false_times_passes_and_freezes_nothing():
    run(
        """
        heap.manage(freeze=False)
        cached = [Node() for _ in range(1000)]
        heap.caches_loaded()
        gc.collect()
        assert gc.get_freeze_count() == 0
        assert passes(2) >= 1
        """
    )


def test_collections_inside_prometheus_client_never_wait_on_its_lock(tmp_path):
    # In multiprocess mode every value shares one lock, and a pass can start inside any
    # allocation, the library's own under that lock: the callback must not record there.
    script = PRELUDE + textwrap.dedent(
        """
        heap.manage()
        heap.caches_loaded()
        for n in range(20000):
            metrics.rpc_finished("s", f"m{n % 500}", "grpc", "OK", 0.001)
            garbage = [[Node()] for _ in range(20)]
        metrics.record_store([])
        assert passes(0) > 0
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
