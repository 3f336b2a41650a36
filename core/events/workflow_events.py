"""CreateWorkflowEvent (§6.1) as a pure transition of the stored execution record."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from flyteidl.admin import execution_pb2
from flyteidl.event import event_pb2

from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.errors import AdminError, failed_precondition, invalid_argument
from flyteadmin.core.events.common import (
    INLINE,
    WORKFLOW_TERMINAL,
    Offload,
    WorkflowPhase,
    already_recorded,
    already_terminal,
    foreign_producer,
    incompatible_cluster,
    require_occurred_at,
    set_duration,
)

Phase = WorkflowPhase


def validate(event: event_pb2.WorkflowExecutionEvent) -> None:
    if not event.HasField("execution_id"):
        raise invalid_argument("missing execution_id")
    for field in ("project", "domain", "name"):
        if not getattr(event.execution_id, field):
            raise invalid_argument(f"missing {field}")
    # flyteadmin answered Internal for a missing occurred_at; it is the caller's mistake.
    require_occurred_at(event)


def _describe(record: ExecutionRecord) -> str:
    ident = record.id
    return f"project:{ident.project} domain:{ident.domain} name:{ident.name}"


def check(record: ExecutionRecord, event: event_pb2.WorkflowExecutionEvent) -> None:
    """The rules of §6.1, in flyteadmin's order; raises AdminError."""
    stored, incoming = record.phase, event.phase
    cluster = record.execution.spec.metadata.system_metadata.execution_cluster
    name = Phase.Name
    if incoming != Phase.QUEUED:  # repeated QUEUED events reassign clusters: exempt
        if incoming == stored:
            raise already_recorded(
                f"This phase {name(incoming)} was already recorded for workflow execution "
                f"{_describe(record)}"
            )
        if foreign_producer(event.producer_id) and event.producer_id != cluster:
            if cluster or stored not in (Phase.UNDEFINED, Phase.QUEUED):
                raise incompatible_cluster(event.producer_id)
    if stored in WORKFLOW_TERMINAL:
        raise already_terminal(
            f"Invalid phase change from {name(stored)} to {name(incoming)} for workflow "
            f"execution {_describe(record)}",
            name(stored),
        )
    if stored == Phase.RUNNING and incoming == Phase.QUEUED:
        raise failed_precondition(
            f"Cannot go from {name(stored)} to {name(incoming)} for workflow execution "
            f"{_describe(record)}"
        )
    if stored == Phase.ABORTING and incoming not in WORKFLOW_TERMINAL:
        raise failed_precondition(
            f"Invalid phase change from aborting to {name(incoming)} for workflow execution "
            f"{_describe(record)}"
        )


def apply(
    record: ExecutionRecord, event: event_pb2.WorkflowExecutionEvent, offload: Offload = INLINE
) -> ExecutionRecord:
    """The execution record after ``event``; raises AdminError if the event is refused."""
    check(record, event)
    execution = execution_pb2.Execution()
    execution.CopyFrom(record.execution)
    closure = execution.closure
    stored = closure.phase
    closure.phase = event.phase
    closure.updated_at.CopyFrom(event.occurred_at)
    if event.phase == Phase.RUNNING:
        closure.started_at.CopyFrom(event.occurred_at)
    if event.phase in WORKFLOW_TERMINAL:
        set_duration(closure, event.occurred_at)
    if foreign_producer(event.producer_id) and stored in (Phase.UNDEFINED, Phase.QUEUED):
        execution.spec.metadata.system_metadata.execution_cluster = event.producer_id
    if event.HasField("output_uri"):
        closure.outputs.uri = event.output_uri
    elif event.HasField("output_data"):
        if offload.outputs_uri:
            closure.outputs.uri = offload.outputs_uri
        else:
            closure.output_data.CopyFrom(event.output_data)
    elif event.HasField("error"):
        closure.error.CopyFrom(event.error)
    return replace(record, execution=execution)


# ---------------------------------------------------------------------------- the journal


def journaled(event: event_pb2.WorkflowExecutionEvent) -> bool:
    """Whether the event's state can wait in the event journal: a phase on the way (the
    final one is written into the Execution at once), with no data inline (a record stays
    small)."""
    return event.phase not in WORKFLOW_TERMINAL and not event.HasField("output_data")


Rebase = Callable[[ExecutionRecord], ExecutionRecord | None]


def replay(event: event_pb2.WorkflowExecutionEvent) -> tuple[dict[str, Any], Rebase]:
    """What a journal record keeps to apply ``event`` again (read back by ``replayer``), and
    that change itself."""
    return {"workflowEvent": base64.b64encode(event.SerializeToString()).decode()}, _rebase(event)


def replayer(field: dict[str, Any]) -> Rebase:
    """The change of a journaled event, from its record's replay field."""
    return _rebase(
        event_pb2.WorkflowExecutionEvent.FromString(base64.b64decode(field["workflowEvent"]))
    )


def _rebase(event: event_pb2.WorkflowExecutionEvent) -> Rebase:
    """The change ``event`` made, made again from another execution record (an Execution
    written meanwhile by a writer that had not seen it); None where the event no longer
    applies (e.g. the execution was aborted meanwhile)."""

    def rebase(record: ExecutionRecord) -> ExecutionRecord | None:
        try:
            return apply(record, event)
        except AdminError:
            return None

    return rebase
