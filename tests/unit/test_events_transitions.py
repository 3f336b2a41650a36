"""The pure event transitions (§6): which events are refused, with which code and detail, and
what an accepted event does to the record."""

from __future__ import annotations

import datetime as dt

import pytest
from flyteidl.admin import event_pb2 as admin_event
from flyteidl.admin import execution_pb2
from flyteidl.core import catalog_pb2, identifier_pb2, literals_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.event import event_pb2 as ev
from google.protobuf import struct_pb2, timestamp_pb2

from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.events import node_events, task_events, workflow_events
from flyteadmin.core.events.common import Offload

WF = core_execution.WorkflowExecution.Phase
NODE = core_execution.NodeExecution.Phase
TASK = core_execution.TaskExecution.Phase
EX = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e")
NODE_ID = identifier_pb2.NodeExecutionIdentifier(execution_id=EX, node_id="n0")
TASK_ID = identifier_pb2.Identifier(
    resource_type=identifier_pb2.TASK, project="p", domain="d", name="t", version="v"
)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(T0 + dt.timedelta(seconds=seconds))
    return stamp


def execution(phase: int, cluster: str = "") -> ExecutionRecord:
    ex = execution_pb2.Execution(id=EX, closure=execution_pb2.ExecutionClosure(phase=phase))
    ex.spec.metadata.system_metadata.execution_cluster = cluster
    return ExecutionRecord(
        execution=ex, launch_plan_id=identifier_pb2.Identifier(), workflow_id=TASK_ID
    )


def wf_event(phase: int, t: float = 10, producer: str = "propeller", **kw):
    return ev.WorkflowExecutionEvent(
        execution_id=EX, phase=phase, occurred_at=at(t), producer_id=producer, **kw
    )


def refusal(call) -> AdminError:
    with pytest.raises(AdminError) as info:
        call()
    return info.value


# ----------------------------------------------------------------------------- workflow

WORKFLOW_TABLE = [
    # stored, incoming, producer, stored cluster, expected code (None: accepted)
    (WF.UNDEFINED, WF.QUEUED, "propeller", "", None),
    (WF.QUEUED, WF.QUEUED, "propeller", "", None),  # repeated QUEUED: cluster reassignment
    (WF.QUEUED, WF.RUNNING, "propeller", "", None),
    (WF.RUNNING, WF.RUNNING, "propeller", "", Code.ALREADY_EXISTS),
    (WF.RUNNING, WF.QUEUED, "propeller", "", Code.FAILED_PRECONDITION),
    (WF.SUCCEEDING, WF.RUNNING, "propeller", "", None),
    (WF.UNDEFINED, WF.SUCCEEDED, "propeller", "", None),  # skipping phases is fine
    (WF.SUCCEEDED, WF.FAILED, "propeller", "", Code.FAILED_PRECONDITION),
    (WF.SUCCEEDED, WF.SUCCEEDED, "propeller", "", Code.ALREADY_EXISTS),
    (WF.ABORTING, WF.RUNNING, "propeller", "", Code.FAILED_PRECONDITION),
    (WF.ABORTING, WF.ABORTED, "propeller", "", None),
    (WF.RUNNING, WF.SUCCEEDED, "b", "a", Code.FAILED_PRECONDITION),
    (WF.RUNNING, WF.SUCCEEDED, "a", "a", None),
    (WF.QUEUED, WF.QUEUED, "b", "a", None),
]


@pytest.mark.parametrize("stored, incoming, producer, cluster, code", WORKFLOW_TABLE)
def test_workflow_transitions(stored, incoming, producer, cluster, code):
    event = wf_event(incoming, producer=producer)
    if code is None:
        after = workflow_events.apply(execution(stored, cluster), event)
        assert after.phase == incoming
    else:
        assert (
            refusal(lambda: workflow_events.apply(execution(stored, cluster), event)).code == code
        )


def test_terminal_workflow_reports_the_stored_phase():
    error = refusal(lambda: workflow_events.apply(execution(WF.FAILED), wf_event(WF.RUNNING)))
    (detail,) = error.details
    assert detail == admin_event.EventFailureReason(
        already_in_terminal_state=admin_event.EventErrorAlreadyInTerminalState(
            current_phase="FAILED"
        )
    )


def test_workflow_times_outputs_and_cluster():
    record = workflow_events.apply(execution(WF.QUEUED), wf_event(WF.RUNNING, 5, producer="c1"))
    assert record.execution.closure.started_at == at(5)
    assert record.execution.spec.metadata.system_metadata.execution_cluster == "c1"
    data = literals_pb2.LiteralMap(literals={"o": literals_pb2.Literal()})
    done = workflow_events.apply(
        record, wf_event(WF.SUCCEEDED, 15, producer="c1", output_data=data), Offload("", "gs://o")
    )
    closure = done.execution.closure
    assert closure.duration.ToTimedelta() == dt.timedelta(seconds=10)
    assert closure.updated_at == at(15) and closure.outputs.uri == "gs://o"
    inline = workflow_events.apply(record, wf_event(WF.SUCCEEDED, 15, output_data=data))
    assert inline.execution.closure.output_data == data  # the StoreInline policy


def test_workflow_event_without_occurred_at_is_invalid():
    event = ev.WorkflowExecutionEvent(execution_id=EX, phase=WF.RUNNING)
    assert refusal(lambda: workflow_events.validate(event)).code == Code.INVALID_ARGUMENT


# ----------------------------------------------------------------------------- nodes


def node_event(phase: int, t: float = 10, **kw):
    return ev.NodeExecutionEvent(id=NODE_ID, phase=phase, occurred_at=at(t), **kw)


def test_first_node_event_creates_whatever_its_phase():
    record = node_events.apply(None, node_event(NODE.SUCCEEDED, 3, reported_at=at(4)))
    closure = record.node.closure
    assert closure.phase == NODE.SUCCEEDED and closure.created_at == at(3)
    assert closure.updated_at == at(4)  # reported_at wins
    assert not closure.HasField("duration")  # never started


NODE_TABLE = [
    (NODE.RUNNING, NODE.RUNNING, Code.ALREADY_EXISTS),
    (NODE.SUCCEEDED, NODE.SUCCEEDED, Code.ALREADY_EXISTS),
    (NODE.SUCCEEDED, NODE.RUNNING, Code.FAILED_PRECONDITION),
    (NODE.SKIPPED, NODE.RUNNING, Code.FAILED_PRECONDITION),
    (NODE.RECOVERED, NODE.FAILED, Code.FAILED_PRECONDITION),
    (NODE.RUNNING, NODE.QUEUED, None),  # no ordering beyond "same" and "terminal"
    (NODE.FAILING, NODE.FAILED, None),
]


@pytest.mark.parametrize("stored, incoming, code", NODE_TABLE)
def test_node_transitions(stored, incoming, code):
    current = node_events.apply(None, node_event(stored, 1))
    if code is None:
        assert node_events.apply(current, node_event(incoming)).phase == incoming
        return
    error = refusal(lambda: node_events.apply(current, node_event(incoming)))
    assert error.code == code
    if code == Code.FAILED_PRECONDITION:
        reason = error.details[0].already_in_terminal_state
        assert reason.current_phase == NODE.Name(stored)  # quirk 4: the stored phase


def test_node_updates_keep_inputs_flags_and_compute_duration():
    first = node_events.apply(
        None, node_event(NODE.QUEUED, 1, input_uri="gs://in", is_parent=True, retry_group="0")
    )
    running = node_events.apply(first, node_event(NODE.RUNNING, 2, input_uri="gs://other"))
    assert running.node.input_uri == "gs://in"  # set once
    assert running.node.metadata.is_parent_node  # sticky
    assert running.node.closure.started_at == at(2)
    error = core_execution.ExecutionError(code="E", message="m")
    done = node_events.apply(running, node_event(NODE.FAILED, 7, error=error, deck_uri="gs://d"))
    closure = done.node.closure
    assert closure.duration.ToTimedelta() == dt.timedelta(seconds=5)
    assert closure.error == error and closure.deck_uri == "gs://d"
    assert done.node.metadata.retry_group == "0"


def test_node_links_and_cache_metadata():
    parent = identifier_pb2.TaskExecutionIdentifier(task_id=TASK_ID, node_execution_id=NODE_ID)
    links = node_events.Links(parent_id="p0", parent_task=parent, dynamic_workflow_uri="gs://w")
    catalog = ev.TaskNodeMetadata(cache_status=2, catalog_key=catalog_pb2.CatalogMetadata())
    record = node_events.apply(None, node_event(NODE.RUNNING, task_node_metadata=catalog), links)
    assert record.parent_id == "p0" and record.parent_task == parent
    assert record.dynamic_workflow_uri == "gs://w"
    assert record.node.closure.task_node_metadata.cache_status == 2


# ----------------------------------------------------------------------------- tasks


def task_event(phase: int, t: float = 10, version: int = 0, **kw):
    return ev.TaskExecutionEvent(
        task_id=TASK_ID,
        parent_node_execution_id=NODE_ID,
        retry_attempt=0,
        phase=phase,
        phase_version=version,
        occurred_at=at(t),
        **kw,
    )


def log(name: str, uri: str, **kw) -> core_execution.TaskLog:
    return core_execution.TaskLog(name=name, uri=uri, **kw)


TASK_TABLE = [
    (TASK.RUNNING, 0, TASK.RUNNING, 0, Code.ALREADY_EXISTS),
    (TASK.RUNNING, 2, TASK.RUNNING, 1, Code.ALREADY_EXISTS),
    (TASK.RUNNING, 0, TASK.RUNNING, 1, None),  # a higher phase_version is an update
    (TASK.SUCCEEDED, 0, TASK.RUNNING, 0, Code.FAILED_PRECONDITION),
    (TASK.ABORTED, 0, TASK.FAILED, 0, Code.FAILED_PRECONDITION),
    (TASK.RETRYABLE_FAILED, 0, TASK.RUNNING, 0, None),  # not terminal
    (TASK.QUEUED, 0, TASK.SUCCEEDED, 0, None),
]


@pytest.mark.parametrize("stored, stored_version, incoming, version, code", TASK_TABLE)
def test_task_transitions(stored, stored_version, incoming, version, code):
    current = task_events.apply(None, task_event(stored, 1, stored_version))
    event = task_event(incoming, 2, version)
    if code is None:
        after = task_events.apply(current, event)
        assert (after.phase, after.phase_version) == (incoming, version)
        return
    error = refusal(lambda: task_events.apply(current, event))
    assert error.code == code
    if code == Code.FAILED_PRECONDITION:
        assert error.details[0].already_in_terminal_state.current_phase == TASK.Name(stored)


def test_task_logs_reasons_custom_info_and_times():
    first = task_events.apply(
        None,
        task_event(
            TASK.QUEUED,
            1,
            logs=[log("a", "u1")],
            reasons=[ev.EventReason(reason="queued", occurred_at=at(1))],
            custom_info=struct_pb2.Struct(fields={"x": struct_pb2.Value(number_value=1)}),
        ),
    )
    assert first.task.closure.reason == "queued"
    patch = struct_pb2.Struct()
    patch.update({"y": {"z": 1}, "x": None})
    running = task_events.apply(
        first,
        task_event(TASK.RUNNING, 3, logs=[log("b", "u2")], reason="started", custom_info=patch),
    )
    closure = running.task.closure
    assert [(entry.name, entry.uri) for entry in closure.logs] == [("b", "u2"), ("a", "u1")]
    assert [r.message for r in closure.reasons] == ["queued", "started"]
    assert closure.reason == "started"
    assert dict(closure.custom_info) == {"y": {"z": 1.0}}  # merge-patch: null removes x
    assert closure.started_at == at(3)
    done = task_events.apply(
        running,
        task_event(
            TASK.SUCCEEDED, 8, logs=[log("live", "u3", HideOnceFinished=True)], output_uri="gs://o"
        ),
    )
    closure = done.task.closure
    assert [entry.name for entry in closure.logs] == ["b", "a"]  # hidden once finished
    assert closure.duration.ToTimedelta() == dt.timedelta(seconds=5)
    assert closure.output_uri == "gs://o"


def test_pending_phases_keep_only_logs_shown_while_pending():
    first = task_events.apply(None, task_event(TASK.RUNNING, 1, logs=[log("a", "u1")]))
    pending = task_events.apply(
        first,
        task_event(TASK.QUEUED, 2, logs=[log("p", "u2", ShowWhilePending=True)]),
    )
    assert [entry.name for entry in pending.task.closure.logs] == ["p"]


def test_external_resources_merge_by_index_and_retry():
    def meta(*resources):
        return ev.TaskExecutionMetadata(
            generated_name="g", external_resources=[ev.ExternalResourceInfo(**r) for r in resources]
        )

    first = task_events.apply(
        None,
        task_event(
            TASK.RUNNING,
            1,
            metadata=meta(dict(index=1, external_id="b"), dict(index=0, external_id="a")),
        ),
    )
    assert [r.external_id for r in first.task.closure.metadata.external_resources] == ["a", "b"]
    update = meta(dict(index=1, phase=TASK.SUCCEEDED), dict(index=2, external_id="c"))
    after = task_events.apply(first, task_event(TASK.RUNNING, 2, version=1, metadata=update))
    resources = after.task.closure.metadata.external_resources
    assert [(r.index, r.external_id, r.phase) for r in resources] == [
        (0, "a", 0),
        (1, "b", TASK.SUCCEEDED),
        (2, "c", 0),
    ]


def test_task_events_need_occurred_at_and_full_ids():
    event = task_event(TASK.RUNNING)
    event.ClearField("occurred_at")
    assert refusal(lambda: task_events.validate(event)).message == "missing occurred_at"
    event = task_event(TASK.RUNNING)
    event.task_id.version = ""
    assert refusal(lambda: task_events.validate(event)).code == Code.INVALID_ARGUMENT
