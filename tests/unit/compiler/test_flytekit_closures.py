"""Real flytekit workflows (``flyte_sample.py``), serialized in-process by flytekit and registered
the way flyteadmin does it: tasks compiled, launch plans given their expected inputs, then the
workflow's requirements loaded and compiled. The closures are checked against what propeller
produces and what flytekit needs to read them back, and against golden JSON files.

Refresh the golden files with ``UPDATE_GOLDEN=1 pytest tests/unit/compiler``.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flyteidl.admin import launch_plan_pb2
from flyteidl.core import compiler_pb2, workflow_pb2
from google.protobuf import json_format

from flyteadmin.core.compiler import (
    END_NODE_ID,
    START_NODE_ID,
    IdKey,
    LaunchPlanInterface,
    compile_task,
    compile_workflow,
    id_key,
    requirements,
)
from flyteadmin.core.validation.launch_plans import check_launch_plan_inputs

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


@dataclass
class Registry:
    """What a flyteadmin would hold after registering one serialized workflow."""

    tasks: dict[IdKey, compiler_pb2.CompiledTask] = field(default_factory=dict)
    workflows: dict[IdKey, object] = field(default_factory=dict)  # admin WorkflowSpec
    launch_plans: dict[IdKey, LaunchPlanInterface] = field(default_factory=dict)
    launch_plan_specs: dict[IdKey, launch_plan_pb2.LaunchPlan] = field(default_factory=dict)


@functools.cache
def sample():
    from tests.unit.compiler import flyte_sample

    return flyte_sample


@functools.cache
def registered(name: str) -> tuple[Registry, compiler_pb2.CompiledWorkflowClosure]:
    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.models.admin.workflow import WorkflowSpec
    from flytekit.models.launch_plan import LaunchPlan
    from flytekit.models.task import TaskSpec
    from flytekit.tools.translator import get_serializable

    settings = SerializationSettings(
        image_config=ImageConfig.auto_default_image(), project="p", domain="d", version="v1"
    )
    entities: OrderedDict = OrderedDict()
    get_serializable(entities, settings, sample().WORKFLOWS[name])
    registry = Registry()
    # Dependencies come first in flytekit's order, so each launch plan's workflow is known.
    for entity in entities.values():
        if isinstance(entity, TaskSpec):
            task = entity.to_flyte_idl().template
            registry.tasks[id_key(task.id)] = compile_task(task)
        elif isinstance(entity, WorkflowSpec):
            spec = entity.to_flyte_idl()
            registry.workflows[id_key(spec.template.id)] = spec
        elif isinstance(entity, LaunchPlan):
            launch_plan = entity.to_flyte_idl()
            workflow = registry.workflows[id_key(launch_plan.spec.workflow_id)]
            request = launch_plan_pb2.LaunchPlanCreateRequest(
                id=launch_plan.id, spec=launch_plan.spec
            )
            interface = workflow.template.interface
            expected = check_launch_plan_inputs(request, interface)
            registry.launch_plans[id_key(launch_plan.id)] = LaunchPlanInterface(
                expected, interface.outputs
            )
            registry.launch_plan_specs[id_key(launch_plan.id)] = launch_plan
    spec = registry.workflows[id_key(entities[sample().WORKFLOWS[name]].to_flyte_idl().template.id)]
    needs = requirements(spec.template, spec.sub_workflows)
    closure = compile_workflow(
        spec.template,
        spec.sub_workflows,
        [registry.tasks[id_key(t)] for t in needs.task_ids],
        {id_key(lp): registry.launch_plans[id_key(lp)] for lp in needs.launch_plan_ids},
    )
    return registry, closure


def names() -> list[str]:
    return sorted(sample().WORKFLOWS)


def golden_text(closure: compiler_pb2.CompiledWorkflowClosure) -> str:
    return (
        json_format.MessageToJson(
            closure, sort_keys=True, indent=1, preserving_proto_field_name=True
        )
        + "\n"
    )


def test_golden_corpus_matches_the_sample() -> None:
    """An empty or stale corpus would make the golden comparisons vacuous."""
    files = sorted(p.stem for p in GOLDEN.glob("*.json"))
    assert names(), "flyte_sample.WORKFLOWS is empty"
    if not UPDATE:
        assert files == names(), "run with UPDATE_GOLDEN=1 to refresh tests/unit/compiler/golden"


@pytest.mark.parametrize("name", names())
def test_golden(name: str) -> None:
    text = golden_text(registered(name)[1])
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}"
    assert text == path.read_text()


def walk(node: workflow_pb2.Node):
    """A node and every node nested in it (branch cases, array sub-nodes)."""
    yield node
    if node.HasField("branch_node"):
        if_else = node.branch_node.if_else
        for block in [if_else.case, *if_else.other]:
            yield from walk(block.then_node)
        if if_else.HasField("else_node"):
            yield from walk(if_else.else_node)
    if node.HasField("array_node"):
        yield from walk(node.array_node.node)


def all_workflows(closure: compiler_pb2.CompiledWorkflowClosure):
    return [closure.primary, *closure.sub_workflows]


@pytest.mark.parametrize("name", names())
def test_start_and_end_nodes(name: str) -> None:
    for compiled in all_workflows(registered(name)[1]):
        template = compiled.template
        start, end = template.nodes[0], template.nodes[1]
        assert start == workflow_pb2.Node(id=START_NODE_ID)
        assert end.id == END_NODE_ID and list(end.inputs) == list(template.outputs)
        assert compiled.connections.downstream[START_NODE_ID].ids
        assert compiled.connections.upstream[END_NODE_ID].ids


@pytest.mark.parametrize("name", names())
def test_flytekit_lookups_resolve(name: str) -> None:
    """flytekit resolves upstream ids among user nodes, and each task reference among the
    closure's tasks (clients.md gotcha 4)."""
    closure = registered(name)[1]
    task_ids = {id_key(t.template.id) for t in closure.tasks}
    for compiled in all_workflows(closure):
        user_ids = {n.id for n in compiled.template.nodes} - {START_NODE_ID, END_NODE_ID}
        for top in compiled.template.nodes[2:]:
            assert set(top.upstream_node_ids) <= user_ids
            for nested in walk(top):
                if nested.HasField("task_node"):
                    assert id_key(nested.task_node.reference_id) in task_ids


@pytest.mark.parametrize("name", names())
def test_connections_match_bindings(name: str) -> None:
    """Each user node's upstream set is its promises' nodes plus its explicit upstream ids (or
    the start node when that is empty); the end node also waits for every leaf; downstream
    mirrors upstream."""
    for compiled in all_workflows(registered(name)[1]):
        upstream = {k: set(v.ids) for k, v in compiled.connections.upstream.items()}
        downstream = {k: set(v.ids) for k, v in compiled.connections.downstream.items()}
        end = compiled.template.nodes[1]
        bound = {data.promise.node_id for data in promises(end.inputs)}
        assert bound <= upstream[END_NODE_ID]
        assert all(downstream[leaf] == {END_NODE_ID} for leaf in upstream[END_NODE_ID] - bound)
        for top in compiled.template.nodes[2:]:
            expected = set(top.upstream_node_ids) | {
                data.promise.node_id for data in promises(top.inputs)
            }
            assert upstream[top.id] == (expected or {START_NODE_ID})
        for top in compiled.template.nodes[1:]:
            for provider in upstream[top.id]:
                assert top.id in downstream[provider]
            assert all(data.promise.node_id for data in promises(top.inputs))


def promises(bindings):
    for binding in bindings:
        stack = [binding.binding]
        while stack:
            data = stack.pop()
            kind = data.WhichOneof("value")
            if kind == "promise":
                yield data
            elif kind == "collection":
                stack.extend(data.collection.bindings)
            elif kind == "map":
                stack.extend(data.map.bindings.values())


def test_main_workflow_node_kinds() -> None:
    registry, closure = registered("main_wf")
    nodes = {n.id: n for n in closure.primary.template.nodes}
    upstream = closure.primary.connections.upstream
    branch = nodes["n2"].branch_node.if_else
    assert [branch.case.then_node.id, branch.other[0].then_node.id, branch.else_node.id] == [
        "n2-n0",
        "n2-n1",
        "n2-n2",
    ]
    assert list(upstream["n2-n0"].ids) == ["n1"]  # a case waits for its own inputs
    assert nodes["n3"].HasField("array_node")
    assert nodes["n4"].workflow_node.HasField("launchplan_ref")
    assert nodes["n5"].gate_node.HasField("approve")
    assert nodes["n6"].gate_node.HasField("signal")
    assert nodes["n7"].gate_node.HasField("sleep")
    assert list(upstream["n8"].ids) == ["n7"]  # sleep >> noop
    (sub,) = closure.sub_workflows
    assert [n.id for n in sub.template.nodes] == [START_NODE_ID, END_NODE_ID, "n0"]
    assert {t.template.id.name.rsplit(".", 1)[-1] for t in closure.tasks} >= {
        "add",
        "square",
        "to_str",
        "noop",
        "fan_out",
    }
    assert len(closure.tasks) == len({id_key(t.template.id) for t in closure.tasks})


def test_data_workflow_failure_node_and_attribute_access() -> None:
    closure = registered("data_wf")[1]
    upstream = closure.primary.connections.upstream
    assert list(upstream["fn0"].ids) == [START_NODE_ID]
    assert "fn0" not in closure.primary.connections.downstream
    assert list(upstream["n1"].ids) == ["n0"]  # p.x, p.y


def test_nested_branch_ids() -> None:
    closure = registered("nested_branch_wf")[1]
    outer = closure.primary.template.nodes[2]
    inner = outer.branch_node.if_else.case.then_node
    assert inner.id == "n0-n0"
    assert [
        inner.branch_node.if_else.case.then_node.id,
        inner.branch_node.if_else.else_node.id,
    ] == [
        "n0-n0-n0",
        "n0-n0-n1",
    ]
    assert outer.branch_node.if_else.HasField("error")


@pytest.mark.parametrize("name", names())
def test_flytekit_reads_the_closure_back(name: str) -> None:
    """What FlyteRemote.fetch_workflow does with GetWorkflow's answer."""
    from flytekit.models.core.compiler import CompiledWorkflowClosure
    from flytekit.models.core.identifier import Identifier
    from flytekit.models.launch_plan import LaunchPlanSpec
    from flytekit.remote.entities import FlyteWorkflow

    registry, closure = registered(name)
    launch_plans = {
        Identifier.from_flyte_idl(lp.id): LaunchPlanSpec.from_flyte_idl(lp.spec)
        for lp in registry.launch_plan_specs.values()
    }
    model = CompiledWorkflowClosure.from_flyte_idl(closure)
    flyte_workflow = FlyteWorkflow.promote_from_closure(model, launch_plans)
    assert flyte_workflow.id == Identifier.from_flyte_idl(closure.primary.template.id)
    failure = 1 if closure.primary.template.HasField("failure_node") else 0
    assert len(flyte_workflow.flyte_nodes) == len(closure.primary.template.nodes) - 2 + failure
