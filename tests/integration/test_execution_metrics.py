"""GetExecutionMetrics over gRPC: the span tree of a run whose events a test sends as propeller
would (a task node, and a task node whose first attempt failed), cut at several depths."""

from __future__ import annotations

import grpc
import pytest
from flyteidl.admin import execution_pb2, workflow_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import literals_pb2
from flyteidl.core import workflow_pb2 as core_wf
from flyteidl.event import event_pb2 as ev

from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    ident,
    int_interface,
    launch_plan_request,
    promise,
)
from tests.integration.test_events_api import Propeller, at, ints, run_task_node

WF = core_execution.WorkflowExecution.Phase
NODE = core_execution.NodeExecution.Phase


@pytest.fixture
def stub(registered_stub):
    return registered_stub


def metrics(p: Propeller, depth: int):
    return p.stub.GetExecutionMetrics(
        execution_pb2.WorkflowExecutionGetMetricsRequest(id=p.ex, depth=depth)
    ).span


def shape(span) -> list:
    """Each child as (label, start offset, end offset) in seconds from T0, or with children."""
    out = []
    for child in span.spans:
        kind = child.WhichOneof("id")
        label = {
            "operation_id": child.operation_id,
            "node_id": f"node {child.node_id.node_id}",
            "task_id": f"task {child.task_id.retry_attempt}",
        }.get(kind, kind)
        times = (child.start_time.seconds - at(0).seconds, child.end_time.seconds - at(0).seconds)
        out.append((label, *times, shape(child)) if child.spans else (label, *times))
    return out


def run(stub) -> Propeller:
    p = Propeller(stub, "m")
    p.create()
    p.workflow(WF.QUEUED, 0)
    p.workflow(WF.RUNNING, 1)
    p.node("start-node", NODE.RUNNING, 2)
    p.node("start-node", NODE.SUCCEEDED, 3)
    run_task_node(p, "n0", 10)
    run_task_node(p, "n1", 20, fail_first=True)
    p.node("end-node", NODE.SUCCEEDED, 30)
    p.workflow(WF.SUCCEEDED, 40, output_data=ints(o0=20))
    return p


def test_the_whole_tree(stub):
    p = run(stub)
    span = metrics(p, 10)
    assert span.workflow_id == p.ex and span.end_time == at(40)
    assert span.start_time == p.get().closure.created_at
    setup, *rest = shape(span)
    assert setup[0] == "WORKFLOW_SETUP" and setup[2] == 3
    assert rest == [
        (
            "node n0",
            10,
            19,
            [
                ("NODE_TRANSITION", 3, 10),
                ("NODE_SETUP", 10, 14),
                (
                    "task 0",
                    14,
                    18,
                    [("TASK_SETUP", 14, 15), ("TASK_RUNTIME", 15, 18), ("TASK_TEARDOWN", 18, 18)],
                ),
                ("NODE_TEARDOWN", 18, 19),
            ],
        ),
        (
            "node n1",
            20,
            29,
            [
                ("NODE_TRANSITION", 19, 20),
                ("NODE_SETUP", 20, 22),
                (
                    "task 0",
                    22,
                    23,
                    [("TASK_SETUP", 22, 22), ("TASK_RUNTIME", 22, 23), ("TASK_TEARDOWN", 23, 23)],
                ),
                ("NODE_RESET", 23, 24),
                (
                    "task 1",
                    24,
                    28,
                    [("TASK_SETUP", 24, 25), ("TASK_RUNTIME", 25, 28), ("TASK_TEARDOWN", 28, 28)],
                ),
                ("NODE_TEARDOWN", 28, 29),
            ],
        ),
        ("WORKFLOW_TEARDOWN", 29, 40),
    ]
    node = span.spans[1]
    assert node.node_id.execution_id == p.ex and node.spans[2].task_id.task_id.name == "t"


def test_depth_cuts_the_tree(stub):
    p = run(stub)
    assert not metrics(p, 0).spans  # the proto default: the execution alone
    one = shape(metrics(p, 1))
    assert [s[0] for s in one] == ["WORKFLOW_SETUP", "node n0", "node n1", "WORKFLOW_TEARDOWN"]
    assert one[1][3] == [("NODE_TRANSITION", 3, 10)]
    two = shape(metrics(p, 2))
    assert [s[0] for s in two[2][3]] == [
        "NODE_TRANSITION",
        "NODE_SETUP",
        "NODE_RESET",
        "NODE_TEARDOWN",
    ]
    assert shape(metrics(p, 3)) == shape(metrics(p, -1)) == shape(metrics(p, 10))


def test_a_run_that_has_not_started(stub):
    p = Propeller(stub, "waiting")
    p.create()
    span = metrics(p, 5)
    created = p.get().closure.created_at
    assert [s.operation_id for s in span.spans] == ["WORKFLOW_SETUP"]
    assert span.spans[0].start_time == created
    with pytest.raises(grpc.RpcError) as info:
        metrics(Propeller(stub, "nope"), 1)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_launch_plan_node_spans_its_child_execution(stub):
    """A workflow whose node launches ``lp``: the node's span holds the child run's span."""
    node = core_wf.Node(
        id="l0",
        inputs=[literals_pb2.Binding(var="x", binding=promise("", "x"))],
        workflow_node=core_wf.WorkflowNode(launchplan_ref=ident(RT.LAUNCH_PLAN, "lp")),
    )
    template = core_wf.WorkflowTemplate(
        id=ident(RT.WORKFLOW, "parent"),
        interface=int_interface(),
        nodes=[node],
        outputs=[literals_pb2.Binding(var="o0", binding=promise("l0", "o0"))],
    )
    stub.CreateWorkflow(
        workflow_pb2.WorkflowCreateRequest(
            id=ident(RT.WORKFLOW, "parent"), spec=workflow_pb2.WorkflowSpec(template=template)
        )
    )
    stub.CreateLaunchPlan(launch_plan_request("parent-lp", "parent", x=1))
    parent = Propeller(stub, "parent")
    stub.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT, domain=DOMAIN, name="parent",
            spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "parent-lp")),
        )
    )  # fmt: skip
    parent.workflow(WF.RUNNING, 1)
    parent.node("start-node", NODE.SUCCEEDED, 2)
    child = Propeller(stub, "child")
    child.create()
    parent.node("l0", NODE.RUNNING, 2, workflow_node_metadata=ev.WorkflowNodeMetadata(
        execution_id=child.ex))  # fmt: skip
    child.workflow(WF.RUNNING, 3)
    child.workflow(WF.SUCCEEDED, 8, output_data=ints(o0=1))
    parent.node("l0", NODE.SUCCEEDED, 9)
    parent.node("end-node", NODE.SUCCEEDED, 9)
    parent.workflow(WF.SUCCEEDED, 10, output_data=ints(o0=1))

    launched = metrics(parent, 10).spans[1]
    assert launched.node_id.node_id == "l0"
    kinds = [s.WhichOneof("id") for s in launched.spans]
    assert kinds == ["operation_id", "operation_id", "workflow_id", "operation_id"], kinds
    assert launched.spans[2].workflow_id == child.ex
    ops = [s.operation_id for s in launched.spans if s.operation_id]
    assert ops == ["NODE_TRANSITION", "NODE_SETUP", "NODE_TEARDOWN"]
