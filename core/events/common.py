"""What the three event kinds share: terminal phases, the cluster check, errors, times."""

from __future__ import annotations

from dataclasses import dataclass

from flyteidl.admin import event_pb2 as admin_event
from flyteidl.admin import execution_pb2, node_execution_pb2, task_execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import literals_pb2
from flyteidl.event import event_pb2
from google.protobuf import duration_pb2, timestamp_pb2

from flyteadmin.core.errors import AdminError, Code, failed_precondition, invalid_argument

WorkflowPhase = core_execution.WorkflowExecution.Phase
NodePhase = core_execution.NodeExecution.Phase
TaskPhase = core_execution.TaskExecution.Phase

WORKFLOW_TERMINAL = frozenset(
    {WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED, WorkflowPhase.ABORTED, WorkflowPhase.TIMED_OUT}
)
NODE_TERMINAL = frozenset(
    {
        NodePhase.SUCCEEDED,
        NodePhase.FAILED,
        NodePhase.TIMED_OUT,
        NodePhase.ABORTED,
        NodePhase.SKIPPED,
        NodePhase.RECOVERED,
    }
)
TASK_TERMINAL = frozenset({TaskPhase.SUCCEEDED, TaskPhase.FAILED, TaskPhase.ABORTED})

DEFAULT_PRODUCER = "propeller"


@dataclass(frozen=True)
class Offload:
    """Where the service put (or will put) an event's inline data. Empty strings: keep inline
    (the StoreInline policy); the transition never writes blobs itself, so it stays pure."""

    inputs_uri: str = ""
    outputs_uri: str = ""


INLINE = Offload()


def already_recorded(message: str) -> AdminError:
    return AdminError(Code.ALREADY_EXISTS, message)


def already_terminal(message: str, stored_phase_name: str) -> AdminError:
    # Quirk 4 fixed: flyteadmin put the incoming phase here for nodes and tasks; we report the
    # stored (terminal) phase, as it already did for workflows and as the field's name says.
    return failed_precondition(
        message,
        admin_event.EventFailureReason(
            already_in_terminal_state=admin_event.EventErrorAlreadyInTerminalState(
                current_phase=stored_phase_name
            )
        ),
    )


def incompatible_cluster(producer: str) -> AdminError:
    return failed_precondition(
        f"Cannot accept events for running/terminated execution from cluster {producer}",
        admin_event.EventFailureReason(
            incompatible_cluster=admin_event.EventErrorIncompatibleCluster(cluster=producer)
        ),
    )


def foreign_producer(producer: str) -> bool:
    return bool(producer) and producer != DEFAULT_PRODUCER


# The three kinds of event, and the closures node and task events update.
Event = (
    event_pb2.WorkflowExecutionEvent | event_pb2.NodeExecutionEvent | event_pb2.TaskExecutionEvent
)
Closure = node_execution_pb2.NodeExecutionClosure | task_execution_pb2.TaskExecutionClosure


def check_cluster(producer: str, stored_cluster: str) -> None:
    """§6.1: an event from a named cluster other than the one running the execution."""
    if foreign_producer(producer) and producer != stored_cluster:
        raise incompatible_cluster(producer)


def check_output_size(data: literals_pb2.LiteralMap, limit: int) -> None:
    size = data.ByteSize()
    if size > limit:
        raise AdminError(
            Code.RESOURCE_EXHAUSTED,
            f"Output data size exceeds platform configured threshold ({size} > {limit})",
        )


def require_occurred_at(event: Event) -> None:
    if not event.HasField("occurred_at"):
        raise invalid_argument("missing occurred_at")


def updated_time(
    event: event_pb2.NodeExecutionEvent | event_pb2.TaskExecutionEvent,
) -> timestamp_pb2.Timestamp:
    """§6.4: reported_at when set (non-zero), else occurred_at."""
    reported = event.reported_at
    if event.HasField("reported_at") and (reported.seconds or reported.nanos):
        return reported
    return event.occurred_at


def set_duration(
    closure: Closure | execution_pb2.ExecutionClosure, occurred_at: timestamp_pb2.Timestamp
) -> None:
    """Terminal: duration = occurred_at - started_at, only when started_at is known."""
    if not closure.HasField("started_at"):
        return
    delta = occurred_at.ToNanoseconds() - closure.started_at.ToNanoseconds()
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(max(delta, 0))
    closure.duration.CopyFrom(duration)


def set_outputs(
    closure: Closure,
    event: event_pb2.NodeExecutionEvent | event_pb2.TaskExecutionEvent,
    offload: Offload,
) -> None:
    """A terminal node or task event's result: an output URI, inline data (kept in the blob
    store when offloading), or an error. Node and task closures share these field names."""
    if event.HasField("output_uri"):
        closure.output_uri = event.output_uri
    elif event.HasField("output_data"):
        if offload.outputs_uri:
            closure.output_uri = offload.outputs_uri
        else:
            closure.output_data.CopyFrom(event.output_data)
    elif event.HasField("error"):
        closure.error.CopyFrom(event.error)
