"""Node transformation (propeller ``transformers/k8s/node.go``): one ``core.Node`` becomes a
``NodeSpec``; branch children are returned alongside so the workflow holds them flat."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flyteidl.core import tasks_pb2, workflow_pb2

from flyteadmin.core.flyteworkflow.errors import FlyteWorkflowBuildError
from flyteadmin.core.flyteworkflow.goformat import (
    float32_json,
    go_duration,
    go_struct_json,
    identifier_key,
    jsonpb,
)
from flyteadmin.core.flyteworkflow.resources import k8s_resource_requirements
from flyteadmin.core.quantities import QuantityError

START_NODE_ID = "start-node"
END_NODE_ID = "end-node"

Tasks = Mapping[str, tasks_pb2.TaskTemplate]  # identifier_key -> template
NodeSpec = dict[str, Any]


def build_node(node: workflow_pb2.Node, tasks: Tasks) -> list[NodeSpec]:
    """The node's spec first, then (for branches) every node its blocks reference."""
    target = node.WhichOneof("target")
    if target is None and node.id not in (START_NODE_ID, END_NODE_ID):
        raise FlyteWorkflowBuildError(f"[{node.id}] value required: target")
    task = _task_of(node, tasks) if target == "task_node" else None
    spec = _common(node, task)
    children: list[NodeSpec] = []
    if target == "task_node":
        spec["kind"] = "task"
        spec["task"] = identifier_key(node.task_node.reference_id)
    elif target == "workflow_node":
        spec["kind"] = "workflow"
        spec["workflow"] = _workflow(node)
    elif target == "branch_node":
        spec["kind"] = "branch"
        spec["branch"], children = _branch(node.branch_node, tasks)
    elif target == "gate_node":
        spec["kind"] = "gate"
        spec["gate"] = _gate(node.gate_node)
    elif target == "array_node":
        spec["kind"] = "array"
        spec["array"] = _array(node.array_node, tasks)
    else:
        spec["kind"] = "start" if node.id == START_NODE_ID else "end"
    return [_ordered(spec), *children]


def _task_of(node: workflow_pb2.Node, tasks: Tasks) -> tasks_pb2.TaskTemplate:
    key = identifier_key(node.task_node.reference_id)
    if key not in tasks:
        raise FlyteWorkflowBuildError(f"[{node.id}] task reference not found: {key}")
    return tasks[key]


def _common(node: workflow_pb2.Node, task: tasks_pb2.TaskTemplate | None) -> NodeSpec:
    """Fields every kind shares. Go leaves out empty ones (omitempty) except ``resources``,
    which is always a (possibly empty) ResourceRequirements."""
    overrides = node.task_node.overrides if node.HasField("task_node") else None
    resources = overrides.resources if overrides and overrides.HasField("resources") else None
    try:
        spec: NodeSpec = {"id": node.id, "resources": k8s_resource_requirements(resources)}
    except QuantityError as err:
        raise FlyteWorkflowBuildError(f"[{node.id}] {err}") from err
    meta = node.metadata
    if meta.name:
        spec["name"] = meta.name
    retries = _min_attempts(node, task)
    if retries is not None:
        spec["retry"] = {"minAttempts": retries}
    if meta.HasField("timeout"):
        nanos = meta.timeout.ToNanoseconds()
        spec["executionDeadline"] = go_duration(nanos)
        spec["activeDeadline"] = go_duration(2 * nanos)
    if node.output_aliases:
        spec["outputAlias"] = [go_struct_json(a) for a in node.output_aliases]
    if node.inputs:
        spec["inputBindings"] = [jsonpb(b) for b in node.inputs]
    if meta.WhichOneof("interruptible_value"):
        spec["interruptible"] = meta.interruptible
    if overrides is not None:
        if overrides.HasField("extended_resources"):
            spec["extendedResources"] = jsonpb(overrides.extended_resources)
        if overrides.container_image:
            spec["containerImage"] = overrides.container_image
        if overrides.HasField("pod_template"):
            # encoding/json of core.K8SPod; its pod_spec Struct is not reproduced exactly
            spec["podTemplate"] = go_struct_json(overrides.pod_template)
    return spec


def _min_attempts(node: workflow_pb2.Node, task: tasks_pb2.TaskTemplate | None) -> int | None:
    """``computeRetryStrategy``: the node's retries win over the task's; 0 means unset."""
    if node.metadata.retries.retries:
        return node.metadata.retries.retries + 1
    if task is not None and task.metadata.retries.retries:
        return task.metadata.retries.retries + 1
    return None


def _workflow(node: workflow_pb2.Node) -> dict[str, Any]:
    ref = node.workflow_node.WhichOneof("reference")
    if ref == "launchplan_ref":
        return {"launchPlanRefId": jsonpb(node.workflow_node.launchplan_ref)}
    if ref == "sub_workflow_ref":
        return {"subWorkflowRef": identifier_key(node.workflow_node.sub_workflow_ref)}
    raise FlyteWorkflowBuildError(f"[{node.id}] value required: WorkflowNode.Reference")


def _if_block(block: workflow_pb2.IfBlock, tasks: Tasks) -> tuple[dict[str, Any], list[NodeSpec]]:
    nodes = build_node(block.then_node, tasks)
    return {"condition": jsonpb(block.condition), "then": block.then_node.id}, nodes


def _branch(branch: workflow_pb2.BranchNode, tasks: Tasks) -> tuple[dict[str, Any], list[NodeSpec]]:
    """Children in Go's order: the if case, the else node, then the else-ifs."""
    if_else = branch.if_else
    first, children = _if_block(if_else.case, tasks)
    spec: dict[str, Any] = {"if": first}
    default = if_else.WhichOneof("default")
    if default == "else_node":
        children += build_node(if_else.else_node, tasks)
        spec["else"] = if_else.else_node.id
    elif default == "error":
        spec["elseFail"] = go_struct_json(if_else.error)
    others = []
    for block in if_else.other:
        other, nodes = _if_block(block, tasks)
        others.append(other)
        children += nodes
    if others:
        spec["elseIf"] = others
    return spec, children


def _gate(gate: workflow_pb2.GateNode) -> dict[str, Any]:
    kind = gate.WhichOneof("condition")
    if kind is None:  # Go leaves the gate spec nil
        return {}
    return {"kind": kind, kind: jsonpb(getattr(gate, kind))}


def _array(array: workflow_pb2.ArrayNode, tasks: Tasks) -> dict[str, Any]:
    """``ArrayNodeSpec`` has no json tags and no omitempty: Go field names, unset -> null."""
    sub = build_node(array.node, tasks)[0]
    criteria = array.WhichOneof("success_criteria")
    return {
        "SubNodeSpec": sub,
        "Parallelism": array.parallelism if array.WhichOneof("parallelism_option") else None,
        "MinSuccesses": array.min_successes if criteria == "min_successes" else None,
        "MinSuccessRatio": (
            float32_json(array.min_success_ratio) if criteria == "min_success_ratio" else None
        ),
        "BoundInputs": list(array.bound_inputs) or None,
    }


# NodeSpec's json field order, so golden files read like propeller's output
_FIELD_ORDER = (
    "id name resources kind branch task workflow gate array inputBindings retry outputAlias "
    "extendedResources executionDeadline activeDeadline interruptible containerImage podTemplate"
).split()


def _ordered(spec: NodeSpec) -> NodeSpec:
    return {k: spec[k] for k in _FIELD_ORDER if k in spec}
