"""Reads of archived executions: the history engine (core/history), seen the way the services
see the live store, so every read answers the same for an execution archived a month ago as for
one that finished a minute ago.

An execution is in one of three places:

* live and not archived: everything in the watch caches;
* live and marked (``archived_in``): the archiver has written it and its node and task
  executions and signals to history and is deleting the objects; its children are read from
  history already (some of their objects may be gone), the execution itself from the cache;
* archived: only in history.

The engine learns of history files from the HistorySegment objects' watch; a mark names the
files too, so a worker whose segment watch lags still finds a just-archived execution: the
files named by marks it saw are made queryable before any history read (``_settle``).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flyteidl.core.identifier_pb2 import NodeExecutionIdentifier, TaskExecutionIdentifier

from flyteadmin.core.crmap.executions import ExecutionRecord, execution_object_name
from flyteadmin.core.crmap.history_segments import HistorySegment
from flyteadmin.core.crmap.node_executions import NodeExecutionRecord, node_execution_object_name
from flyteadmin.core.crmap.signals import SignalRecord
from flyteadmin.core.crmap.task_executions import (
    TaskExecutionKey,
    TaskExecutionRecord,
    task_execution_key,
    task_execution_object_name,
)
from flyteadmin.core.executions.listing import SCHEMA as EXECUTION_SCHEMA
from flyteadmin.core.history.engine import HistoryEngine
from flyteadmin.core.history.layout import month_of
from flyteadmin.core.history.sql import EntityId
from flyteadmin.core.history.writer import Batch, HistoryWriter
from flyteadmin.core.listing import Filter, ListQuery, joined_matches
from flyteadmin.core.store import Collection, Stored
from flyteadmin.core.timestamps import stamp_datetime

log = logging.getLogger(__name__)
ExecutionKey = tuple[str, str, str]
# A one-row list: what warms the engine's per-project-domain bookkeeping.
_WARM_QUERY = ListQuery(EXECUTION_SCHEMA, (), EXECUTION_SCHEMA.default_sort, 0, 1)
_CHILDREN_CACHED = 256  # archived executions whose children are kept in memory (LRU)


def key_of(ident: Any) -> ExecutionKey:
    return (ident.project, ident.domain, ident.name)


class Children:
    """The node executions, task executions and signals of one archived execution, indexed
    by the lookups the reads need (``LiveChildren`` answers the same from the caches)."""

    def __init__(
        self,
        nodes: Iterable[Stored[NodeExecutionRecord]],
        tasks: Iterable[Stored[TaskExecutionRecord]],
        signals: Iterable[Stored[SignalRecord]],
    ) -> None:
        self.execution: Stored[ExecutionRecord] | None = None  # set by ChildrenOf
        self._nodes = {n.name: n for n in nodes}
        self._tasks = {t.name: t for t in tasks}
        self._signals = list(signals)
        self._by_parent: dict[str, list[Stored[NodeExecutionRecord]]] = {}
        self._by_parent_task: dict[TaskExecutionKey, list[Stored[NodeExecutionRecord]]] = {}
        self._tasks_of: dict[str, list[Stored[TaskExecutionRecord]]] = {}
        for node in self._nodes.values():
            if node.value.parent_id:
                self._by_parent.setdefault(node.value.parent_id, []).append(node)
            if node.value.parent_task is not None:
                key = task_execution_key(node.value.parent_task)
                self._by_parent_task.setdefault(key, []).append(node)
        for task in self._tasks.values():
            node_id = task.value.id.node_execution_id.node_id
            self._tasks_of.setdefault(node_id, []).append(task)

    def node(self, ident: NodeExecutionIdentifier) -> Stored[NodeExecutionRecord] | None:
        return self._nodes.get(node_execution_object_name(ident))

    def task(self, ident: TaskExecutionIdentifier) -> Stored[TaskExecutionRecord] | None:
        return self._tasks.get(task_execution_object_name(ident))

    def all_nodes(self) -> list[Stored[NodeExecutionRecord]]:
        return list(self._nodes.values())

    def with_parent(self, node_id: str) -> list[Stored[NodeExecutionRecord]]:
        return list(self._by_parent.get(node_id, ()))

    def with_parent_task(self, key: TaskExecutionKey) -> list[Stored[NodeExecutionRecord]]:
        return list(self._by_parent_task.get(key, ()))

    def has_children(self, node_id: str) -> bool:
        """Whether any node has ``node_id`` as its parent node (``with_parent`` not empty)."""
        return bool(self._by_parent.get(node_id))

    def has_task_children(self, key: TaskExecutionKey) -> bool:
        """Whether any node has this task execution as its parent (``with_parent_task``)."""
        return bool(self._by_parent_task.get(key))

    def tasks_of(self, node_id: str) -> list[Stored[TaskExecutionRecord]]:
        return list(self._tasks_of.get(node_id, ()))

    def all_signals(self) -> list[Stored[SignalRecord]]:
        return list(self._signals)


class LiveChildren(Children):
    """The same lookups, answered by the watch caches' indexes (nothing copied)."""

    def __init__(
        self,
        key: ExecutionKey,
        nodes: Collection[NodeExecutionRecord],
        tasks: Collection[TaskExecutionRecord],
        signals: Collection[SignalRecord],
    ) -> None:
        self.key = key
        self._node_records, self._task_records, self._signal_records = nodes, tasks, signals

    def node(self, ident: NodeExecutionIdentifier) -> Stored[NodeExecutionRecord] | None:
        return self._node_records.get(node_execution_object_name(ident))

    def task(self, ident: TaskExecutionIdentifier) -> Stored[TaskExecutionRecord] | None:
        return self._task_records.get(task_execution_object_name(ident))

    def all_nodes(self) -> list[Stored[NodeExecutionRecord]]:
        return self._node_records.by_index("execution", self.key)

    def with_parent(self, node_id: str) -> list[Stored[NodeExecutionRecord]]:
        return self._node_records.by_index("parent", (*self.key, node_id))

    def with_parent_task(self, key: TaskExecutionKey) -> list[Stored[NodeExecutionRecord]]:
        return self._node_records.by_index("parent-task", key)

    # Counts, not lists: a list answer asks this of every item it holds.
    def has_children(self, node_id: str) -> bool:
        return self._node_records.index_count("parent", (*self.key, node_id)) > 0

    def has_task_children(self, key: TaskExecutionKey) -> bool:
        return self._node_records.index_count("parent-task", key) > 0

    def tasks_of(self, node_id: str) -> list[Stored[TaskExecutionRecord]]:
        return self._task_records.by_index("node", (*self.key, node_id))

    def all_signals(self) -> list[Stored[SignalRecord]]:
        return self._signal_records.by_index("execution", self.key)


class ExecutionHistory:
    """What the executions, events and signals services read of archived executions."""

    def __init__(
        self,
        engine: HistoryEngine,
        executions: Collection[ExecutionRecord],
        segments: Collection[HistorySegment],
        registered: dict[str, Callable[[str, str], list[Stored[Any]]]],
    ) -> None:
        self.engine = engine
        self.segments = segments
        self.writer = HistoryWriter(engine.store, engine.settings, engine.cache)
        # Files named by marks of executions being archived, maybe not yet known to the
        # engine (its segment watch may lag the executions watch).
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._children: collections.OrderedDict[ExecutionKey, Children] = collections.OrderedDict()
        # Candidates of a join on a registered kind, per project-domain ("launch_plan" ->
        # (project, domain) -> stored records).
        self._registered = registered
        executions.add_listener(self._on_execution)
        segments.add_listener(self._on_segment)

    # ----------------------------------------------------------------------------- feeding

    def _on_execution(self, event: str, stored: Stored[ExecutionRecord]) -> None:
        if stored.value.archived_in:
            with self._lock:
                self._pending.update(stored.value.archived_in)

    def _on_segment(self, event: str, stored: Stored[HistorySegment]) -> None:
        if event == "DELETED":
            self.engine.remove(stored.value.name)
        else:
            self.engine.add(stored.value)

    async def _settle(self) -> None:
        """Make the files named by marks queryable (usually known already: no I/O)."""
        with self._lock:
            pending = list(self._pending)
        if not pending:
            return
        known = {s.file.uri for s in self.engine.segments()}
        for uri in pending:
            if uri not in known:
                await self.engine.ensure(uri)
        with self._lock:
            self._pending.difference_update(pending)

    async def keep_warm(self, interval: float = 300.0) -> None:
        """Until cancelled: download every registered history file into the local cache (and
        evict unreferenced ones), and answer one list per project-domain, so that no client
        pays for a download or the engine's first scan of a project-domain. Runs in the
        background of an API server."""
        while True:
            try:
                await self.engine.prefetch()
                pds = {(f.project, f.domain) for f in self.engine.active_files()}
                for project, domain in sorted(pds):
                    await self.engine.list_executions(_WARM_QUERY, project, domain, lambda f: ())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reads fetch what they need anyway
                log.warning("warming the history cache: %s", exc)
            await asyncio.sleep(interval)

    # ----------------------------------------------------------------------------- reads

    async def execution(self, key: ExecutionKey) -> Stored[ExecutionRecord] | None:
        await self._settle()
        return await self.engine.get_execution(*key)

    async def first_rows(
        self, query: ListQuery, project: str, domain: str
    ) -> list[Stored[ExecutionRecord]]:
        await self._settle()
        return await self.engine.list_executions(
            query, project, domain, lambda f: self._resolve_join(query, f, project, domain)
        )

    def _resolve_join(
        self, query: ListQuery, f: Filter, project: str, domain: str
    ) -> Iterable[EntityId]:
        """The ids of the registered entities (of this project-domain) a join filter accepts."""
        matches = joined_matches(query.schema, f)
        candidates = self._registered[f.entity](project, domain)
        return [tuple(r.value.key) for r in candidates if matches(r)]

    async def supersede(self, record: ExecutionRecord) -> None:
        """Store a newer version of an archived execution (UpdateExecution's state change):
        a one-row history file that wins over the older row, registered as a segment."""
        (written,) = await self.writer.write(Batch(executions=[record]))
        await self.segments.create(HistorySegment(written).done())
        await self.engine.ensure(written)

    async def children(self, key: ExecutionKey, created_at: dt.datetime | None) -> Children:
        """The archived children of one execution (cached: history never changes them).
        ``created_at`` (the execution's) names its partition: only that month is read."""
        with self._lock:
            cached = self._children.get(key)
            if cached is not None:
                self._children.move_to_end(key)
                return cached
        await self._settle()
        month = month_of(created_at)
        nodes, tasks, signals = await asyncio.gather(
            self.engine.node_executions(*key, month=month),
            self.engine.task_executions(*key, month=month),
            self.engine.signals(*key, month=month),
        )
        children = Children(nodes, tasks, signals)
        with self._lock:
            self._children[key] = children
            while len(self._children) > _CHILDREN_CACHED:
                self._children.popitem(last=False)
        return children


class ChildrenOf:
    """Where the children of an execution are read: the live caches while the execution is
    live and not marked, else history."""

    def __init__(
        self,
        executions: Collection[ExecutionRecord],
        nodes: Collection[NodeExecutionRecord],
        tasks: Collection[TaskExecutionRecord],
        signals: Collection[SignalRecord],
    ) -> None:
        self.executions, self.nodes, self.tasks, self.signals = executions, nodes, tasks, signals
        self.history: ExecutionHistory | None = None  # set by the Backend

    async def __call__(self, ident: Any) -> Children:
        """``ident`` is the execution's identifier. An execution found nowhere gets empty live
        children, so lookups in it fail with their own not-found messages."""
        key = key_of(ident)
        live = self.executions.get(execution_object_name(ident))
        if live is not None and key_of(live.value.id) == key and not live.value.archived_in:
            return LiveChildren(key, self.nodes, self.tasks, self.signals)
        execution = live
        if self.history is not None and live is None:
            execution = await self.history.execution(key)
        if self.history is not None and execution is not None:
            created = stamp_datetime(execution.value.execution.closure.created_at)
            children = await self.history.children(key, created)
            children.execution = execution
            return children
        return LiveChildren(key, self.nodes, self.tasks, self.signals)
