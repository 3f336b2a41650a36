"""Moving finished executions out of etcd into history (docs/storage.md, "History").

etcd holds the live set; an execution that has been finished for ``archive.retention_seconds``
(sooner when the etcd budget is under pressure, core/budget.py) moves, with its node and task
executions and signals, to Parquet files in the blob store. Blob first, verified, then delete:

1. write the batch's files (one per table and partition) and read each back (core/history);
2. register them as HistorySegment objects, Committed, the executions' names listed;
3. per execution: **mark** it (``status.archivedIn``: the files holding it) -- from now on its
   children are read from history, and the execution is left out of live lists --, delete its
   node executions, task executions and signals (one delete-collection call each, by labels),
   then the execution;
4. mark the segments Done (their name lists dropped: the objects stay small).

A crash anywhere leaves duplicates, never a loss: before step 3 history has rows of executions
that are still live and unmarked (lists count the live object once; a later archive supersedes
the rows), during step 3 a marked execution's remaining objects are finished by ``resume``.
An execution that changed after its rows were written (e.g. UpdateExecution) is not marked:
it is archived again later, and its newer rows win.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from flyteidl.core import identifier_pb2

from flyteadmin.core.config import ArchiveSettings, EtcdSettings
from flyteadmin.core.crmap.executions import ExecutionRecord, execution_object_name
from flyteadmin.core.crmap.history_segments import COMMITTED, HistorySegment
from flyteadmin.core.crmap.labels import identity_labels, label_value_ok
from flyteadmin.core.events.common import WORKFLOW_TERMINAL
from flyteadmin.core.history.layout import HistoryFile, month_of
from flyteadmin.core.history.writer import Batch, HistoryWriter
from flyteadmin.core.store import Collection, NotFound, Stored
from flyteadmin.core.timestamps import stamp_datetime

log = logging.getLogger(__name__)

# Under budget pressure executions are archived before their retention, but never sooner than
# this after they ended: late events and notifications have a moment to land.
MIN_AGE = dt.timedelta(seconds=60)


class _Changed(Exception):
    """The execution changed after its rows were written: do not mark it."""


@dataclasses.dataclass
class Outcome:
    archived: int = 0  # executions moved and deleted
    skipped: int = 0  # changed meanwhile: archived again later
    files: int = 0


class Archiver:
    def __init__(
        self,
        backend: Any,
        settings: ArchiveSettings,
        etcd: EtcdSettings,
        *,
        delete_workflow_object: Callable[[ExecutionRecord], Any] | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.etcd = etcd
        self._delete_workflow_object = delete_workflow_object
        self._now = now
        engine = backend.history_engine
        self.writer = HistoryWriter(engine.store, engine.settings, engine.cache)

    @property
    def executions(self) -> Collection[ExecutionRecord]:
        records: Collection[ExecutionRecord] = self.backend.execution_records
        return records

    # ----------------------------------------------------------------------------- choosing

    def candidates(self) -> list[Stored[ExecutionRecord]]:
        """Finished, unmarked executions due for history, the longest-finished first: those
        past their retention, or, while the etcd budget is under pressure, every one finished
        for at least MIN_AGE; none while the event journal holds states of its objects."""
        now = self._now()
        pressure = self.backend.budget.pressure() >= self.etcd.archive_above
        cutoff = now - (
            MIN_AGE if pressure else dt.timedelta(seconds=self.settings.retention_seconds)
        )
        due = []
        for stored in self.executions.values():
            record = stored.value
            if record.phase not in WORKFLOW_TERMINAL or record.archived_in:
                continue
            if self.backend.journal.holds(_key(record.id)):
                continue  # states of its nodes or tasks are not all in their objects yet
            ended = stamp_datetime(record.execution.closure.updated_at) or stored.created_at
            if ended <= cutoff:
                due.append((ended, stored))
        due.sort(key=lambda item: (item[0], item[1].name))
        return [stored for _, stored in due[: self.settings.batch_executions]]

    # ----------------------------------------------------------------------------- moving

    async def run_once(self) -> Outcome:
        await self.resume()
        chosen = self.candidates()
        if not chosen:
            return Outcome()
        return await self.archive(chosen)

    async def archive(self, chosen: Sequence[Stored[ExecutionRecord]]) -> Outcome:
        backend = self.backend
        if self._delete_workflow_object is not None:
            for stored in chosen:  # the run's object goes first: it is live state too
                try:
                    await self._delete_workflow_object(stored.value)
                except Exception as exc:  # noqa: BLE001 - archived anyway; logged
                    log.warning("FlyteWorkflow of %s not deleted: %s", stored.name, exc)
        keys = [_key(s.value.id) for s in chosen]
        nodes = [n for k in keys for n in backend.node_execution_records.by_index("execution", k)]
        tasks = [
            t
            for n in nodes
            for t in backend.task_execution_records.by_index(
                "node", (*_key(n.value.id.execution_id), n.value.id.node_id)
            )
        ]
        signals = [s for k in keys for s in backend.signal_records.by_index("execution", k)]
        files = await self.writer.write(
            Batch(
                executions=list(chosen),
                node_executions=nodes,
                task_executions=tasks,
                signals=signals,
            )
        )
        segments = [HistorySegment(f) for f in files]
        for segment in segments:
            await backend.segment_records.create(segment)
        outcome = Outcome(files=len(files))
        for stored in chosen:
            try:
                await self._finish(stored, _files_of(stored.value, files))
                outcome.archived += 1
            except _Changed:
                outcome.skipped += 1
        for segment in segments:
            await self._done(segment)
        log.info(
            "archived %d executions (%d node, %d task executions, %d signals) into %d files%s",
            outcome.archived,
            len(nodes),
            len(tasks),
            len(signals),
            len(files),
            f"; {outcome.skipped} changed meanwhile" if outcome.skipped else "",
        )
        return outcome

    async def _finish(self, snapshot: Stored[ExecutionRecord], uris: tuple[str, ...]) -> None:
        """Mark the execution (if it is still what was written), delete its children, then it."""

        def mark(value: ExecutionRecord) -> ExecutionRecord:
            if value.archived_in:
                return value
            if value != snapshot.value:
                raise _Changed
            return dataclasses.replace(value, archived_in=uris)

        try:
            marked = await self.executions.mutate(snapshot.name, mark)
        except NotFound:
            return  # gone already (another archiver finished it)
        await self._delete(marked)

    async def _delete(self, marked: Stored[ExecutionRecord]) -> None:
        backend = self.backend
        ident = marked.value.id
        key = _key(ident)
        children = [
            (
                backend.node_execution_records,
                backend.node_execution_records.by_index("execution", key),
            ),
            (backend.signal_records, backend.signal_records.by_index("execution", key)),
        ]
        node_ids = [n.value.id.node_id for n in children[0][1]]
        tasks = [
            t
            for node_id in node_ids
            for t in backend.task_execution_records.by_index("node", (*key, node_id))
        ]
        children.insert(1, (backend.task_execution_records, tasks))
        labels = identity_labels(project=ident.project, domain=ident.domain, execution=ident.name)
        by_labels = all(label_value_ok(v) for v in key)
        for records, known in children:
            if not known and by_labels:
                continue  # nothing of this kind was cached: no call (a restart relists anyway)
            if by_labels:
                await records.delete_matching(labels, [s.name for s in known])
            else:
                for stored in known:
                    try:
                        await records.delete(stored.name)
                    except NotFound:
                        pass
        try:
            await self.executions.delete(marked.name)
        except NotFound:
            pass

    async def _done(self, segment: HistorySegment) -> None:
        try:
            await self.backend.segment_records.mutate(segment.name, lambda s: s.done())
        except NotFound:
            pass  # compacted away meanwhile

    async def resume(self) -> None:
        """Finish what an interrupted archive left: executions named by Committed segments
        that are marked lose their remaining objects; then the segments are Done."""
        for stored in self.backend.segment_records.values():
            segment = stored.value
            if segment.phase != COMMITTED:
                continue
            f = segment.file
            for name in f.execution_names:
                ident = identifier_pb2.WorkflowExecutionIdentifier(
                    project=f.project, domain=f.domain, name=name
                )
                live = self.executions.get(execution_object_name(ident))
                if live is not None and live.value.archived_in:
                    await self._delete(live)
            await self._done(segment)


def _key(ident: Any) -> tuple[str, str, str]:
    return (ident.project, ident.domain, ident.name)


def _files_of(record: ExecutionRecord, files: Sequence[HistoryFile]) -> tuple[str, ...]:
    """The files of the batch holding this execution's rows (its project, domain and month)."""
    project, domain, _ = _key(record.id)
    month = month_of(stamp_datetime(record.execution.closure.created_at))
    return tuple(f.uri for f in files if (f.project, f.domain, f.month) == (project, domain, month))
