"""flytepropeller's events over gRPC, and what the reads show afterwards: a test that acts as
propeller sends realistic streams (success, a retried task, a failure, an abort) and checks
GetExecution / node and task executions / data; refused events change nothing."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from flyteidl.admin import (
    common_pb2,
    event_pb2,
    execution_pb2,
    node_execution_pb2,
    task_execution_pb2,
)
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from flyteidl.event import event_pb2 as ev
from google.protobuf import timestamp_pb2
from grpc_status import rpc_status
from kubernetes import client

from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    ident,
    ints,
)
from tests.waiting import eventually

WF = core_execution.WorkflowExecution.Phase
NODE = core_execution.NodeExecution.Phase
TASK = core_execution.TaskExecution.Phase
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
Code = grpc.StatusCode


@pytest.fixture
def stub(registered_stub):
    return registered_stub


def at(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(T0 + dt.timedelta(seconds=seconds))
    return stamp


class Propeller:
    """Sends events of one execution the way flytepropeller does."""

    def __init__(self, stub, name: str) -> None:
        self.stub = stub
        self.ex = identifier_pb2.WorkflowExecutionIdentifier(
            project=PROJECT, domain=DOMAIN, name=name
        )
        self.task = ident(RT.TASK, "t")

    def create(self) -> None:
        self.stub.CreateExecution(
            execution_pb2.ExecutionCreateRequest(
                project=PROJECT,
                domain=DOMAIN,
                name=self.ex.name,
                spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "lp")),
            )
        )

    def workflow(self, phase: int, t: float, producer: str = "propeller", **kw) -> None:
        event = ev.WorkflowExecutionEvent(
            execution_id=self.ex, producer_id=producer, phase=phase, occurred_at=at(t), **kw
        )
        self.stub.CreateWorkflowEvent(
            event_pb2.WorkflowExecutionEventRequest(request_id=f"w{t}", event=event)
        )

    def node_id(self, node: str) -> identifier_pb2.NodeExecutionIdentifier:
        return identifier_pb2.NodeExecutionIdentifier(execution_id=self.ex, node_id=node)

    def node_request(self, node: str, phase: int, t: float, **kw):
        event = ev.NodeExecutionEvent(
            id=self.node_id(node),
            producer_id="propeller",
            phase=phase,
            occurred_at=at(t),
            spec_node_id=node,
            node_name=node,
            **kw,
        )
        return event_pb2.NodeExecutionEventRequest(request_id="n", event=event)

    def node(self, node: str, phase: int, t: float, **kw) -> None:
        self.stub.CreateNodeEvent(self.node_request(node, phase, t, **kw))

    def task_event(self, node: str, attempt: int, phase: int, t: float, **kw) -> None:
        event = ev.TaskExecutionEvent(
            task_id=self.task,
            parent_node_execution_id=self.node_id(node),
            retry_attempt=attempt,
            phase=phase,
            producer_id="propeller",
            occurred_at=at(t),
            task_type="python-task",
            **kw,
        )
        self.stub.CreateTaskEvent(event_pb2.TaskExecutionEventRequest(request_id="t", event=event))

    def task_id(self, node: str, attempt: int) -> identifier_pb2.TaskExecutionIdentifier:
        return identifier_pb2.TaskExecutionIdentifier(
            task_id=self.task, node_execution_id=self.node_id(node), retry_attempt=attempt
        )

    def get(self) -> execution_pb2.Execution:
        return self.stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=self.ex))

    def nodes(self, **kw) -> node_execution_pb2.NodeExecutionList:
        return self.stub.ListNodeExecutions(
            node_execution_pb2.NodeExecutionListRequest(
                workflow_execution_id=self.ex,
                limit=100,
                sort_by=common_pb2.Sort(key="created_at", direction=common_pb2.Sort.ASCENDING),
                **kw,
            )
        )

    def tasks(self, node: str) -> task_execution_pb2.TaskExecutionList:
        return self.stub.ListTaskExecutions(
            task_execution_pb2.TaskExecutionListRequest(
                node_execution_id=self.node_id(node), limit=100
            )
        )


def log(name: str, uri: str, **kw) -> core_execution.TaskLog:
    return core_execution.TaskLog(name=name, uri=uri, **kw)


def run_task_node(
    p: Propeller, node: str, start: float, *, fail_first: bool = False, input_uri: str = ""
) -> None:
    p.node(node, NODE.QUEUED, start, input_uri=input_uri or f"gs://b/{node}/inputs.pb")
    p.node(node, NODE.RUNNING, start + 1)
    attempt = 0
    if fail_first:
        p.task_event(node, 0, TASK.RUNNING, start + 2, logs=[log("k8s", "http://l/0")])
        p.task_event(
            node,
            0,
            TASK.FAILED,
            start + 3,
            error=core_execution.ExecutionError(
                code="OOMKilled", message="out of memory", kind=core_execution.ExecutionError.USER
            ),
        )
        attempt = 1
    p.task_event(node, attempt, TASK.QUEUED, start + 4, reason="pod scheduled")
    p.task_event(node, attempt, TASK.RUNNING, start + 5, logs=[log("k8s", "http://l/a")])
    p.task_event(
        node,
        attempt,
        TASK.RUNNING,
        start + 6,
        phase_version=1,
        logs=[log("dash", "http://d/a")],
        custom_info={"a": 1},
    )
    p.task_event(node, attempt, TASK.SUCCEEDED, start + 8, output_data=ints(o0=start))
    p.node(node, NODE.SUCCEEDED, start + 9, output_data=ints(o0=start))


def stored(kube_api, namespace, plural: str) -> list[dict]:
    return client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, plural
    )["items"]


def snapshot(kube_api, namespace) -> dict[str, str]:
    """name -> resourceVersion of every execution, node and task execution object and of
    every batch of the event journal."""
    out = {}
    for plural in ("executions", "nodeexecutions", "taskexecutions", "eventbatches"):
        for item in stored(kube_api, namespace, plural):
            out[item["metadata"]["name"]] = item["metadata"]["resourceVersion"]
    return out


def refused(call, code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    return info.value


def failure_reason(error: grpc.RpcError) -> event_pb2.EventFailureReason:
    status = rpc_status.from_call(error)
    reason = event_pb2.EventFailureReason()
    assert status is not None and status.details[0].Unpack(reason)
    return reason


def test_a_successful_run_with_a_retried_task(stub, kube_api, namespace, stored_inputs):
    p = Propeller(stub, "ok")
    p.create()
    p.workflow(WF.QUEUED, 0)
    p.workflow(WF.RUNNING, 1)
    run_task_node(p, "n0", 10)
    n1_inputs = stored_inputs("n1", ints(x=10))
    run_task_node(p, "n1", 20, fail_first=True, input_uri=n1_inputs)
    p.workflow(WF.SUCCEEDED, 40, output_data=ints(o0=20))

    got = p.get()
    assert got.closure.phase == WF.SUCCEEDED
    assert got.closure.started_at == at(1) and got.closure.updated_at == at(40)
    assert got.closure.duration.ToTimedelta() == dt.timedelta(seconds=39)
    assert got.closure.outputs.uri.endswith(f"/{PROJECT}/{DOMAIN}/ok/offloaded_outputs")
    data = stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=p.ex))
    assert data.full_outputs == ints(o0=20)

    nodes = p.nodes().node_executions
    assert [n.id.node_id for n in nodes] == ["n0", "n1"]
    n1 = nodes[1]
    assert n1.closure.phase == NODE.SUCCEEDED and n1.input_uri == n1_inputs
    assert n1.closure.created_at == at(20) and n1.closure.started_at == at(21)
    assert n1.closure.duration.ToTimedelta() == dt.timedelta(seconds=8)
    assert n1.metadata.spec_node_id == "n1"
    assert n1.closure.output_uri.endswith("/ok/n1/offloaded_outputs")
    node_data = stub.GetNodeExecutionData(
        node_execution_pb2.NodeExecutionGetDataRequest(id=p.node_id("n1"))
    )
    assert node_data.full_outputs == ints(o0=20)
    assert node_data.full_inputs == ints(x=10)
    assert node_data.flyte_urls.outputs == f"flyte://v1/{PROJECT}/{DOMAIN}/ok/n1/o"

    attempts = p.tasks("n1").task_executions
    assert [t.id.retry_attempt for t in attempts] == [0, 1]
    first, second = attempts
    assert first.closure.phase == TASK.FAILED
    assert first.closure.error.code == "OOMKilled"
    assert first.closure.error.kind == core_execution.ExecutionError.USER
    assert second.closure.phase == TASK.SUCCEEDED
    # Logs merged across phase versions; custom_info and reasons kept; times per §6.4.
    assert [(log.name, log.uri) for log in second.closure.logs] == [
        ("dash", "http://d/a"),
        ("k8s", "http://l/a"),
    ]
    assert dict(second.closure.custom_info) == {"a": 1}
    assert second.closure.reason == "pod scheduled"
    assert second.closure.started_at == at(25)
    assert second.closure.duration.ToTimedelta() == dt.timedelta(seconds=3)
    task = stub.GetTaskExecution(task_execution_pb2.TaskExecutionGetRequest(id=p.task_id("n1", 1)))
    assert task == second
    task_data = stub.GetTaskExecutionData(
        task_execution_pb2.TaskExecutionGetDataRequest(id=p.task_id("n1", 1))
    )
    assert task_data.full_outputs == ints(o0=20)
    assert task_data.flyte_urls.inputs == f"flyte://v1/{PROJECT}/{DOMAIN}/ok/n1/1/i"

    # A phase filter and a join on the execution.
    running = p.stub.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=p.node_id("n1"),
            limit=10,
            filters="eq(phase,FAILED)+eq(execution.phase,SUCCEEDED)",
        )
    )
    assert [t.id.retry_attempt for t in running.task_executions] == [0]


def test_refused_events_get_flyteadmins_codes_and_change_nothing(
    stub, kube_api, namespace, api_server
):
    p = Propeller(stub, "bad")
    p.create()
    p.workflow(WF.RUNNING, 1)
    run_task_node(p, "n0", 10)
    # The accepted events' states are in their objects (the journal folded them).
    eventually(api_server.backend.journal.idle, "the event journal folded")
    before = snapshot(kube_api, namespace)
    assert not [name for name in before if name.startswith("eb-")]

    refused(lambda: p.workflow(WF.RUNNING, 2), Code.ALREADY_EXISTS)
    refused(lambda: p.workflow(WF.QUEUED, 2), Code.FAILED_PRECONDITION)
    error = refused(lambda: p.workflow(WF.RUNNING, 2, producer="other"), Code.ALREADY_EXISTS)
    refused(lambda: p.node("n0", NODE.SUCCEEDED, 30), Code.ALREADY_EXISTS)
    error = refused(lambda: p.node("n0", NODE.RUNNING, 30), Code.FAILED_PRECONDITION)
    # Quirk 4 fixed: the stored phase, not the incoming one.
    assert failure_reason(error).already_in_terminal_state.current_phase == "SUCCEEDED"
    refused(lambda: p.task_event("n0", 0, TASK.SUCCEEDED, 30), Code.ALREADY_EXISTS)
    error = refused(lambda: p.task_event("n0", 0, TASK.RUNNING, 30), Code.FAILED_PRECONDITION)
    assert failure_reason(error).already_in_terminal_state.current_phase == "SUCCEEDED"
    refused(lambda: p.task_event("nope", 0, TASK.RUNNING, 30), Code.NOT_FOUND)
    refused(
        lambda: p.node(
            "n9",
            NODE.RUNNING,
            30,
            parent_node_metadata=ev.ParentNodeExecutionMetadata(node_id="zz"),
        ),
        Code.NOT_FOUND,
    )
    refused(lambda: Propeller(stub, "missing").node("n0", NODE.RUNNING, 1), Code.NOT_FOUND)
    missing_time = event_pb2.WorkflowExecutionEventRequest(
        event=ev.WorkflowExecutionEvent(execution_id=p.ex, phase=WF.SUCCEEDED)
    )
    refused(lambda: stub.CreateWorkflowEvent(missing_time), Code.INVALID_ARGUMENT)
    assert snapshot(kube_api, namespace) == before
    assert p.get().closure.phase == WF.RUNNING


def test_a_cluster_that_does_not_own_the_execution_is_refused(stub, kube_api, namespace):
    p = Propeller(stub, "clusters")
    p.create()
    p.workflow(WF.QUEUED, 0, producer="cluster-a")
    p.workflow(WF.QUEUED, 1, producer="cluster-b")  # QUEUED reassigns (exempt from checks)
    assert p.get().spec.metadata.system_metadata.execution_cluster == "cluster-b"
    p.workflow(WF.RUNNING, 2, producer="cluster-b")
    error = refused(
        lambda: p.workflow(WF.SUCCEEDED, 3, producer="cluster-a"), Code.FAILED_PRECONDITION
    )
    assert failure_reason(error).incompatible_cluster.cluster == "cluster-a"
    foreign = ev.NodeExecutionEvent(
        id=p.node_id("n0"), producer_id="cluster-a", phase=NODE.RUNNING, occurred_at=at(3)
    )
    request = event_pb2.NodeExecutionEventRequest(event=foreign)
    error = refused(lambda: stub.CreateNodeEvent(request), Code.FAILED_PRECONDITION)
    assert failure_reason(error).incompatible_cluster.cluster == "cluster-a"


def test_a_failure_with_an_error(stub):
    p = Propeller(stub, "fails")
    p.create()
    p.workflow(WF.RUNNING, 1)
    p.node("n0", NODE.RUNNING, 2, input_uri="gs://b/in")
    p.task_event("n0", 0, TASK.RUNNING, 3)
    boom = core_execution.ExecutionError(
        code="USER:Error", message="x" * 300, kind=core_execution.ExecutionError.USER
    )
    p.task_event("n0", 0, TASK.FAILED, 4, error=boom)
    p.node("n0", NODE.FAILED, 5, error=boom)
    p.workflow(WF.FAILED, 6, error=boom)
    got = p.get()
    assert got.closure.phase == WF.FAILED and got.closure.error == boom
    listed = p.nodes().node_executions[0]
    assert listed.closure.error.message == "x" * 100  # trimmed in lists only
    full = stub.GetNodeExecution(node_execution_pb2.NodeExecutionGetRequest(id=p.node_id("n0")))
    assert full.closure.error == boom
    assert p.tasks("n0").task_executions[0].closure.error == boom  # tasks are not trimmed
    filtered = p.nodes(filters="eq(phase,FAILED)+eq(execution.phase,FAILED)").node_executions
    assert [n.id.node_id for n in filtered] == ["n0"]


def test_an_abort_after_terminate(stub):
    p = Propeller(stub, "aborted")
    p.create()
    p.workflow(WF.RUNNING, 1)
    p.node("n0", NODE.RUNNING, 2)
    p.task_event("n0", 0, TASK.RUNNING, 3)
    stub.TerminateExecution(execution_pb2.ExecutionTerminateRequest(id=p.ex, cause="stop"))
    assert p.get().closure.phase == WF.ABORTING
    refused(lambda: p.workflow(WF.RUNNING, 4), Code.FAILED_PRECONDITION)
    refused(lambda: p.workflow(WF.SUCCEEDING, 4), Code.FAILED_PRECONDITION)
    p.task_event("n0", 0, TASK.ABORTED, 5)
    p.node("n0", NODE.ABORTED, 6)
    p.workflow(WF.ABORTED, 7)
    got = p.get()
    assert got.closure.phase == WF.ABORTED
    assert got.closure.abort_metadata.cause == "stop"
    assert got.closure.duration.ToTimedelta() == dt.timedelta(seconds=6)
    assert p.tasks("n0").task_executions[0].closure.phase == TASK.ABORTED


def test_listed_parents_follow_their_children(stub):
    """A listed node or task execution is a parent once a child is recorded, even when no event
    of its own said so: list entries are kept per version and per that flag (core/wire.py)."""
    p = Propeller(stub, "flags")
    p.create()
    p.workflow(WF.RUNNING, 1)
    p.node("n0", NODE.RUNNING, 2)
    p.task_event("n0", 0, TASK.RUNNING, 3)
    assert not p.nodes().node_executions[0].metadata.is_parent_node
    assert not p.tasks("n0").task_executions[0].is_parent
    p.node(
        "n0-0-dn0",
        NODE.RUNNING,
        4,
        parent_node_metadata=ev.ParentNodeExecutionMetadata(node_id="n0"),
        parent_task_metadata=ev.ParentTaskExecutionMetadata(id=p.task_id("n0", 0)),
    )
    assert p.nodes().node_executions[0].metadata.is_parent_node
    assert p.tasks("n0").task_executions[0].is_parent


def test_child_nodes_and_dynamic_workflows(stub):
    p = Propeller(stub, "parents")
    p.create()
    p.workflow(WF.RUNNING, 1)
    p.node("n0", NODE.RUNNING, 2, is_parent=True, is_dynamic=True)
    p.task_event("n0", 0, TASK.RUNNING, 3)
    p.node(
        "n0-0-dn0",
        NODE.RUNNING,
        4,
        parent_node_metadata=ev.ParentNodeExecutionMetadata(node_id="n0"),
    )
    p.node(
        "n0-0-dn1",
        NODE.QUEUED,
        4.5,
        parent_task_metadata=ev.ParentTaskExecutionMetadata(id=p.task_id("n0", 0)),
    )
    assert [n.id.node_id for n in p.nodes().node_executions] == ["n0"]
    children = p.nodes(unique_parent_id="n0").node_executions
    assert [n.id.node_id for n in children] == ["n0-0-dn0"]
    assert p.nodes().node_executions[0].metadata.is_parent_node
    for_task = stub.ListNodeExecutionsForTask(
        node_execution_pb2.NodeExecutionForTaskListRequest(
            task_execution_id=p.task_id("n0", 0), limit=10
        )
    )
    assert [n.id.node_id for n in for_task.node_executions] == ["n0-0-dn1"]
    assert stub.GetTaskExecution(
        task_execution_pb2.TaskExecutionGetRequest(id=p.task_id("n0", 0))
    ).is_parent
    refused(lambda: p.nodes(unique_parent_id="nope"), Code.NOT_FOUND)

    request = node_execution_pb2.GetDynamicNodeWorkflowRequest(id=p.node_id("n0"))
    refused(lambda: stub.GetDynamicNodeWorkflow(request), Code.NOT_FOUND)
    compiled = stub.GetWorkflow(
        common_pb2.ObjectGetRequest(id=ident(RT.WORKFLOW, "wf"))
    ).closure.compiled_workflow
    dynamic = ev.DynamicWorkflowNodeMetadata(
        id=ident(RT.WORKFLOW, "dyn"), compiled_workflow=compiled, dynamic_job_spec_uri="gs://b/f"
    )
    p.node(
        "n0",
        NODE.DYNAMIC_RUNNING,
        5,
        task_node_metadata=ev.TaskNodeMetadata(dynamic_workflow=dynamic),
    )
    assert stub.GetDynamicNodeWorkflow(request).compiled_workflow == compiled
    data = stub.GetNodeExecutionData(
        node_execution_pb2.NodeExecutionGetDataRequest(id=p.node_id("n0"))
    )
    assert data.dynamic_workflow.compiled_workflow == compiled
    assert data.dynamic_workflow.dynamic_job_spec_uri == "gs://b/f"


def test_a_missing_input_or_output_blob_is_data_loss_not_empty_data(stub, stored_inputs):
    # flyteadmin logs a failed read and answers empty maps (§5.7); here a blob that a stored
    # record points at and that is gone is DATA_LOSS, so a loss never looks like "no inputs".
    p = Propeller(stub, "lost")
    p.create()
    p.workflow(WF.RUNNING, 1)
    kept = stored_inputs("kept", ints(x=1))
    lost = kept.replace("/kept/", "/lost/")
    p.node("n0", NODE.RUNNING, 2, input_uri=lost)
    p.task_event("n0", 0, TASK.RUNNING, 3)
    p.task_event("n0", 0, TASK.SUCCEEDED, 4, output_uri=lost)
    p.node("n1", NODE.RUNNING, 5, input_uri=kept)
    p.node("n1", NODE.SUCCEEDED, 6, output_uri=lost)
    p.workflow(WF.SUCCEEDED, 7, output_uri=lost)
    for call in (
        lambda: stub.GetNodeExecutionData(
            node_execution_pb2.NodeExecutionGetDataRequest(id=p.node_id("n0"))
        ),
        lambda: stub.GetNodeExecutionData(
            node_execution_pb2.NodeExecutionGetDataRequest(id=p.node_id("n1"))
        ),
        lambda: stub.GetTaskExecutionData(
            task_execution_pb2.TaskExecutionGetDataRequest(id=p.task_id("n0", 0))
        ),
        lambda: stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=p.ex)),
    ):
        error = refused(call, Code.DATA_LOSS)
        assert lost in error.details()
    # The execution's own inputs were written by CreateExecution: they are served.
    p2 = Propeller(stub, "kept")
    p2.create()
    data = stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=p2.ex))
    assert data.full_inputs.literals["x"].scalar.primitive.integer == 5


def test_flyteremote_syncs_nodes_and_tasks(stub, api_server, stored_inputs):
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    p = Propeller(stub, "synced")
    p.create()
    p.workflow(WF.QUEUED, 0)
    p.workflow(WF.RUNNING, 1)
    run_task_node(p, "n0", 10, input_uri=stored_inputs("n0", ints(x=1)))
    run_task_node(p, "n1", 20, fail_first=True, input_uri=stored_inputs("n1", ints(x=2)))
    p.workflow(WF.SUCCEEDED, 40, output_data=ints(o0=20))

    remote = FlyteRemote(
        Config.for_endpoint(f"127.0.0.1:{api_server.grpc_port}", insecure=True),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )
    execution = remote.sync_execution(remote.fetch_execution(name="synced"), sync_nodes=True)
    assert execution.is_done and execution.closure.phase == WF.SUCCEEDED
    assert set(execution.node_executions) >= {"n0", "n1"}
    n1 = execution.node_executions["n1"]
    assert [t.id.retry_attempt for t in n1.task_executions] == [0, 1]
    assert n1.task_executions[1].closure.phase == TASK.SUCCEEDED
    assert execution.outputs["o0"] == 20


def test_concurrent_events_lose_no_update(stub):
    from concurrent.futures import ThreadPoolExecutor

    p = Propeller(stub, "busy")
    p.create()
    p.workflow(WF.RUNNING, 1)
    nodes = [f"n{i}" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:  # different objects of one execution, at once
        list(pool.map(lambda n: p.node(n, NODE.RUNNING, 2), nodes))
    assert sorted(n.id.node_id for n in p.nodes().node_executions) == sorted(nodes)

    p.task_event("n0", 0, TASK.RUNNING, 3)

    def version(v: int) -> str:
        try:
            p.task_event(
                "n0", 0, TASK.RUNNING, 3 + v, phase_version=v, logs=[log(f"l{v}", f"u{v}")]
            )
            return "ok"
        except grpc.RpcError as error:
            assert error.code() == Code.ALREADY_EXISTS  # overtaken by a higher version
            return "old"

    with ThreadPoolExecutor(8) as pool:  # one object, many writers
        outcomes = list(pool.map(version, range(1, 9)))
    task = p.tasks("n0").task_executions[0]
    names = {entry.name for entry in task.closure.logs}
    assert "l8" in names and len(names) == outcomes.count("ok")
    assert (
        stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=p.ex)).closure.phase
        == WF.RUNNING
    )
