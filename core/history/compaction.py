"""Compaction: the small files of one partition merged into one sorted file.

Each archive batch writes one small file per partition; queries pay per file (a footer, an
open), so the operator periodically merges them: ``plan`` picks groups, ``compact`` merges one.
The merge drops rows superseded by a newer ``archived_at`` for the same id, sorts like any
history file, writes, uploads and verifies (as the writer does) and returns the new file and
the segments it replaces. The caller registers it as a HistorySegment with ``replaces`` (readers
switch to it at once), then deletes the replaced segments and, after a grace period, their
blobs. Only Done segments are input: a Committed one may still be needed by an interrupted
archive. DuckDB does the merge with its memory limit (sorts spill to disk) and streams Arrow
batches to the Parquet writer, so memory does not grow with the partition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from flyteadmin.core.blobstore import BlobStore
from flyteadmin.core.config import HistorySettings
from flyteadmin.core.crmap.history_segments import DONE, HistorySegment
from flyteadmin.core.history import parquet
from flyteadmin.core.history.cache import FileCache
from flyteadmin.core.history.engine import connect
from flyteadmin.core.history.layout import HistoryFile, Partition
from flyteadmin.core.history.rows import TABLES, Table
from flyteadmin.core.history.sql import quoted
from flyteadmin.core.history.writer import file_options, publish

_BATCH_ROWS = 8192


def plan(
    segments: Iterable[HistorySegment], settings: HistorySettings
) -> list[list[HistorySegment]]:
    """Groups worth merging: per partition, the Done, not replaced segments smaller than
    ``compaction_small_file_bytes``, once there are ``compaction_min_files`` of them; smallest
    first, each group up to about ``target_file_bytes``."""
    segments = list(segments)
    replaced = {n for s in segments for n in s.replaces}
    small: dict[Partition, list[HistorySegment]] = {}
    for s in segments:
        if s.phase == DONE and s.name not in replaced:
            if s.file.bytes < settings.compaction_small_file_bytes:
                small.setdefault(s.file.partition, []).append(s)
    groups = []
    for candidates in small.values():
        if len(candidates) < settings.compaction_min_files:
            continue
        group: list[HistorySegment] = []
        size = 0
        for s in sorted(candidates, key=lambda s: (s.file.bytes, s.name)):
            if group and size + s.file.bytes > settings.target_file_bytes:
                break
            group.append(s)
            size += s.file.bytes
        if len(group) > 1:
            groups.append(group)
    return groups


async def compact(
    segments: Sequence[HistorySegment],
    store: BlobStore,
    settings: HistorySettings,
    cache: FileCache,
) -> tuple[HistoryFile, tuple[str, ...]]:
    """Merge the files of ``segments`` (one partition) into one verified file; returns it
    and the names of the segments it replaces."""
    partitions = {s.file.partition for s in segments}
    if len(partitions) != 1:
        raise ValueError(f"compaction merges one partition at a time, got {sorted(partitions)}")
    if unfinished := sorted(s.name for s in segments if s.phase != DONE):
        raise ValueError(f"compaction merges Done segments only, not {unfinished}")
    (partition,) = partitions
    table = TABLES[partition.table]
    fetched = await asyncio.gather(
        *(cache.fetch(store, s.file.uri, s.file.sha256) for s in segments)
    )
    paths = sorted(str(path) for path, _ in fetched)
    with tempfile.TemporaryDirectory(prefix="compaction-", dir=cache.temp_dir) as tmp:
        out = Path(tmp) / "merged.parquet"
        await asyncio.to_thread(_merge, table, paths, out, settings, cache)
        facts = await asyncio.to_thread(parquet.file_facts, out)
        # File ids start with the write time: the output sorts after its inputs.
        now = dt.datetime.now(dt.UTC)
        merged = await publish(store, partition, out, facts, written_at=now, cache=cache)
    return merged, tuple(sorted(s.name for s in segments))


def _merge(
    table: Table[Any],
    paths: list[str],
    out: Path,
    settings: HistorySettings,
    cache: FileCache,
) -> None:
    keys = ", ".join(quoted(k) for k in table.key)
    order = ", ".join(f"{quoted(c)} ASC NULLS FIRST" for c in table.order)
    statement = (
        "SELECT * EXCLUDE (filename) FROM read_parquet(?, filename = true) "
        f'QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY "archived_at" DESC, '
        f'"filename" DESC) = 1 ORDER BY {order}'
    )
    with connect(settings, cache) as db:
        reader = db.sql(statement, params=[paths]).to_arrow_reader(_BATCH_ROWS)
        parquet.write_file(table, _cast(reader, table.schema), out, file_options(settings, table))


def _cast(reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterable[pa.RecordBatch]:
    """DuckDB's batches with the table's exact types (list item names, nullability)."""
    loose = pa.schema([f.with_nullable(True) for f in schema])
    for batch in reader:
        yield pa.RecordBatch.from_arrays(batch.cast(loose).columns, schema=schema)
