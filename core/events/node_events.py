"""CreateNodeEvent (§6.2) as a pure transition: ``(stored record or None, event) -> record``.

Lookups the rules need (the parent node or task execution, a launched child execution) and
blob writes happen in the service; their results come in as plain arguments."""

from __future__ import annotations

from dataclasses import dataclass, replace

from flyteidl.admin import node_execution_pb2
from flyteidl.core import identifier_pb2
from flyteidl.event import event_pb2

from flyteadmin.core.crmap.node_executions import NodeExecutionRecord
from flyteadmin.core.errors import invalid_argument
from flyteadmin.core.events.common import (
    INLINE,
    NODE_TERMINAL,
    NodePhase,
    Offload,
    already_recorded,
    already_terminal,
    require_occurred_at,
    set_duration,
    set_outputs,
    updated_time,
)

Phase = NodePhase


@dataclass(frozen=True)
class Links:
    """What the service resolved for a node's first event."""

    parent_id: str = ""
    parent_task: identifier_pb2.TaskExecutionIdentifier | None = None
    dynamic_workflow_uri: str = ""


NO_LINKS = Links()


def validate(event: event_pb2.NodeExecutionEvent) -> None:
    """Quirk 2 fixed: flyteadmin only logged these failures; we return them."""
    ex = event.id.execution_id
    for field in ("project", "domain", "name"):
        if not getattr(ex, field):
            raise invalid_argument(f"missing {field}")
    if not event.id.node_id:
        raise invalid_argument("missing node_id")
    require_occurred_at(event)
    dynamic = event.task_node_metadata.dynamic_workflow
    if event.task_node_metadata.HasField("dynamic_workflow"):
        if not dynamic.id.name or not dynamic.id.version:
            raise invalid_argument("missing dynamic workflow id")
        if not dynamic.compiled_workflow.primary.template.id.name:
            raise invalid_argument("missing dynamic workflow's compiled primary template")


def describe(ident: identifier_pb2.NodeExecutionIdentifier) -> str:
    ex = ident.execution_id
    return f"project:{ex.project} domain:{ex.domain} name:{ex.name} node_id:{ident.node_id}"


def check(current: NodeExecutionRecord | None, event: event_pb2.NodeExecutionEvent) -> None:
    if current is None:
        return  # the first event creates the node, whatever its phase
    stored, name = current.phase, Phase.Name
    if stored == event.phase:
        raise already_recorded(
            f"This phase {name(event.phase)} was already recorded for node execution "
            f"{describe(event.id)}"
        )
    if stored in NODE_TERMINAL:
        raise already_terminal(
            f"Invalid phase change from {name(stored)} to {name(event.phase)} for node "
            f"execution {describe(event.id)}",
            name(stored),
        )


def apply(
    current: NodeExecutionRecord | None,
    event: event_pb2.NodeExecutionEvent,
    links: Links = NO_LINKS,
    offload: Offload = INLINE,
) -> NodeExecutionRecord:
    check(current, event)
    node = node_execution_pb2.NodeExecution()
    if current is None:
        node.id.CopyFrom(event.id)
        node.closure.created_at.CopyFrom(event.occurred_at)
        record = NodeExecutionRecord(
            node=node,
            parent_id=links.parent_id,
            parent_task=links.parent_task,
            dynamic_workflow_uri=links.dynamic_workflow_uri,
        )
    else:
        node.CopyFrom(current.node)
        record = current
        if links.dynamic_workflow_uri:
            record = replace(record, dynamic_workflow_uri=links.dynamic_workflow_uri)
    closure, meta = node.closure, node.metadata
    if not node.input_uri:  # inputs are set once
        if event.HasField("input_uri"):
            node.input_uri = event.input_uri
        elif event.HasField("input_data"):
            node.input_uri = offload.inputs_uri
    closure.phase = event.phase
    closure.updated_at.CopyFrom(updated_time(event))
    if event.retry_group:
        meta.retry_group = event.retry_group
    if event.spec_node_id:
        meta.spec_node_id = event.spec_node_id
    # Sticky: a later event without the flag does not switch it off.
    meta.is_parent_node |= event.is_parent
    meta.is_dynamic |= event.is_dynamic
    meta.is_array |= event.is_array
    meta.is_eager |= event.is_eager
    if event.phase == Phase.RUNNING:
        closure.started_at.CopyFrom(event.occurred_at)
        if event.deck_uri:
            closure.deck_uri = event.deck_uri
    if event.phase in NODE_TERMINAL:
        set_duration(closure, event.occurred_at)
        set_outputs(closure, event, offload)
        if event.deck_uri:
            closure.deck_uri = event.deck_uri
    if event.HasField("workflow_node_metadata") and not closure.HasField("workflow_node_metadata"):
        # admin.WorkflowNodeMetadata spells the field executionId (event's is execution_id).
        closure.workflow_node_metadata.executionId.CopyFrom(
            event.workflow_node_metadata.execution_id
        )
    if event.HasField("task_node_metadata"):
        _set_task_node_metadata(closure, event.task_node_metadata)
    return replace(record, node=node)


def _set_task_node_metadata(
    closure: node_execution_pb2.NodeExecutionClosure, metadata: event_pb2.TaskNodeMetadata
) -> None:
    target = closure.task_node_metadata
    if metadata.checkpoint_uri:
        target.checkpoint_uri = metadata.checkpoint_uri
    if metadata.HasField("catalog_key"):
        target.cache_status = metadata.cache_status
        target.catalog_key.CopyFrom(metadata.catalog_key)
    if metadata.HasField("dynamic_workflow") and metadata.dynamic_workflow.dynamic_job_spec_uri:
        closure.dynamic_job_spec_uri = metadata.dynamic_workflow.dynamic_job_spec_uri
