"""Phase one of workflow compilation: which tasks and launch plans a workflow needs
(flytepropeller's ``compiler/requirements.go``). Pure: the caller loads what is listed and
passes it to ``compile_workflow``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flyteidl.core import identifier_pb2, workflow_pb2

from flyteadmin.core.compiler import errors as e
from flyteadmin.core.compiler.text import proto_text

# Identifiers are matched on every field, resource type included, as propeller matches them (by
# their text). The tuple order is propeller's sort order; org breaks ties.
IdKey = tuple[int, str, str, str, str, str]


def id_key(identifier: identifier_pb2.Identifier) -> IdKey:
    i = identifier
    return (i.resource_type, i.project, i.domain, i.name, i.version, i.org)


@dataclass(frozen=True)
class Requirements:
    task_ids: tuple[identifier_pb2.Identifier, ...]
    launch_plan_ids: tuple[identifier_pb2.Identifier, ...]


def index_sub_workflows(
    sub_workflows: Sequence[workflow_pb2.WorkflowTemplate], errors: e.Collector
) -> dict[IdKey, workflow_pb2.WorkflowTemplate]:
    """Sub-workflows by id; a missing or repeated id is an error."""
    index: dict[IdKey, workflow_pb2.WorkflowTemplate] = {}
    for sub in sub_workflows:
        if not sub.HasField("id"):
            # propeller gives up here without saying why ("Collected Errors: 0").
            errors.add(e.value_required("<sub_workflow>", "Template.Id"))
        elif id_key(sub.id) in index:
            errors.add(e.duplicate_id(proto_text(sub.id)))
        else:
            index[id_key(sub.id)] = sub
    return index


def requirements(
    template: workflow_pb2.WorkflowTemplate, sub_workflows: Sequence[workflow_pb2.WorkflowTemplate]
) -> Requirements:
    """Task and launch-plan ids referenced by ``template`` and, recursively, by the sub-workflows
    it uses, each sorted and unique. Raises ``CompileErrors`` only for a sub-workflow without an
    id or with a repeated one; a referenced sub-workflow that is not supplied is skipped here and
    reported by ``compile_workflow`` (as propeller does)."""
    errors = e.Collector()
    index = index_sub_workflows(sub_workflows, errors)
    errors.raise_if_any()
    return collect_references(template, index, e.Collector(), follow_sub_workflows=True)


def collect_references(
    template: workflow_pb2.WorkflowTemplate,
    sub_workflows: dict[IdKey, workflow_pb2.WorkflowTemplate],
    errors: e.Collector,
    follow_sub_workflows: bool,
) -> Requirements:
    tasks: dict[IdKey, identifier_pb2.Identifier] = {}
    launch_plans: dict[IdKey, identifier_pb2.Identifier] = {}
    seen: set[IdKey] = set()  # guards against sub-workflows that reference themselves

    def walk_workflow(workflow: workflow_pb2.WorkflowTemplate) -> None:
        nodes: Iterable[workflow_pb2.Node] = list(workflow.nodes)
        if workflow.HasField("failure_node"):
            nodes = [*nodes, workflow.failure_node]
        for node in nodes:
            walk_node(node)

    def walk_node(node: workflow_pb2.Node) -> None:
        target = node.WhichOneof("target")
        if target == "task_node" and node.task_node.HasField("reference_id"):
            tasks.setdefault(id_key(node.task_node.reference_id), node.task_node.reference_id)
        elif target == "workflow_node":
            _walk_workflow_node(node)
        elif target == "branch_node":
            if_else = node.branch_node.if_else
            for block in [if_else.case, *if_else.other]:
                if block.HasField("then_node"):
                    walk_node(block.then_node)
            if if_else.HasField("else_node"):
                walk_node(if_else.else_node)
        elif target == "array_node" and node.array_node.HasField("node"):
            walk_node(node.array_node.node)

    def _walk_workflow_node(node: workflow_pb2.Node) -> None:
        workflow_node = node.workflow_node
        if workflow_node.HasField("launchplan_ref"):
            ref = workflow_node.launchplan_ref
            launch_plans.setdefault(id_key(ref), ref)
        elif workflow_node.HasField("sub_workflow_ref") and follow_sub_workflows:
            key = id_key(workflow_node.sub_workflow_ref)
            if key not in sub_workflows:
                ref_text = proto_text(workflow_node.sub_workflow_ref)
                errors.add(e.workflow_reference_not_found(node.id, ref_text))
            elif key not in seen:
                seen.add(key)
                walk_workflow(sub_workflows[key])

    walk_workflow(template)
    return Requirements(
        task_ids=tuple(tasks[k] for k in sorted(tasks)),
        launch_plan_ids=tuple(launch_plans[k] for k in sorted(launch_plans)),
    )
