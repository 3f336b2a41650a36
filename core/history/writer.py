"""Writing history: a batch of records -> one verified Parquet file per (table, partition).

``write`` builds, sorts and encodes the files in a worker thread (the event loop is never held
by Arrow or Parquet work), uploads each one, then reads it back from the blob store and checks
its byte digest and row count before it returns: a ``HistoryFile`` it returns is in the store,
whole. Only then may the caller delete the live objects (blob first, verified, then delete).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyteadmin.core.blobstore import BlobStore
from flyteadmin.core.config import HistorySettings
from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.crmap.node_executions import NodeExecutionRecord
from flyteadmin.core.crmap.signals import SignalRecord
from flyteadmin.core.crmap.task_executions import TaskExecutionRecord
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.history import parquet
from flyteadmin.core.history.cache import FileCache
from flyteadmin.core.history.layout import (
    FileFacts,
    HistoryFile,
    Partition,
    month_of,
    new_file_id,
    path_parts,
)
from flyteadmin.core.history.rows import (
    EXECUTIONS,
    NODE_EXECUTIONS,
    SIGNALS,
    TABLES,
    TASK_EXECUTIONS,
    ExecutionKey,
    Table,
)
from flyteadmin.core.store import Stored
from flyteadmin.core.timestamps import stamp_datetime

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class Batch:
    """Records to archive, of any of the four kinds; each may be a ``Stored`` (its object's
    creation time is kept: ListSignals sorts by it) or a bare record."""

    executions: Sequence[ExecutionRecord | Stored[ExecutionRecord]] = ()
    node_executions: Sequence[NodeExecutionRecord | Stored[NodeExecutionRecord]] = ()
    task_executions: Sequence[TaskExecutionRecord | Stored[TaskExecutionRecord]] = ()
    signals: Sequence[SignalRecord | Stored[SignalRecord]] = ()
    execution_created_at: Mapping[ExecutionKey, dt.datetime | None] = field(default_factory=dict)
    """Creation time of executions whose node/task/signal records are in the batch but not the
    execution itself: it decides their partition (month)."""
    archived_at: dt.datetime | None = None
    """The rows' version; default: now. A later version of a row supersedes this one."""

    def items(self) -> dict[str, Sequence[Any]]:
        return {
            EXECUTIONS.name: self.executions,
            NODE_EXECUTIONS.name: self.node_executions,
            TASK_EXECUTIONS.name: self.task_executions,
            SIGNALS.name: self.signals,
        }


def row_group_rows(settings: HistorySettings, table: Table[Any]) -> int:
    if table is EXECUTIONS:
        return settings.executions_row_group_rows
    return settings.children_row_group_rows


def file_options(settings: HistorySettings, table: Table[Any]) -> parquet.FileOptions:
    return parquet.FileOptions(row_group_rows(settings, table), settings.zstd_level)


def _unwrapped(item: Any) -> Any:
    return item.value if isinstance(item, Stored) else item


def _key(ident: Any) -> ExecutionKey:
    return (ident.project, ident.domain, ident.name)


def partitioned(batch: Batch) -> dict[Partition, list[Any]]:
    """The batch's items per (table, project, domain, month)."""
    created = dict(batch.execution_created_at)
    for item in batch.executions:
        record = _unwrapped(item)
        created[_key(record.id)] = stamp_datetime(record.execution.closure.created_at)
    groups: dict[Partition, list[Any]] = {}
    for table_name, items in batch.items().items():
        table = TABLES[table_name]
        for item in items:
            key = _key(table.execution(_unwrapped(item)))
            if key not in created:
                raise ValueError(
                    f"{table_name} of execution {'/'.join(key)}: its creation time is needed "
                    "(put the execution in the batch or in execution_created_at)"
                )
            partition = Partition(table_name, key[0], key[1], month_of(created[key]))
            groups.setdefault(partition, []).append(item)
    return groups


@dataclass(frozen=True)
class _Encoded:
    partition: Partition
    path: Path
    facts: FileFacts
    execution_names: tuple[str, ...]


class HistoryWriter:
    def __init__(
        self, store: BlobStore, settings: HistorySettings, cache: FileCache | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.cache = cache  # verified files are handed to it: queryable here without download

    async def write(self, batch: Batch) -> list[HistoryFile]:
        archived_at = batch.archived_at or dt.datetime.now(dt.UTC)
        with tempfile.TemporaryDirectory(prefix="history-", dir=self._temp_root()) as tmp:
            encoded = await asyncio.to_thread(self._encode, batch, archived_at, Path(tmp))
            return list(await asyncio.gather(*(self._upload(e, archived_at) for e in encoded)))

    def _temp_root(self) -> str | None:
        return str(self.cache.temp_dir) if self.cache is not None else None

    def _encode(self, batch: Batch, archived_at: dt.datetime, tmp: Path) -> list[_Encoded]:
        out: list[_Encoded] = []
        for partition, items in partitioned(batch).items():
            table = TABLES[partition.table]
            data = parquet.sorted_rows(table, table.arrow(items, archived_at))
            path = tmp / f"{len(out)}.parquet"
            parquet.write_file(table, data, path, file_options(self.settings, table))
            names = parquet.execution_names(data)
            out.append(_Encoded(partition, path, parquet.file_facts(path), names))
        return out

    async def _upload(self, encoded: _Encoded, archived_at: dt.datetime) -> HistoryFile:
        return await publish(
            self.store,
            encoded.partition,
            encoded.path,
            encoded.facts,
            written_at=archived_at,
            cache=self.cache,
            execution_names=encoded.execution_names,
        )


async def publish(
    store: BlobStore,
    partition: Partition,
    path: Path,
    facts: FileFacts,
    *,
    written_at: dt.datetime,
    cache: FileCache | None,
    execution_names: tuple[str, ...] = (),
) -> HistoryFile:
    """Upload a finished file under a new name of its partition, read it back and check it,
    and hand the checked copy to ``cache`` (when given)."""
    uri = store.uri_for(*path_parts(partition, new_file_id(written_at)))
    await store.put_file(uri, path, PARQUET_CONTENT_TYPE)
    back = path.with_suffix(".back")
    await verify(store, uri, back, facts)
    if cache is not None:
        cache.adopt(back, facts.sha256)
    return HistoryFile.of(uri, partition, facts, execution_names)


async def verify(store: BlobStore, uri: str, scratch: Path, expected: FileFacts) -> None:
    """Read ``uri`` back into ``scratch``; its digest and row count must be ``expected``'s."""
    await store.get_file(uri, scratch)
    got = await asyncio.to_thread(parquet.file_facts, scratch)
    if (got.sha256, got.rows, got.bytes) != (expected.sha256, expected.rows, expected.bytes):
        raise AdminError(
            Code.DATA_LOSS,
            f"history file {uri} reads back differently from what was written "
            f"(sha256 {got.sha256[:12]}/{expected.sha256[:12]}, rows {got.rows}/{expected.rows})",
        )
