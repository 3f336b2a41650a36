"""compile_workflow and requirements on hand-built templates: the closure's shape for every node
kind (start and end nodes, renamed branch cases, connections, compiled sub-workflows)."""

from __future__ import annotations

import pytest
from flyteidl.core import (
    workflow_pb2,
)
from google.protobuf import duration_pb2

from flyteadmin.core.compiler import (
    CompileErrors,
    id_key,
    requirements,
)
from tests.unit.compiler.builders import (
    INT,
    STR,
    collection,
    comparison,
    int_value,
    lpid,
    mapping,
    node,
    promise,
    scalar,
    str_value,
    task_node,
    tid,
    wid,
    workflow,
)
from tests.unit.compiler.catalog import GT, LP, SUB, TASKS, by_id, compile_, connections


def test_linear_workflow_closure() -> None:
    template = workflow(
        "wf",
        [
            task_node("n1", "to_str", {"x": promise("n0", "o")}, upstream=["n0"]),
            task_node("n0", "inc", {"x": promise("", "a")}),
        ],
        {"a": INT},
        {"out": STR},
        {"out": promise("n1", "o")},
    )
    original = workflow_pb2.WorkflowTemplate()
    original.CopyFrom(template)
    closure = compile_(template)

    assert template == original  # inputs are not modified
    primary = closure.primary
    assert [n.id for n in primary.template.nodes] == ["start-node", "end-node", "n1", "n0"]
    nodes = by_id(primary)
    assert nodes["start-node"] == workflow_pb2.Node(id="start-node")
    assert nodes["end-node"].inputs == template.outputs
    # A workflow-input promise ("" node id, as flytekit writes it) now names the start node.
    assert nodes["n0"].inputs[0].binding.promise.node_id == "start-node"
    # User nodes keep their registered upstream lists: never the start node (gotcha 4).
    assert list(nodes["n0"].upstream_node_ids) == []
    assert list(nodes["n1"].upstream_node_ids) == ["n0"]
    upstream, downstream = connections(primary)
    assert upstream == {"n0": ["start-node"], "n1": ["n0"], "end-node": ["n1"]}
    assert downstream == {"start-node": ["n0"], "n0": ["n1"], "n1": ["end-node"]}
    assert [t.template.id.name for t in closure.tasks] == [t.id.name for t in TASKS]
    assert list(closure.sub_workflows) == []


def test_orphans_are_linked_to_start_and_end_and_upstream_ids_sorted() -> None:
    template = workflow(
        "wf",
        [
            task_node("a", "produce"),
            task_node("b", "noop", upstream=["c", "a"]),
            task_node("c", "noop"),
        ],
    )
    closure = compile_(template)
    nodes = by_id(closure.primary)
    assert list(nodes["b"].upstream_node_ids) == ["a", "c"]
    upstream, downstream = connections(closure.primary)
    assert upstream == {
        "a": ["start-node"],
        "b": ["a", "c"],
        "c": ["start-node"],
        "end-node": ["b"],
    }
    assert downstream == {"start-node": ["a", "c"], "a": ["b"], "c": ["b"], "b": ["end-node"]}
    # An interface-less workflow gets empty input and output maps.
    assert closure.primary.template.interface.HasField("inputs")
    assert closure.primary.template.interface.HasField("outputs")


def test_collections_maps_scalars_optional_and_enums_bind() -> None:
    template = workflow(
        "wf",
        [
            task_node("n0", "inc", {"x": scalar(int_value(1))}),
            task_node(
                "n1", "sum_list", {"xs": collection(promise("n0", "o"), scalar(int_value(2)))}
            ),
            task_node("n2", "sum_map", {"m": mapping({"k": promise("n1", "o")})}),
            task_node("n3", "concat", {"a": scalar(str_value("x"))}),  # b is optional
            task_node("n4", "paint", {"c": scalar(str_value("red"))}),
            task_node("n5", "either", {"u": collection(scalar(int_value(1)))}),
            task_node("n6", "point"),
            task_node("n7", "inc", {"x": promise("n6", "p", "x")}),
        ],
    )
    upstream, _ = connections(compile_(template).primary)
    assert upstream["n1"] == ["n0"]
    assert upstream["n2"] == ["n1"]
    assert upstream["n7"] == ["n6"]


def test_branch_cases_are_renamed_and_get_upstream_edges() -> None:
    branch = workflow_pb2.BranchNode(
        if_else=workflow_pb2.IfElseBlock(
            case=workflow_pb2.IfBlock(
                condition=comparison(".a", GT, 0),
                then_node=task_node("c0", "inc", {"x": promise("n0", "o")}, upstream=["n0"]),
            ),
            other=[
                workflow_pb2.IfBlock(
                    condition=comparison(".a", GT, 5),
                    then_node=task_node("c1", "produce"),
                )
            ],
            else_node=task_node("c2", "sum_list", {"xs": collection(promise("n0", "o"))}),
        )
    )
    template = workflow(
        "wf",
        [
            task_node("n0", "inc", {"x": promise("", "a")}),
            node("n1", {".a": promise("", "a")}, branch_node=branch),
            task_node("n2", "to_str", {"x": promise("n1", "o")}),
        ],
        {"a": INT},
    )
    primary = compile_(template).primary
    if_else = by_id(primary)["n1"].branch_node.if_else
    assert [if_else.case.then_node.id, if_else.other[0].then_node.id, if_else.else_node.id] == [
        "n1-c0",
        "n1-c1",
        "n1-c2",
    ]
    upstream, downstream = connections(primary)
    assert upstream["n1-c0"] == ["n0"] and upstream["n1-c2"] == ["n0"]
    assert "n1-c1" not in upstream  # no bindings: nothing upstream
    assert upstream["n1"] == ["start-node"]  # the branch's own binding (.a)
    assert upstream["n2"] == ["n1"]  # the common output "o" is the branch's output
    assert not any(k.startswith("n1-") for k in downstream)


def test_gate_nodes() -> None:
    approve = workflow_pb2.GateNode(approve=workflow_pb2.ApproveCondition(signal_id="ok"))
    signal = workflow_pb2.GateNode(
        signal=workflow_pb2.SignalCondition(signal_id="s", type=STR, output_variable_name="o")
    )
    sleep = workflow_pb2.GateNode(
        sleep=workflow_pb2.SleepCondition(duration=duration_pb2.Duration(seconds=1))
    )
    template = workflow(
        "wf",
        [
            task_node("n0", "produce"),
            node("n1", {"o": promise("n0", "o")}, gate_node=approve),  # passes "o" through
            task_node("n2", "inc", {"x": promise("n1", "o")}),
            node("n3", gate_node=signal),
            task_node("n4", "concat", {"a": promise("n3", "o")}),
            node("n5", gate_node=sleep),
            task_node("n6", "noop", upstream=["n5"]),
        ],
    )
    upstream, _ = connections(compile_(template).primary)
    assert upstream["n1"] == ["n0"] and upstream["n2"] == ["n1"]
    assert upstream["n4"] == ["n3"] and upstream["n6"] == ["n5"]


def test_array_node_uses_its_sub_node_interface() -> None:
    sub = task_node("mapped", "mapped", {"x": collection(scalar(int_value(1)))})
    template = workflow(
        "wf",
        [
            node(
                "n0",
                {"x": collection(scalar(int_value(1)))},
                array_node=workflow_pb2.ArrayNode(node=sub),
            ),
            task_node("n1", "sum_list", {"xs": promise("n0", "o")}),
        ],
    )
    upstream, _ = connections(compile_(template).primary)
    assert upstream["n1"] == ["n0"]
    assert requirements(template, []).task_ids == (tid("mapped"), tid("sum_list"))


def test_launch_plan_node_exposes_required_and_bound_inputs() -> None:
    ref = workflow_pb2.WorkflowNode(launchplan_ref=lpid("lp"))
    template = workflow(
        "wf",
        [
            node("n0", {"x": scalar(int_value(1))}, workflow_node=ref),
            node("n1", {"x": scalar(int_value(1)), "d": scalar(int_value(2))}, workflow_node=ref),
            task_node("n2", "inc", {"x": promise("n0", "y")}),
        ],
    )
    assert requirements(template, []).launch_plan_ids == (lpid("lp"),)
    upstream, _ = connections(compile_(template).primary)
    assert upstream["n2"] == ["n0"]
    # The stored LaunchPlanClosure works as well as a LaunchPlanInterface.
    from flyteidl.admin import launch_plan_pb2

    closure = launch_plan_pb2.LaunchPlanClosure(
        expected_inputs=LP.expected_inputs, expected_outputs=LP.expected_outputs
    )
    compile_(template, launch_plans={id_key(lpid("lp")): closure})


def test_sub_workflows_are_compiled_once_and_failure_node_wired() -> None:
    ref = workflow_pb2.WorkflowNode(sub_workflow_ref=wid("sub"))
    unused = workflow("unused", [task_node("u0", "noop")])
    template = workflow(
        "wf",
        [
            node("n0", {"x": promise("", "a")}, workflow_node=ref),
            node("n1", {"x": promise("n0", "y")}, workflow_node=ref),
        ],
        {"a": INT},
    )
    template.failure_node.CopyFrom(task_node("fn", "inc", {"x": promise("", "a")}))
    closure = compile_(template, [SUB, unused])
    compiled_sub, raw_unused = closure.sub_workflows
    assert [n.id for n in compiled_sub.template.nodes] == ["start-node", "end-node", "s0"]
    assert connections(compiled_sub)[0] == {"s0": ["start-node"], "end-node": ["s0"]}
    # Supplied but never referenced: passed through uncompiled, as propeller does.
    assert raw_unused.template == unused and not raw_unused.HasField("connections")
    upstream, downstream = connections(closure.primary)
    assert upstream["fn"] == ["start-node"] and "fn" not in downstream
    assert closure.primary.template.failure_node.inputs[0].binding.promise.node_id == "start-node"
    assert requirements(template, [SUB]).task_ids == (tid("inc"),)


def test_requirements_are_sorted_unique_and_follow_branches_and_sub_workflows() -> None:
    branch = workflow_pb2.BranchNode(
        if_else=workflow_pb2.IfElseBlock(
            case=workflow_pb2.IfBlock(then_node=task_node("c0", "to_str")),
            other=[workflow_pb2.IfBlock(then_node=task_node("c1", "concat"))],
            else_node=node("c2", workflow_node=workflow_pb2.WorkflowNode(launchplan_ref=lpid("b"))),
        )
    )
    template = workflow(
        "wf",
        [
            task_node("n0", "produce"),
            task_node("n1", "produce"),
            node("n2", branch_node=branch),
            node("n3", workflow_node=workflow_pb2.WorkflowNode(sub_workflow_ref=wid("sub"))),
            node("n4", workflow_node=workflow_pb2.WorkflowNode(launchplan_ref=lpid("a"))),
        ],
    )
    found = requirements(template, [SUB])
    assert [t.name for t in found.task_ids] == ["concat", "inc", "produce", "to_str"]
    assert [lp.name for lp in found.launch_plan_ids] == ["a", "b"]
    # A missing sub-workflow is not an error yet (compile_workflow reports it): its references
    # are simply not followed.
    assert [t.name for t in requirements(template, []).task_ids] == ["concat", "produce", "to_str"]
    for subs in ([SUB, SUB], [workflow_pb2.WorkflowTemplate()]):
        with pytest.raises(CompileErrors):
            requirements(template, subs)
