"""Applying flytepropeller's events (§6) to the stored records.

Each event is checked against the record it changes (a dry run of the pure transition), then
inline data is written to the blob store, then the state the transition makes is stored: a
refused event writes nothing. Node and task states go into the event journal
(core/events/journal.py: batched, folded into their objects shortly after), where one object's
events are serialized by a lock in this process; with the journal off or full they are written
into their objects, where concurrent events serialize on the resourceVersion without losing an
update. Workflow events update the Execution object. Objects of different executions never
wait for each other."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from flyteidl.admin import event_pb2 as admin_event
from flyteidl.core import identifier_pb2
from flyteidl.event import event_pb2
from google.protobuf.message import Message

from flyteadmin.core import metrics
from flyteadmin.core.blobstore import BlobStore
from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.crmap.node_executions import NodeExecutionRecord, node_execution_object_name
from flyteadmin.core.crmap.task_executions import (
    TaskExecutionKey,
    TaskExecutionRecord,
    task_execution_key,
    task_execution_object_name,
)
from flyteadmin.core.errors import AdminError, Code, invalid_argument, not_found
from flyteadmin.core.events import node_events, task_events, workflow_events
from flyteadmin.core.events.common import (
    NODE_TERMINAL,
    TASK_TERMINAL,
    Event,
    Offload,
    already_terminal,
    check_cluster,
    check_output_size,
)
from flyteadmin.core.events.common import (
    WorkflowPhase as Phase,
)
from flyteadmin.core.events.journal import Journal
from flyteadmin.core.events.reads import DetailReads
from flyteadmin.core.executions.history import ChildrenOf
from flyteadmin.core.executions.service import Executions
from flyteadmin.core.store import AlreadyExists, Collection, Stored


def index_nodes(records: Collection[NodeExecutionRecord]) -> None:
    def execution(r: NodeExecutionRecord) -> list[tuple[str, str, str]]:
        ex = r.id.execution_id
        return [(ex.project, ex.domain, ex.name)]

    def parent(r: NodeExecutionRecord) -> list[tuple[str, str, str, str]]:
        ex = r.id.execution_id
        return [(ex.project, ex.domain, ex.name, r.parent_id)] if r.parent_id else []

    def parent_task(r: NodeExecutionRecord) -> list[TaskExecutionKey]:
        return [task_execution_key(r.parent_task)] if r.parent_task is not None else []

    records.add_index("execution", execution)
    records.add_index("parent", parent)
    records.add_index("parent-task", parent_task)


def index_tasks(records: Collection[TaskExecutionRecord]) -> None:
    def node(r: TaskExecutionRecord) -> list[tuple[str, str, str, str]]:
        n = r.id.node_execution_id
        ex = n.execution_id
        return [(ex.project, ex.domain, ex.name, n.node_id)]

    records.add_index("node", node)


class Events(DetailReads):
    def __init__(
        self,
        executions: Executions,
        nodes: Collection[NodeExecutionRecord],
        tasks: Collection[TaskExecutionRecord],
        *,
        blobs: Callable[[], BlobStore],
        max_data_bytes: int,
        store_inline: bool = False,
        registered_tasks: Any = None,
        children_of: ChildrenOf,
        journal: Journal | None = None,
    ) -> None:
        self.journal = journal
        self.registered_tasks = registered_tasks
        self.children_of = children_of
        self.executions = executions
        self.nodes = nodes
        self.tasks = tasks
        self._blobs = blobs
        self.max_data_bytes = max_data_bytes
        # flyteadmin's remoteData.inlineEventDataPolicy: Offload (default) or StoreInline.
        self.store_inline = store_inline
        index_nodes(nodes)
        index_tasks(tasks)

    # ----------------------------------------------------------------------------- workflow

    async def workflow_event(self, request: admin_event.WorkflowExecutionEventRequest) -> None:
        if not request.HasField("event"):
            raise invalid_argument("Workflow event handler was called without event")
        event = request.event
        workflow_events.validate(event)
        if event.HasField("output_data"):
            check_output_size(event.output_data, self.max_data_bytes)
        stored = await self._running(event.execution_id)
        ex = event.execution_id
        offload = Offload()
        if event.HasField("output_data") and not self.store_inline:
            offload = Offload(
                outputs_uri=self._uri(ex.project, ex.domain, ex.name, "offloaded_outputs")
            )
        checked = workflow_events.apply(stored.value, event, offload)  # refuse before writing
        await self._write(event, offload)
        records = self.executions.records
        async with self._serial(records, stored.name):
            current = records.get(stored.name)
            if (
                self.journal is not None
                and self.journal.accepts()
                and workflow_events.journaled(event)
                and current is not None
                and current.resource_version
                and not records.pending_origin(stored.name)
            ):
                # One journal state at a time: a second event while one waits is written
                # into the object with it (so a replay is always one event). The check's
                # state is reused while it is still current, as in _store.
                if current is stored:
                    value = checked
                else:
                    value = workflow_events.apply(current.value, event, offload)
                field, rebase = workflow_events.replay(event)
                replay = (current.resource_version, field, rebase)
                await self.journal.record(records, stored.name, value, False, replay)
                return
            await records.mutate(
                stored.name, lambda value: workflow_events.apply(value, event, offload)
            )

    # ----------------------------------------------------------------------------- nodes

    async def node_event(self, request: admin_event.NodeExecutionEventRequest) -> None:
        if not request.HasField("event"):
            raise invalid_argument("Node event handler was called without event")
        event = request.event
        node_events.validate(event)
        if event.HasField("output_data"):
            check_output_size(event.output_data, self.max_data_bytes)
        ex = event.id.execution_id
        try:
            execution = (await self._running(ex)).value
        except AdminError as exc:
            if exc.code != Code.NOT_FOUND:
                raise
            raise not_found(
                f"Failed to get existing execution id: [{node_events.describe(event.id)}]"
            ) from exc
        check_cluster(
            event.producer_id, execution.execution.spec.metadata.system_metadata.execution_cluster
        )
        name = node_execution_object_name(event.id)
        async with self._serial(self.nodes, name):
            current = self.nodes.get(name)
            links = self._node_links(event, current)
            if event.workflow_node_metadata.HasField("execution_id"):
                await self.executions.lookup(event.workflow_node_metadata.execution_id)
            base = (ex.project, ex.domain, ex.name, event.id.node_id)
            inputs_unset = current is None or not current.value.node.input_uri
            offload = self._offload(event, inputs_unset, base)
            checked = node_events.apply(current.value if current else None, event, links, offload)
            await self._write(event, offload)
            dynamic = event.task_node_metadata.dynamic_workflow
            if event.task_node_metadata.HasField("dynamic_workflow"):
                await self.blobs.put(
                    links.dynamic_workflow_uri, dynamic.compiled_workflow.SerializeToString()
                )
            await self._store(
                self.nodes,
                name,
                lambda v: node_events.apply(v, event, links, offload),
                terminal=event.phase in NODE_TERMINAL,
                checked=(current, checked),
            )

    def _node_links(
        self,
        event: event_pb2.NodeExecutionEvent,
        current: Stored[NodeExecutionRecord] | None,
    ) -> node_events.Links:
        dynamic_uri = ""
        if event.task_node_metadata.HasField("dynamic_workflow"):
            ex, wf = event.id.execution_id, event.task_node_metadata.dynamic_workflow.id
            dynamic_uri = self.blobs.uri_for(
                "admin",
                ex.project,
                ex.domain,
                ex.name,
                event.id.node_id,
                f"{wf.project}_{wf.domain}_{wf.name}_{wf.version}",
            )
        if current is not None:
            return node_events.Links(dynamic_workflow_uri=dynamic_uri)
        parent_id, parent_task = "", None
        if event.HasField("parent_task_metadata"):
            parent_task = event.parent_task_metadata.id
            if self.tasks.get(task_execution_object_name(parent_task)) is None:
                raise not_found(
                    f"missing entity of type TaskExecution with identifier {parent_task}"
                )
        if event.HasField("parent_node_metadata"):
            parent_id = event.parent_node_metadata.node_id
            parent = identifier_pb2.NodeExecutionIdentifier(
                execution_id=event.id.execution_id, node_id=parent_id
            )
            if self.nodes.get(node_execution_object_name(parent)) is None:
                raise not_found(
                    f"missing entity of type NodeExecution with identifier "
                    f"{node_events.describe(parent)}"
                )
        return node_events.Links(parent_id, parent_task, dynamic_uri)

    # ----------------------------------------------------------------------------- tasks

    async def task_event(self, request: admin_event.TaskExecutionEventRequest) -> None:
        if not request.HasField("event"):
            raise invalid_argument("Task event handler was called without event")
        event = request.event
        task_events.validate(event)
        if event.HasField("output_data"):
            check_output_size(event.output_data, self.max_data_bytes)
        node_id = event.parent_node_execution_id
        execution = (await self._running(node_id.execution_id)).value
        check_cluster(
            event.producer_id, execution.execution.spec.metadata.system_metadata.execution_cluster
        )
        if self.nodes.get(node_execution_object_name(node_id)) is None:
            raise not_found(
                f"Failed to get existing node execution id: [{node_events.describe(node_id)}]"
            )
        ident = task_events.task_execution_id(event)
        name = task_execution_object_name(ident)
        async with self._serial(self.tasks, name):
            current = self.tasks.get(name)
            ex, t = node_id.execution_id, event.task_id
            base: tuple[str, ...] = (ex.project, ex.domain, ex.name, node_id.node_id)
            base += (t.project, t.domain, t.name, t.version, str(event.retry_attempt))
            inputs_unset = current is None or not current.value.task.input_uri
            offload = self._offload(event, inputs_unset, base)
            checked = task_events.apply(current.value if current else None, event, offload)
            await self._write(event, offload)
            await self._store(
                self.tasks,
                name,
                lambda v: task_events.apply(v, event, offload),
                terminal=event.phase in TASK_TERMINAL,
                checked=(current, checked),
            )

    def _serial(self, records: Collection[Any], name: str) -> AbstractAsyncContextManager[None]:
        """Events of one object one after another in this process (with the journal; without
        it, resourceVersion conflicts order them)."""
        return self.journal.hold(records, name) if self.journal else contextlib.nullcontext()

    async def _store(
        self,
        records: Collection[Any],
        name: str,
        change: Callable[[Any], Any],
        *,
        terminal: bool,
        checked: tuple[Stored[Any] | None, Any],
    ) -> None:
        """Record the state ``change`` makes of the object's current one: in the journal, or
        (journal off or full) by writing the object, retrying on conflicts. ``checked``: the
        state the event's check made and what it was made from, used when that is still
        current (a pure transition: no need to run it again)."""
        current = records.get(name)
        if self.journal is not None and self.journal.accepts():
            if current is checked[0]:
                value = checked[1]
            else:  # another process's state arrived meanwhile
                value = change(current.value if current else None)
            await self.journal.record(records, name, value, terminal)
            return
        metrics.journal_records("direct")
        if current is None:
            try:
                await records.create(change(None))
                return
            except AlreadyExists:
                await records.read_through(name)  # a racing first event won: update it
        await records.mutate(name, change)

    async def _running(
        self, ident: identifier_pb2.WorkflowExecutionIdentifier
    ) -> Stored[ExecutionRecord]:
        """The live execution an event is for. One that is archived (or being archived) has
        ended long ago: its events are refused as for any finished execution, and nothing is
        written (a late event must not bring node objects back into etcd)."""
        stored = await self.executions.lookup(ident)
        if stored.resource_version and not stored.value.archived_in:
            return stored
        phase = stored.value.phase
        raise already_terminal(
            f"execution {ident.project}/{ident.domain}/{ident.name} has ended "
            f"({Phase.Name(phase)}) and is archived: no more events are recorded for it",
            Phase.Name(phase),
        )

    # ----------------------------------------------------------------------------- blobs

    @property
    def blobs(self) -> BlobStore:
        return self._blobs()

    def _uri(self, *parts: str) -> str:
        return self.blobs.uri_for(*parts)

    def _offload(
        self,
        event: event_pb2.NodeExecutionEvent | event_pb2.TaskExecutionEvent,
        inputs_unset: bool,
        base: tuple[str, ...],
    ) -> Offload:
        """§1.5 paths for the event's inline inputs and outputs (none with StoreInline)."""
        if self.store_inline:
            return Offload()
        inputs = outputs = ""
        if event.HasField("input_data") and inputs_unset:
            inputs = self._uri(*base, "offloaded_inputs")
        if event.HasField("output_data"):
            outputs = self._uri(*base, "offloaded_outputs")
        return Offload(inputs_uri=inputs, outputs_uri=outputs)

    async def _write(self, event: Event, offload: Offload) -> None:
        # A workflow event carries no inputs (its offload never has an inputs URI).
        if offload.inputs_uri and not isinstance(event, event_pb2.WorkflowExecutionEvent):
            await self._put(offload.inputs_uri, event.input_data)
        if offload.outputs_uri:
            await self._put(offload.outputs_uri, event.output_data)

    async def _put(self, uri: str, message: Message) -> None:
        await self.blobs.put(uri, message.SerializeToString(deterministic=True))
