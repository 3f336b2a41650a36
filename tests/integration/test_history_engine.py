"""History on the GCS emulator: the writer's verified files, the engine's reads over registered
segments (newest version wins, compaction swaps, the shared cache), and compaction."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flyteadmin.core import listing
from flyteadmin.core.blobstore import BlobNotFound, GcsBlobStore
from flyteadmin.core.config import HistorySettings, StorageSettings
from flyteadmin.core.crmap.history_segments import DONE, HistorySegment
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.executions.listing import SCHEMA
from flyteadmin.core.history import cache as cache_module
from flyteadmin.core.history import compaction
from flyteadmin.core.history.engine import HistoryEngine, open_cache
from flyteadmin.core.history.layout import FileFacts, parse_uri
from flyteadmin.core.history.writer import Batch, HistoryWriter, verify
from flyteadmin.core.store import Stored
from tests import history_samples as samples

MARCH = dt.datetime(2026, 3, 14, 9, 0, tzinfo=dt.UTC)
APRIL = dt.datetime(2026, 4, 2, 18, 30, tzinfo=dt.UTC)
WF = samples.WF


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def settings(tmp_path: Path) -> HistorySettings:
    return HistorySettings(
        cache_dir=str(tmp_path / "cache"),
        executions_row_group_rows=4,
        children_row_group_rows=8,
        compaction_min_files=2,
        duckdb_threads=1,
    )


@pytest.fixture
def store(storage_settings: StorageSettings):
    blobs = GcsBlobStore(storage_settings)
    yield blobs
    run(blobs.close())


def shape(name: str, created=MARCH, domain="development", **kw) -> samples.Shape:
    return samples.Shape("flytesnacks", domain, name, created, **kw)


def full_batch(shapes: list[samples.Shape], **kw) -> Batch:
    return Batch(
        executions=[samples.execution(s) for s in shapes],
        node_executions=[samples.node_execution(s, i) for s in shapes for i in range(3)],
        task_executions=[samples.task_execution(s, i) for s in shapes for i in range(3)],
        signals=[samples.signal(s, "approve", True) for s in shapes],
        **kw,
    )


def engine_with(store, settings, files) -> HistoryEngine:
    engine = HistoryEngine(store, settings)
    for f in files:
        engine.add(HistorySegment(f, phase=DONE))
    return engine


def query(
    filters: str = "", sort_key=None, ascending=False, limit=100, token=""
) -> listing.ListQuery:
    return listing.parse_list_request(
        SCHEMA,
        filters=filters,
        sort_key=sort_key,
        ascending=ascending,
        token=token,
        limit=limit,
        rpc="ListExecutions",
    )


def by_node(stored: Stored) -> str:
    return stored.value.node.id.node_id


def no_joins(_f):
    raise AssertionError("no join filter in these queries")


def test_blob_files_stream_both_ways(store, tmp_path: Path):
    """The blob store's file transfers the history uses (large files never sit in memory)."""
    source = tmp_path / "big"
    source.write_bytes(os.urandom(9 << 20))  # above the client's one-request size
    uri = store.uri_for("history-files", "big")
    run(store.put_file(uri, source))
    run(store.get_file(uri, tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == source.read_bytes()
    with pytest.raises(BlobNotFound):
        run(store.get_file(store.uri_for("history-files", "missing"), tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()


def test_writer_writes_one_verified_file_per_table_and_partition(store, settings):
    shapes = [shape("a"), shape("b"), shape("c", APRIL), shape("d", domain="production")]
    files = run(HistoryWriter(store, settings).write(full_batch(shapes)))
    by_partition = {(f.table, f.domain, f.month): f for f in files}
    assert len(files) == len(by_partition) == 4 * 3  # 4 tables x 3 partitions
    march = by_partition[("executions", "development", "2026-03")]
    assert march.rows == 2 and march.execution_names == ("a", "b")
    assert march.min_created_at == MARCH and march.max_created_at == MARCH
    assert by_partition[("node_executions", "development", "2026-04")].rows == 3
    for f in files:
        partition, _ = parse_uri(f.uri)
        assert partition == f.partition
        assert f.uri.startswith(store.uri_for("history", "v1", f.table, "project=flytesnacks"))
        data = run(store.get(f.uri))
        assert len(data) == f.bytes and hashlib.sha256(data).hexdigest() == f.sha256


def test_children_need_their_executions_creation_time(store, settings):
    s = shape("orphan", APRIL)
    writer = HistoryWriter(store, settings)
    with pytest.raises(ValueError, match="creation time"):
        run(writer.write(Batch(node_executions=[samples.node_execution(s, 0)])))
    files = run(
        writer.write(
            Batch(
                node_executions=[samples.node_execution(s, 0)],
                execution_created_at={("flytesnacks", "development", "orphan"): APRIL},
            )
        )
    )
    assert [(f.table, f.month) for f in files] == [("node_executions", "2026-04")]


def test_verification_fails_on_a_different_blob(store, settings, tmp_path: Path):
    (f,) = run(
        HistoryWriter(store, settings).write(Batch(executions=[samples.execution(shape("v"))]))
    )
    facts = FileFacts(f.rows + 1, f.bytes, f.sha256, None, None)
    with pytest.raises(AdminError) as caught:
        run(verify(store, f.uri, tmp_path / "back", facts))
    assert caught.value.code == Code.DATA_LOSS


def test_engine_reads_what_was_archived(store, settings):
    phases = (WF.SUCCEEDED, WF.FAILED, WF.FAILED)
    shapes = [shape(f"e{i}", MARCH + dt.timedelta(hours=i), phase=phases[i % 3]) for i in range(9)]
    shapes.append(shape("apr", APRIL))
    batch = full_batch(shapes)
    engine = engine_with(store, settings, run(HistoryWriter(store, settings).write(batch)))
    try:

        async def reads():
            got = await engine.get_execution("flytesnacks", "development", "e4")
            assert (
                got is not None and got.value == batch.executions[4] and got.resource_version == 0
            )
            assert await engine.get_execution("flytesnacks", "development", "nope") is None
            assert await engine.get_execution("other", "development", "e4") is None
            nodes = await engine.node_executions("flytesnacks", "development", "e4")
            assert sorted(n.value.node.id.node_id for n in nodes) == ["n0", "n1", "n2"]
            assert sorted((n.value for n in nodes), key=lambda n: n.node.id.node_id) == [
                samples.node_execution(shapes[4], i) for i in range(3)
            ]
            # Told the execution's month, the engine reads that partition only.
            march = await engine.node_executions("flytesnacks", "development", "e4", "2026-03")
            assert sorted(march, key=by_node) == sorted(nodes, key=by_node)
            assert await engine.node_executions("flytesnacks", "development", "e4", "2026-04") == []
            tasks = await engine.task_executions("flytesnacks", "development", "apr")
            assert [t.value for t in tasks] == [
                samples.task_execution(shapes[-1], i) for i in range(3)
            ]
            (sig,) = await engine.signals("flytesnacks", "development", "e0")
            assert sig.value == batch.signals[0]
            return await asyncio.gather(
                *(
                    engine.list_executions(q, "flytesnacks", "development", no_joins)
                    for q in queries
                )
            )

        queries = (
            query(),
            query("eq(phase,FAILED)", "created_at", ascending=True, limit=3, token="2"),
            query("value_in(phase,SUCCEEDED;FAILED)+contains(name,e)", "execution_name"),
        )
        everything, failed, named = run(reads())
        records = [
            Stored(s.name, 1, "", MARCH, e) for s, e in zip(shapes, batch.executions, strict=True)
        ]
        for q, got in zip(queries, (everything, failed, named), strict=True):
            whole = dataclasses.replace(q, offset=0, limit=q.offset + q.limit)
            assert [g.value for g in got] == [
                r.value for r in listing.evaluate(whole, records).items
            ]
            assert got
        assert [g.value.id.name for g in everything][:2] == ["apr", "e8"]  # newest first
    finally:
        engine.close()


def test_the_newest_version_wins_everywhere(store, settings):
    writer = HistoryWriter(store, settings)
    first = run(writer.write(full_batch([shape("x"), shape("y")])))
    # Later, x is archived again, now with state ARCHIVED (e.g. UpdateExecution on history).
    again = full_batch(
        [shape("x", archived=True)], archived_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    )
    second = run(writer.write(again))
    engine = engine_with(store, settings, first + second)
    try:

        async def reads():
            got = await engine.get_execution("flytesnacks", "development", "x")
            active = await engine.list_executions(
                query("eq(state,0)"), "flytesnacks", "development", no_joins
            )
            every = await engine.list_executions(query(), "flytesnacks", "development", no_joins)
            nodes = await engine.node_executions("flytesnacks", "development", "x")
            return got, active, every, nodes

        got, active, every, nodes = run(reads())
        assert got.value == again.executions[0]
        assert [r.value.id.name for r in active] == ["y"]  # the old ACTIVE row of x is gone
        assert sorted(r.value.id.name for r in every) == ["x", "y"]  # once each
        assert len(nodes) == 3
    finally:
        engine.close()
    # The same when the newer file arrives after the engine has listed the older ones.
    engine = engine_with(store, settings, first)
    try:
        lists = (query("eq(state,0)"), query())
        before = [
            run(engine.list_executions(q, "flytesnacks", "development", no_joins)) for q in lists
        ]
        assert [sorted(r.value.id.name for r in rows) for rows in before] == [["x", "y"]] * 2
        for f in second:
            engine.add(HistorySegment(f, phase=DONE))
        after = [
            run(engine.list_executions(q, "flytesnacks", "development", no_joins)) for q in lists
        ]
        assert [[r.value.id.name for r in rows] for rows in after] == [["y"], ["x", "y"]]
    finally:
        engine.close()


def test_compaction_merges_a_partition_and_swaps_atomically(store, settings):
    writer = HistoryWriter(store, settings)
    files = []
    for i in range(4):
        files += run(writer.write(full_batch([shape(f"c{i}", MARCH + dt.timedelta(days=i))])))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    files += run(writer.write(full_batch([shape("c0", MARCH, archived=True)], archived_at=later)))
    segments = [HistorySegment(f, phase=DONE) for f in files]
    groups = compaction.plan(segments, settings)
    assert sorted(g[0].file.table for g in groups) == sorted(
        ["executions", "node_executions", "task_executions", "signals"]
    )
    assert all(len(g) == 5 for g in groups)
    assert compaction.plan(segments[:1], settings) == []
    committed = [dataclasses.replace(s, phase="Committed") for s in groups[0]]
    assert compaction.plan(committed, settings) == []  # an archive may still need them
    with pytest.raises(ValueError, match="Done"):
        run(compaction.compact(committed, store, settings, open_cache(settings)))
    engine = engine_with(store, settings, files)
    try:
        q = query(limit=10)

        async def snapshot():
            listed = await engine.list_executions(q, "flytesnacks", "development", no_joins)
            nodes = await engine.node_executions("flytesnacks", "development", "c0")
            return [r.value for r in listed], sorted(n.value.node.id.node_id for n in nodes)

        before = run(snapshot())
        merged = []
        for group in groups:
            file, replaced = run(compaction.compact(group, store, settings, engine.cache))
            assert set(replaced) == {s.name for s in group}
            merged.append(HistorySegment(file, replaces=replaced, phase=DONE))
        executions_file = next(m.file for m in merged if m.file.table == "executions")
        assert executions_file.rows == 4  # c0's older row is dropped
        rows = pq.read_table(engine.cache.path(executions_file.sha256)).to_pylist()
        assert [r["execution_name"] for r in rows] == ["c0", "c1", "c2", "c3"]  # sorted
        assert rows[0]["state"] == 1
        for m in merged:
            engine.add(m)
        for f in files:  # the replaced blobs may go: nothing reads them any more
            run(store.delete(f.uri))
            engine.cache.path(f.sha256).unlink()
        assert run(snapshot()) == before
        # A relist may deliver the replaced segments after their replacement: still hidden.
        late = engine_with(store, settings, [])
        for m in merged:
            late.add(m)
        for s in segments:
            late.add(s)
        try:
            assert run(late.list_executions(q, "flytesnacks", "development", no_joins)) == run(
                engine.list_executions(q, "flytesnacks", "development", no_joins)
            )
        finally:
            late.close()
    finally:
        engine.close()


def test_ensure_remove_and_a_shared_cache(store, settings):
    (f,) = run(
        HistoryWriter(store, settings).write(Batch(executions=[samples.execution(shape("z"))]))
    )
    engine = HistoryEngine(store, settings)
    other = HistoryEngine(store, settings)  # another server process on this host
    try:
        run(engine.ensure(f.uri))  # only the URI: the engine reads the file to describe it
        (segment,) = engine.segments()
        assert segment.file == dataclasses.replace(f, execution_names=())
        assert run(engine.get_execution("flytesnacks", "development", "z")) is not None
        run(store.delete(f.uri))  # the other process finds it in the shared cache
        run(other.ensure(f))
        assert run(other.get_execution("flytesnacks", "development", "z")) is not None
        engine.remove(segment.name)
        engine.remove(segment.name)  # idempotent
        assert run(engine.get_execution("flytesnacks", "development", "z")) is None
    finally:
        engine.close()
        other.close()


def test_a_registered_file_whose_blob_is_gone_is_unavailable(store, settings):
    (f,) = run(
        HistoryWriter(store, settings).write(Batch(executions=[samples.execution(shape("g"))]))
    )
    engine = engine_with(store, settings, [f])
    try:
        run(store.delete(f.uri))  # not cached here yet either
        with pytest.raises(AdminError) as caught:
            run(engine.get_execution("flytesnacks", "development", "g"))
        assert caught.value.code == Code.UNAVAILABLE and f.uri in caught.value.message
    finally:
        engine.close()


def test_a_file_evicted_under_a_reader_is_fetched_again(store, settings):
    (f,) = run(
        HistoryWriter(store, settings).write(Batch(executions=[samples.execution(shape("w"))]))
    )
    engine = engine_with(store, settings, [f])
    try:
        assert run(engine.get_execution("flytesnacks", "development", "w")) is not None
        engine.cache.path(f.sha256).unlink()  # another process evicted it
        assert run(engine.get_execution("flytesnacks", "development", "w")) is not None
    finally:
        engine.close()


def test_prefetch_downloads_active_files_and_evicts_unreferenced_ones(store, settings):
    files = run(HistoryWriter(store, settings).write(full_batch([shape("p1"), shape("p2", APRIL)])))
    engine = engine_with(store, settings, files)
    try:
        stale = engine.cache.path("0" * 64)
        stale.write_bytes(b"an old file nothing references")
        old = time_ago(cache_module.GRACE + 1)
        os.utime(stale, (old, old))
        run(engine.prefetch())
        assert all(engine.cache.path(f.sha256).exists() for f in files)
        assert not stale.exists()
    finally:
        engine.close()


def test_eviction_keeps_recent_and_referenced_files(tmp_path: Path):
    cache = cache_module.FileCache(tmp_path, max_bytes=250)
    old = time_ago(cache_module.GRACE + 60)
    files = {}
    for name, size, age in (
        ("recent", 100, 0),
        ("kept", 100, old),
        ("stale", 100, old - 1),
        ("lru", 100, old - 2),  # the least recently used
    ):
        path = cache.path(name)
        path.write_bytes(b"x" * size)
        if age:
            os.utime(path, (age, age))
        files[name] = path
    freed = cache.evict(referenced={"recent", "kept", "lru"})
    # stale: unreferenced and idle; lru: over the limit and least recently used; recent: in use.
    assert {n for n, p in files.items() if p.exists()} == {"recent", "kept"}
    assert freed == 200


def time_ago(seconds: float) -> float:
    import time

    return time.time() - seconds


def test_lists_by_creation_time_read_few_files_and_agree_with_the_list_engine(store, settings):
    """The newest-month-first walk over many files (ties across files, executions without a
    creation time, several months) gives what the in-memory list engine gives."""
    import random

    rng = random.Random(11)
    tie = dt.datetime(2026, 3, 31, 23, 59, 59, tzinfo=dt.UTC)
    moments = [None, tie, tie, MARCH, APRIL, APRIL + dt.timedelta(days=40), tie]
    moments += [MARCH + dt.timedelta(hours=h) for h in range(0, 2000, 7)]
    writer = HistoryWriter(store, settings)
    records, files = [], []
    for b in range(6):  # six archive batches: six files per partition they touch
        shapes = [
            shape(f"w{b}{i}{rng.choice('abc')}", rng.choice(moments), phase=rng.choice(
                (WF.SUCCEEDED, WF.FAILED)))
            for i in range(rng.randrange(1, 60))
        ]  # fmt: skip
        batch = Batch(executions=[samples.execution(s) for s in shapes])
        files += run(writer.write(batch))
        records += [
            Stored(s.name, 1, "", MARCH, e) for s, e in zip(shapes, batch.executions, strict=True)
        ]
    assert len({f.month for f in files}) >= 4 and "none" in {f.month for f in files}
    engine = engine_with(store, settings, files)
    try:
        for _ in range(60):
            q = query(
                rng.choice(["", "eq(phase,FAILED)", "ne(name,w00a)"]),
                rng.choice(["created_at", "execution_created_at", None]),
                ascending=rng.random() < 0.5,
                limit=rng.choice([1, 2, 3, 5, 40]),
                token=str(rng.choice([0, 0, 1, 4])),
            )
            whole = dataclasses.replace(q, offset=0, limit=q.offset + q.limit)
            expected = [r.value.id.name for r in listing.evaluate(whole, records).items]
            got = run(engine.list_executions(q, "flytesnacks", "development", no_joins))
            assert [g.value.id.name for g in got] == expected, (q.filters, q.sort, q.limit)
    finally:
        engine.close()


def test_the_engine_sessions_cache_parquet_footers(store, settings):
    """Each worker thread queries through a cursor, a DuckDB session of its own: the settings
    that make reads fast must hold there, not only on the first connection."""
    engine = HistoryEngine(store, settings)
    try:
        query = "SELECT current_setting('parquet_metadata_cache'), current_setting('TimeZone')"
        got = run(engine._query(query, []))
        assert got == [(True, "UTC")]
    finally:
        engine.close()


def test_the_engine_forgets_the_footers_of_files_that_are_gone(store, settings, monkeypatch):
    """DuckDB caches every Parquet footer it reads and never forgets one whose file is gone;
    compaction replaces files all the time, so a long-running engine opens a fresh database
    once enough of the files it read are unregistered (issue 11: RSS flat)."""
    from flyteadmin.core.history import engine as engine_module

    monkeypatch.setattr(engine_module, "RECYCLE_AFTER_DEAD_FILES", 3)
    writer = HistoryWriter(store, settings)
    files = []
    for i in range(5):
        batch = Batch(executions=[samples.execution(shape(f"r{i}", MARCH))])
        files += run(writer.write(batch))
    engine = engine_with(store, settings, files)
    cached = "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'OBJECT_CACHE'"
    try:
        assert run(engine.get_execution("flytesnacks", "development", "r0")) is not None
        (before,) = run(engine._query(cached, []))
        for f in files[:2]:  # two dead files: below the limit, same database
            engine.remove(f.segment_name)
        assert run(engine.get_execution("flytesnacks", "development", "r4")) is not None
        assert engine.databases_opened == 1
        engine.remove(files[2].segment_name)  # three: the next query starts afresh
        assert run(engine.get_execution("flytesnacks", "development", "r0")) is None
        assert engine.databases_opened == 2
        (after,) = run(engine._query(cached, []))
        assert after[0] < before[0]  # two footers cached instead of five
        got = run(engine.get_execution("flytesnacks", "development", "r3"))
        assert got is not None and got.value.id.name == "r3"
        # The fresh database's sessions have the engine's settings too.
        settings_query = "SELECT current_setting('parquet_metadata_cache')"
        assert run(engine._query(settings_query, [])) == [(True,)]
    finally:
        engine.close()
