"""HistorySegment objects on the real apiserver: the codec round-trips through the CRD schema,
objects stay small, and an engine fed from the watch cache reads the registered files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from flyteadmin.core import kube
from flyteadmin.core.blobstore import GcsBlobStore
from flyteadmin.core.config import HistorySettings
from flyteadmin.core.crmap.history_segments import (
    DONE,
    MAX_EXECUTIONS,
    HistorySegment,
    HistorySegmentCodec,
)
from flyteadmin.core.history.engine import HistoryEngine
from flyteadmin.core.history.writer import Batch, HistoryWriter
from flyteadmin.core.store import Collection
from tests import history_samples as samples
from tests.integration.servers import LoopThread
from tests.waiting import eventually

CREATED = dt.datetime(2026, 5, 1, 8, 0, 0, 250_000, tzinfo=dt.UTC)


@pytest.fixture
def segments(kubeconfig, namespace):
    api = kube.api_client(str(kubeconfig))
    loop = LoopThread()
    http = kube.KubeHttp(api)
    collection = Collection(api, namespace, HistorySegmentCodec(), http)
    collection.start()
    assert collection.wait_synced(30)
    yield collection, loop
    collection.stop()
    loop.call(http.close())
    loop.close()
    api.close()


def test_segments_round_trip_and_feed_an_engine(segments, storage_settings, tmp_path: Path):
    collection, loop = segments
    store = GcsBlobStore(storage_settings)
    settings = HistorySettings(cache_dir=str(tmp_path / "cache"), duckdb_threads=1)
    shapes = [samples.Shape("flytesnacks", "development", f"s{i:03d}", CREATED) for i in range(120)]
    batch = Batch(
        executions=[samples.execution(s) for s in shapes],
        node_executions=[samples.node_execution(s, 0) for s in shapes],
    )
    engine = HistoryEngine(store, settings)
    try:
        files = loop.call(HistoryWriter(store, settings).write(batch))
        for f in files:
            loop.call(collection.create(HistorySegment(f)))
        executions_file = next(f for f in files if f.table == "executions")
        name = executions_file.segment_name
        stored = collection.get(name)
        assert stored.value == HistorySegment(executions_file)  # the codec round-trips
        body = HistorySegmentCodec().encode(stored.value)
        assert body["status"]["executions"][:2] == ["s000", "s001"]
        assert len(json.dumps(body)) < 4096  # 120 names and the file's description

        # What the archiver does once the live objects are gone: Done, names dropped.
        loop.call(collection.mutate(name, lambda s: s.done()))
        done = collection.get(name).value
        assert done.phase == DONE and done.file.execution_names == ()
        assert "executions" not in HistorySegmentCodec().encode(done)["status"]

        # Another replica's engine follows the watch cache.
        eventually(lambda: len(collection) == len(files))
        for s in collection.values():
            engine.add(s.value)
        got = loop.call(engine.get_execution("flytesnacks", "development", "s042"))
        assert got is not None and got.value == batch.executions[42]
        nodes = loop.call(engine.node_executions("flytesnacks", "development", "s042"))
        assert [n.value for n in nodes] == [batch.node_executions[42]]

        loop.call(collection.delete(name))
        engine.remove(name)
        assert loop.call(engine.get_execution("flytesnacks", "development", "s042")) is None
    finally:
        engine.close()
        loop.call(store.close())


def test_a_segment_with_too_many_names_is_refused():
    f = dataclasses.replace(
        samples_file(), execution_names=tuple(f"e{i}" for i in range(MAX_EXECUTIONS + 1))
    )
    with pytest.raises(ValueError, match="at most"):
        HistorySegmentCodec().encode(HistorySegment(f))


def samples_file():
    from flyteadmin.core.history.layout import HistoryFile

    uri = (
        "gs://b/metadata/history/v1/executions/project=p/domain=d/month=2026-05/"
        "20260501T080000000000Z-abcd.parquet"
    )
    return HistoryFile(uri, "executions", "p", "d", "2026-05", 1, 10, "0" * 64, None, None)
