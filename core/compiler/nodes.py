"""Nodes: each node's interface by kind, and the per-node checks (flytepropeller's
``validators/node.go``, ``interface.go``, ``branch.go``).

A node's interface is what its target exposes: a task's interface, a sub-workflow's, a launch
plan's expected inputs (required ones plus those the node binds) and outputs, a branch's common
outputs, a gate's signal output, an array node's sub-node interface. It is computed once.
"""

from __future__ import annotations

from flyteidl.core import interface_pb2

from flyteadmin.core.compiler import errors as e
from flyteadmin.core.compiler._graph import (
    END_NODE_ID,
    START_NODE_ID,
    EdgeDirection,
    Graph,
    NodeInfo,
    launch_plan_sides,
)
from flyteadmin.core.compiler.bindings import (
    add_edges,
    effective_outputs,
    validate_bindings,
    validate_condition,
)
from flyteadmin.core.compiler.requirements import id_key
from flyteadmin.core.compiler.text import literal_type_text, proto_text

TypedInterface = interface_pb2.TypedInterface


def validate_interface(
    node_id: str, interface: TypedInterface, errors: e.Collector
) -> TypedInterface:
    """Every variable has a name and a type; absent input/output maps become empty ones (as
    propeller leaves them in the compiled templates)."""
    for side in (interface.inputs, interface.outputs):
        for name, variable in side.variables.items():
            if not name:
                errors.add(e.value_required(node_id, "paramName"))
            if not variable.HasField("type"):
                errors.add(e.value_required(node_id, "param.Type"))
    interface.inputs.SetInParent()
    interface.outputs.SetInParent()
    return interface


def resolve_interface(graph: Graph, node: NodeInfo, errors: e.Collector) -> TypedInterface | None:
    if node.interface is not None:
        return node.interface
    scope = errors.scope()
    interface = _interface_by_kind(graph, node, scope)
    if interface is not None:
        validate_interface(node.id, interface, scope)
    if scope.ok:
        node.interface = interface
    return interface


def _interface_by_kind(graph: Graph, node: NodeInfo, errors: e.Collector) -> TypedInterface | None:
    kind = node.proto.WhichOneof("target")
    if kind == "task_node":
        return _task_interface(graph, node, errors)
    if kind == "workflow_node":
        return _workflow_node_interface(graph, node, errors)
    if kind == "branch_node":
        return _branch_interface(graph, node, errors.scope())
    if kind == "gate_node":
        return _gate_interface(graph, node, errors)
    if kind == "array_node":
        if node.array_child is None:
            if not node.proto.array_node.HasField("node"):
                errors.add(e.value_required(node.id, "ArrayNode.Node"))
                return None
            node.array_child = NodeInfo(node.proto.array_node.node)
        # flytekit already lifts the sub-node's interface to collections (map tasks), so the
        # array node exposes it as is.
        return resolve_interface(graph, node.array_child, errors.scope())
    errors.add(e.value_required(node.id, "Target"))
    return None


def _task_interface(graph: Graph, node: NodeInfo, errors: e.Collector) -> TypedInterface | None:
    task_node = node.proto.task_node
    if not task_node.HasField("reference_id"):
        errors.add(e.value_required(node.id, "TaskNode.ReferenceId"))
        return None
    task = graph.ctx.tasks.get(id_key(task_node.reference_id))
    if task is None:
        ref = proto_text(task_node.reference_id)
        errors.add(e.task_reference_not_found(node.id, ref))
        return None
    # The task's own interface object, so the closure's task shows the filled-in empty maps.
    return task.interface if task.HasField("interface") else TypedInterface()


def _workflow_node_interface(
    graph: Graph, node: NodeInfo, errors: e.Collector
) -> TypedInterface | None:
    workflow_node = node.proto.workflow_node
    if workflow_node.HasField("launchplan_ref"):
        ref = workflow_node.launchplan_ref
        if graph.template.HasField("id") and id_key(ref) == id_key(graph.template.id):
            return graph.template.interface  # a workflow launching itself
        launch_plan = graph.ctx.launch_plans.get(id_key(ref))
        if launch_plan is None:
            errors.add(e.workflow_reference_not_found(node.id, proto_text(ref)))
            return None
        expected_inputs, expected_outputs = launch_plan_sides(launch_plan)
        if expected_inputs is None:
            errors.add(e.value_required(node.id, "WorkflowNode.ExpectedInputs"))
        if expected_outputs is None:
            errors.add(e.value_required(node.id, "WorkflowNode.ExpectedOutputs"))
        # Exposed inputs: the required ones, plus defaulted ones this node overrides.
        bound = {b.var for b in node.proto.inputs}
        interface = TypedInterface()
        interface.inputs.SetInParent()
        parameters = expected_inputs.parameters if expected_inputs is not None else {}
        for name, parameter in parameters.items():
            if parameter.required or name in bound:
                interface.inputs.variables[name].CopyFrom(parameter.var)
        if expected_outputs is not None:
            interface.outputs.CopyFrom(expected_outputs)
        return interface
    if workflow_node.HasField("sub_workflow_ref"):
        ref = workflow_node.sub_workflow_ref
        sub = graph.ctx.sub_workflows.get(id_key(ref))
        if sub is None:
            errors.add(e.workflow_reference_not_found(node.id, proto_text(ref)))
            return None
        if not sub.template.HasField("interface"):
            errors.add(e.value_required(node.id, "WorkflowNode.Template.Interface"))
            return None
        return sub.template.interface
    errors.add(e.workflow_reference_not_found(node.id, "<nil>/<nil>"))
    return None


def _gate_interface(graph: Graph, node: NodeInfo, errors: e.Collector) -> TypedInterface | None:
    gate = node.proto.gate_node
    kind = gate.WhichOneof("condition")
    if kind == "approve":
        # Approval passes its inputs through: outputs are whatever the node binds.
        bound = validate_bindings(
            graph,
            node,
            node.proto.inputs,
            interface_pb2.VariableMap(),
            False,
            EdgeDirection.UPSTREAM,
            errors.scope(),
        )
        return TypedInterface(inputs=bound, outputs=bound)
    if kind == "signal":
        if not gate.signal.HasField("type"):
            errors.add(e.value_required(node.id, "GateNode.Signal.Type"))
            return None
        if not gate.signal.output_variable_name:
            errors.add(e.value_required(node.id, "GateNode.Signal.OutputVariableName"))
            return None
        interface = TypedInterface()
        interface.inputs.SetInParent()
        interface.outputs.variables[gate.signal.output_variable_name].type.CopyFrom(
            gate.signal.type
        )
        return interface
    if kind == "sleep":
        return TypedInterface(
            inputs=interface_pb2.VariableMap(), outputs=interface_pb2.VariableMap()
        )
    errors.add(e.no_condition_found(node.id))
    return None


def branch_children(node: NodeInfo) -> list[NodeInfo]:
    """The case and else nodes of a branch, wrapped once."""
    if node.branch_children is None:
        if_else = node.proto.branch_node.if_else
        children = []
        if if_else.HasField("case") and if_else.case.HasField("then_node"):
            children.append(NodeInfo(if_else.case.then_node))
        children += [NodeInfo(b.then_node) for b in if_else.other if b.HasField("then_node")]
        if if_else.HasField("else_node"):
            children.append(NodeInfo(if_else.else_node))
        node.branch_children = children
    return node.branch_children


def _branch_interface(graph: Graph, node: NodeInfo, errors: e.Collector) -> TypedInterface | None:
    """Inputs: what the branch binds. Outputs: those every case produces, with equal types.
    Case nodes are renamed ``<branch id>-<case id>`` here, as propeller does."""
    if_else = node.proto.branch_node.if_else
    if not node.proto.branch_node.HasField("if_else"):
        errors.add(e.value_required(node.id, "Branch.IfElse"))
        return None
    if not if_else.HasField("case"):
        errors.add(e.value_required(node.id, "Branch.IfElse.Case"))
        return None
    if not if_else.case.HasField("then_node"):
        errors.add(e.value_required(node.id, "Branch.IfElse.Case.ThenNode"))
        return None
    for block in if_else.other:
        if not block.HasField("then_node"):
            errors.add(e.value_required(node.id, "IfElse.Case.ThenNode"))

    outputs: interface_pb2.VariableMap | None = None
    common: set[str] = set()
    for child in branch_children(node):
        if not child.renamed:
            child.proto.id = f"{node.id}-{child.id}"
            child.renamed = True
        child_interface = resolve_interface(graph, child, errors.scope())
        if child_interface is None or child.interface is None:
            continue
        if outputs is None:
            outputs, common = child_interface.outputs, set(child_interface.outputs.variables)
            continue
        theirs = child_interface.outputs.variables
        common &= set(theirs)
        for name in sorted(common):
            ours = outputs.variables[name].type
            if ours != theirs[name].type:
                errors.add(
                    e.mismatching_types(
                        child.id,
                        name,
                        literal_type_text(ours),
                        literal_type_text(theirs[name].type),
                    )
                )

    bound = validate_bindings(
        graph,
        node,
        node.proto.inputs,
        interface_pb2.VariableMap(),
        False,
        EdgeDirection.UPSTREAM,
        errors.scope(),
    )
    if not errors.ok or outputs is None:
        return None
    interface = TypedInterface(inputs=bound)
    interface.outputs.SetInParent()
    for name in common:
        interface.outputs.variables[name].CopyFrom(outputs.variables[name])
    return interface


def validate_node(graph: Graph, node: NodeInfo, errors: e.Collector) -> bool:
    """All checks of one node (and, for branches, its cases); True when it is clean."""
    if not node.id:
        errors.add(e.value_required("<node>", "Id"))
    if node.id in (START_NODE_ID, END_NODE_ID):
        return True
    interface_scope = errors.scope()
    resolve_interface(graph, node, interface_scope)
    if interface_scope.ok:
        effective_outputs(node, errors.scope())
    # Sorted so the compiled template does not depend on the client's ordering.
    upstream = sorted(node.proto.upstream_node_ids)
    del node.proto.upstream_node_ids[:]
    node.proto.upstream_node_ids.extend(upstream)

    kind = node.proto.WhichOneof("target")
    if kind == "branch_node":
        branch_scope = errors.scope()
        children = _validate_branch(graph, node, branch_scope)
        if branch_scope.ok:
            # Case nodes are not part of the graph, but their inputs still come from it.
            for child in children:
                add_edges(graph, child, EdgeDirection.UPSTREAM, errors.scope())
    elif kind == "workflow_node" and node.proto.workflow_node.HasField("sub_workflow_ref"):
        ref = node.proto.workflow_node.sub_workflow_ref
        graph.ctx.compile_sub_workflow(id_key(ref), node.proto, errors.scope())
    elif kind == "task_node" and node.proto.task_node.HasField("reference_id"):
        ref = node.proto.task_node.reference_id
        if id_key(ref) not in graph.ctx.tasks:
            errors.add(e.task_reference_not_found(node.id, proto_text(ref)))
    return errors.ok


def _validate_branch(graph: Graph, node: NodeInfo, errors: e.Collector) -> list[NodeInfo]:
    """Conditions, a node per case, an else or error; returns the case nodes that are clean."""
    if_else = node.proto.branch_node.if_else
    blocks = list(if_else.other)
    if if_else.HasField("case"):
        blocks.insert(0, if_else.case)
    else:
        errors.add(e.branch_node_has_no_condition(node.id))
    for block in blocks:
        condition = block.condition if block.HasField("condition") else None
        validate_condition(node, condition, errors.scope())
        if not block.HasField("then_node"):
            errors.add(e.branch_node_not_specified(node.id))
    if not if_else.HasField("else_node") and not if_else.HasField("error"):
        errors.add(e.branch_node_has_no_default(node.id))
    return [c for c in branch_children(node) if validate_node(graph, c, errors.scope())]
