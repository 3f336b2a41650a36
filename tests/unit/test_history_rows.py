"""History rows: every record kind survives record -> Parquet row -> record, and the typed
columns hold what the live list schemas compute."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from flyteidl.core import identifier_pb2

from flyteadmin.core.executions.listing import SCHEMA as EXECUTION_SCHEMA
from flyteadmin.core.history import parquet, rows
from flyteadmin.core.history.layout import (
    NO_MONTH,
    Partition,
    month_of,
    new_file_id,
    parse_uri,
    path_parts,
    segment_name,
)
from flyteadmin.core.store import Stored
from tests import history_samples as samples

CREATED = dt.datetime(2026, 3, 14, 9, 26, 53, 589_793, tzinfo=dt.UTC)
ARCHIVED = dt.datetime(2026, 4, 20, 12, 0, 0, 123_456, tzinfo=dt.UTC)
OPTIONS = parquet.FileOptions(row_group_rows=4)


def shapes() -> list[samples.Shape]:
    base = samples.Shape("flytesnacks", "development", "f3a5b2c1d0e9", CREATED)
    return [
        base,
        dataclasses.replace(base, name="failed", phase=samples.WF.FAILED, failed=True),
        dataclasses.replace(base, name="single", single_task=True, archived=True, tags=()),
        dataclasses.replace(
            base, name="running", phase=samples.WF.RUNNING, duration=None, labels=()
        ),
        dataclasses.replace(base, name="aborted", phase=samples.WF.ABORTED, principal="ünï"),
        dataclasses.replace(
            base, name="never-created", created_at=None, phase=samples.WF.UNDEFINED
        ),
    ]


def records(table: rows.Table) -> list:
    """Records of the table's kind, each with something special."""
    out: list = []
    for s in shapes():
        if table is rows.EXECUTIONS:
            out.append(samples.execution(s))
        elif table is rows.NODE_EXECUTIONS:
            out += [
                samples.node_execution(s, 0),
                samples.node_execution(s, 1, dynamic=True),  # dynamic workflow ref
                samples.node_execution(s, 2, parent="n1"),  # parent links
                samples.node_execution(s, 3),  # an error when s.failed
            ]
        elif table is rows.TASK_EXECUTIONS:
            out += [samples.task_execution(s, i, attempt) for i in (0, 3) for attempt in (0, 1)]
        else:
            out += [samples.signal(s, "approve", True), samples.signal(s, "pending", None)]
    return out


def written(table: rows.Table, items: list, tmp_path: Path) -> Path:
    path = tmp_path / f"{table.name}.parquet"
    data = parquet.sorted_rows(table, table.arrow(items, ARCHIVED))
    parquet.write_file(table, data, path, OPTIONS)
    return path


def read_back(table: rows.Table, path: Path) -> list[Stored]:
    got = duckdb.connect().execute(f"SELECT {table.select()} FROM read_parquet(?)", [str(path)])
    return [table.stored(row) for row in got.fetchall()]


@pytest.mark.parametrize("table", list(rows.TABLES.values()), ids=lambda t: t.name)
def test_records_round_trip_through_a_parquet_file(table: rows.Table, tmp_path: Path):
    items = records(table)
    path = written(table, items, tmp_path)
    back = read_back(table, path)
    assert sorted((s.value for s in back), key=table.key_of) == sorted(items, key=table.key_of)
    # Without a Stored, there is no object creation time: the record's own time stands in.
    for s in back:
        assert s.resource_version == 0 and s.name == table.object_name(s.value)
        assert s.created_at == (table.fallback_created_at(s.value) or rows._EPOCH)


def test_the_object_creation_time_of_a_stored_record_is_kept(tmp_path: Path):
    table = rows.SIGNALS
    created = dt.datetime(2026, 3, 14, 9, 30, 1, tzinfo=dt.UTC)
    items = [Stored("sig", 7, "uid", created, r) for r in records(table)]
    back = read_back(table, written(table, items, tmp_path))
    assert {s.created_at for s in back} == {created}
    assert sorted((s.value for s in back), key=table.key_of) == sorted(
        (i.value for i in items), key=table.key_of
    )


def test_typed_columns_hold_what_the_list_schema_computes(tmp_path: Path):
    items = records(rows.EXECUTIONS)
    data = pq.read_table(written(rows.EXECUTIONS, items, tmp_path)).to_pylist()
    by_name = {row["execution_name"]: row for row in data}
    for record in items:
        row = by_name[record.id.name]
        live = Stored("x", 1, "", CREATED, record)
        for listing_name, column in rows.EXECUTIONS.listing_columns().items():
            expected = EXECUTION_SCHEMA.columns[listing_name].get(live)
            if isinstance(expected, dt.timedelta):
                expected = rows.micros(expected)
            assert row[column.name] == expected, (record.id.name, listing_name)
        assert row["archived_at"] == ARCHIVED
        tags = [(t["key"], t["value"]) for t in row["tags"]]
        assert tags == [tuple(t) for t in samples_tags(record)]
        assert row["launch_plan_id"]["name"] == record.launch_plan_id.name
        assert (row["task_id"] is None) == (record.task_id is None)
    # Every list column of ListExecutions is a typed column: any filter can be translated.
    assert set(rows.EXECUTIONS.listing_columns()) == set(EXECUTION_SCHEMA.columns)


def samples_tags(record):
    from flyteadmin.core.executions.listing import execution_tags

    return execution_tags(Stored("x", 1, "", CREATED, record))


def test_files_are_sorted_with_statistics_and_bloom_filters(tmp_path: Path):
    items = records(rows.NODE_EXECUTIONS)
    metadata = pq.read_metadata(written(rows.NODE_EXECUTIONS, items, tmp_path))
    assert metadata.num_rows == len(items) and metadata.num_row_groups == len(items) // 4 + (
        len(items) % 4 > 0
    )
    group = metadata.row_group(0)
    names = [group.column(i).path_in_schema for i in range(group.num_columns)]
    sorting = group.sorting_columns
    assert [names[c.column_index] for c in sorting] == list(rows.NODE_EXECUTIONS.order)
    stats = {names[i]: group.column(i).statistics for i in range(group.num_columns)}
    assert stats["execution_name"].has_min_max and stats["node"] is None
    assert group.column(names.index("execution_name")).compression == "ZSTD"
    assert group.column(names.index("execution_name")).bloom_filter_offset is not None
    highs = [
        metadata.row_group(i).column(names.index("execution_name")).statistics.max
        for i in range(metadata.num_row_groups)
    ]
    lows = [
        metadata.row_group(i).column(names.index("execution_name")).statistics.min
        for i in range(metadata.num_row_groups)
    ]
    assert all(h <= lo for h, lo in zip(highs, lows[1:], strict=False))  # disjoint, in order


def test_layout_paths_months_and_segment_names():
    partition = Partition("node_executions", "flyte snacks/é", "development", month_of(CREATED))
    file_id = new_file_id(ARCHIVED)
    parts = path_parts(partition, file_id)
    assert parts[:3] == ("history", "v1", "node_executions")
    assert parts[3] == "project=flyte%20snacks%2F%C3%A9" and parts[5] == "month=2026-03"
    uri = "gs://b/metadata/" + "/".join(parts)
    assert parse_uri(uri) == (partition, file_id)
    assert file_id.startswith("20260420T120000123456Z-")
    assert month_of(None) == NO_MONTH
    assert month_of(dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == "2025-12"
    name = segment_name(uri)
    assert len(name) <= 63 and name == segment_name(uri) != segment_name(uri.replace("Z-", "Z-0"))
    with pytest.raises(ValueError):
        parse_uri("gs://b/metadata/history/v1/executions/project=p/month=x/f.parquet")


def test_identifier_columns_keep_every_field():
    record = samples.execution(shapes()[2])
    lp = identifier_pb2.Identifier()
    lp.CopyFrom(record.launch_plan_id)
    lp.org = "acme"
    changed = dataclasses.replace(record, launch_plan_id=lp)
    table = rows.EXECUTIONS.arrow([changed], ARCHIVED)
    values = [table.column(c)[0].as_py() for c in rows.EXECUTIONS.payload]
    assert rows.EXECUTIONS.decode(*values) == changed
