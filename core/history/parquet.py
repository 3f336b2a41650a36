"""Writing and inspecting history Parquet files (pyarrow; synchronous: run it in a thread).

Every file is sorted by its table's ``order`` and declares it (``sorting_columns``), so the
row-group min/max statistics of the leading sort column are disjoint ranges and prune: an
execution's node rows are in one or two row groups of a file, a page of the newest executions
in the last row groups. Statistics are written for the typed columns only (payload statistics
would bloat the footer and never prune); the execution name has a Bloom filter per row group,
which is what finds one execution in a file sorted by time. zstd, level from the settings.
Row-group sizes are per table (docs/storage.md has the measurements behind the defaults).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flyteadmin.core.history.layout import FileFacts
from flyteadmin.core.history.rows import Table

CHUNK = 1 << 20  # bytes per read when hashing a file


@dataclass(frozen=True)
class FileOptions:
    row_group_rows: int
    zstd_level: int = 3
    bloom_fpp: float = 0.01


def _leaves(name: str, type_: pa.DataType) -> list[str]:
    if pa.types.is_struct(type_):
        return [
            leaf
            for i in range(type_.num_fields)
            for leaf in _leaves(f"{name}.{type_.field(i).name}", type_.field(i).type)
        ]
    return [name]


def sorted_rows(table: Table[Any], data: pa.Table) -> pa.Table:
    """``data`` in the file order (None first, as ``ORDER BY ... NULLS FIRST``)."""
    return data.sort_by([(c, "ascending", "at_start") for c in table.order])


def open_writer(table: Table[Any], path: Path, options: FileOptions) -> pq.ParquetWriter:
    schema = table.schema
    stats = [leaf for c in table.typed for leaf in _leaves(c, schema.field(c).type)]
    return pq.ParquetWriter(
        str(path),
        schema,
        compression="zstd",
        compression_level=options.zstd_level,
        use_dictionary=list(table.dictionary),
        write_statistics=stats,
        sorting_columns=[
            pq.SortingColumn(schema.get_field_index(c), nulls_first=True) for c in table.order
        ],
        bloom_filter_options={
            c: {"ndv": options.row_group_rows, "fpp": options.bloom_fpp} for c in table.bloom
        },
    )


def write_file(
    table: Table[Any],
    batches: pa.Table | Iterable[pa.RecordBatch],
    path: Path,
    options: FileOptions,
) -> None:
    """Write rows already in file order (``sorted_rows``, or an ordered query's batches)."""
    with open_writer(table, path, options) as writer:
        if isinstance(batches, pa.Table):
            writer.write_table(batches, row_group_size=options.row_group_rows)
            return
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in batches:  # whole row groups of row_group_rows, whatever the batch sizes
            pending.append(batch)
            size += batch.num_rows
            if size >= options.row_group_rows:
                chunk = pa.Table.from_batches(pending, table.schema)
                full = size - size % options.row_group_rows
                writer.write_table(chunk.slice(0, full), row_group_size=options.row_group_rows)
                rest = chunk.slice(full)
                pending, size = rest.to_batches(), rest.num_rows
        if size:
            writer.write_table(pa.Table.from_batches(pending, table.schema))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_facts(path: Path) -> FileFacts:
    """Row count and created_at range from the footer, size and digest from the bytes."""
    metadata = pq.read_metadata(str(path))
    low: dt.datetime | None = None
    high: dt.datetime | None = None
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    if "created_at" in names:
        index = names.index("created_at")
        for i in range(metadata.num_row_groups):
            stats = metadata.row_group(i).column(index).statistics
            if stats is not None and stats.has_min_max:
                low = stats.min if low is None else min(low, stats.min)
                high = stats.max if high is None else max(high, stats.max)
    return FileFacts(
        rows=metadata.num_rows,
        bytes=path.stat().st_size,
        sha256=sha256_of(path),
        min_created_at=_utc(low),
        max_created_at=_utc(high),
    )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def execution_names(data: pa.Table) -> tuple[str, ...]:
    return tuple(sorted(pc.unique(data.column("execution_name")).to_pylist()))
