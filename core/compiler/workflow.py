"""Phase two of workflow compilation: ``compile_workflow`` turns a workflow template, its
sub-workflows, its tasks and its launch plans' interfaces into the ``CompiledWorkflowClosure``
flyteadmin stores (flytepropeller's ``compiler/workflow_compiler.go``).

Compiling a workflow adds the ``start-node`` (whose outputs are the workflow inputs) and the
``end-node`` (whose inputs are the workflow outputs, bound as the template binds them), checks
every node, computes ``connections`` from bindings and explicit upstream ids, links nodes
without upstream to the start node and nodes without downstream to the end node, and finally
checks that the graph has no cycle and no unreachable node. Every error is collected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from flyteidl.admin import launch_plan_pb2
from flyteidl.core import compiler_pb2, interface_pb2, tasks_pb2, workflow_pb2
from google.protobuf.message import Message

from flyteadmin.core.compiler import errors as e
from flyteadmin.core.compiler._graph import (
    END_NODE_ID,
    START_NODE_ID,
    Context,
    EdgeDirection,
    Graph,
    LaunchPlanInterface,
    LaunchPlanLike,
    NodeInfo,
)
from flyteadmin.core.compiler.bindings import add_edges, validate_bindings
from flyteadmin.core.compiler.nodes import validate_interface, validate_node
from flyteadmin.core.compiler.requirements import (
    IdKey,
    collect_references,
    id_key,
    index_sub_workflows,
)
from flyteadmin.core.compiler.text import proto_text

Task = compiler_pb2.CompiledTask | tasks_pb2.TaskTemplate
_M = TypeVar("_M", bound=Message)


def launch_plan_interface(launch_plan: launch_plan_pb2.LaunchPlan) -> LaunchPlanInterface:
    """What a launch-plan node sees of a stored launch plan: its closure's expected inputs and
    outputs."""
    closure = launch_plan.closure
    return LaunchPlanInterface(
        expected_inputs=closure.expected_inputs if closure.HasField("expected_inputs") else None,
        expected_outputs=closure.expected_outputs if closure.HasField("expected_outputs") else None,
    )


def compile_workflow(
    template: workflow_pb2.WorkflowTemplate,
    sub_workflows: Sequence[workflow_pb2.WorkflowTemplate],
    tasks: Sequence[Task],
    launch_plans: Mapping[IdKey, LaunchPlanLike],
) -> compiler_pb2.CompiledWorkflowClosure:
    """Raises ``CompileErrors``. ``launch_plans`` maps ``id_key`` of each launch-plan reference
    (see ``requirements``) to a ``LaunchPlanInterface`` or the stored ``LaunchPlanClosure``.
    Inputs are not modified."""
    errors = e.Collector()
    task_templates: dict[IdKey, tasks_pb2.TaskTemplate] = {}
    for task in tasks:
        task_template = task.template if isinstance(task, compiler_pb2.CompiledTask) else task
        if not task_template.HasField("id"):
            errors.add(e.value_required("task", "Template.Id"))
            errors.raise_if_any()
        task_templates.setdefault(id_key(task_template.id), _copy(task_template))

    # The constructors copy: sub-workflows are compiled in place, in the closure's own list.
    compiled_subs = [compiler_pb2.CompiledWorkflow(template=s) for s in sub_workflows]
    by_id = index_sub_workflows([c.template for c in compiled_subs], errors)
    errors.raise_if_any()
    sub_index = {id_key(c.template.id): c for c in compiled_subs}

    primary = compiler_pb2.CompiledWorkflow(template=template)
    _check_requirements(primary.template, by_id, task_templates, launch_plans, errors)
    errors.raise_if_any()

    ctx = Context(task_templates, launch_plans, sub_index, compile_sub_workflow=_unset)
    ctx.compile_sub_workflow = _sub_workflow_compiler(ctx)
    compile_graph(ctx, primary, errors.scope())
    errors.raise_if_any()
    return compiler_pb2.CompiledWorkflowClosure(
        primary=primary,
        sub_workflows=compiled_subs,
        tasks=[compiler_pb2.CompiledTask(template=t) for t in task_templates.values()],
    )


def _copy(message: _M) -> _M:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _check_requirements(
    template: workflow_pb2.WorkflowTemplate,
    sub_workflows: dict[IdKey, workflow_pb2.WorkflowTemplate],
    tasks: Mapping[IdKey, tasks_pb2.TaskTemplate],
    launch_plans: Mapping[IdKey, LaunchPlanLike],
    errors: e.Collector,
) -> None:
    """Every referenced sub-workflow, launch plan and task was supplied (reported against the
    start node, as propeller does)."""
    found = collect_references(template, sub_workflows, errors, follow_sub_workflows=True)
    for ref in found.launch_plan_ids:
        if id_key(ref) not in launch_plans:
            errors.add(e.workflow_reference_not_found(START_NODE_ID, proto_text(ref)))
    for ref in found.task_ids:
        if id_key(ref) not in tasks:
            errors.add(e.task_reference_not_found(START_NODE_ID, proto_text(ref)))


def _unset(key: IdKey, node: workflow_pb2.Node, errors: e.Collector) -> None:
    raise AssertionError("compile_sub_workflow is set before use")


def _sub_workflow_compiler(ctx: Context) -> Callable[[IdKey, workflow_pb2.Node, e.Collector], None]:
    """Compiles each sub-workflow in place, once per run, on first reference."""
    started: set[IdKey] = set()
    finished: set[IdKey] = set()

    def compile_sub(key: IdKey, node: workflow_pb2.Node, errors: e.Collector) -> None:
        sub = ctx.sub_workflows.get(key)
        ref = proto_text(node.workflow_node.sub_workflow_ref)
        if sub is None:
            errors.add(e.workflow_reference_not_found(node.id, ref))
        elif key in started and key not in finished:
            # A sub-workflow that (indirectly) runs itself: propeller recurses forever here.
            errors.add(e.cycle_detected(node.id, ref))
        elif key not in started:
            started.add(key)
            compile_graph(ctx, sub, errors.scope())
            finished.add(key)

    return compile_sub


def compile_graph(
    ctx: Context, compiled: compiler_pb2.CompiledWorkflow, errors: e.Collector
) -> bool:
    """Compiles one workflow in place: nodes, connections, checks. True when clean."""
    template = compiled.template
    if not template.nodes:
        graph_id = proto_text(template.id) if template.HasField("id") else "<nil>"
        errors.add(e.no_nodes_found(graph_id))
        return False
    interface_scope = errors.scope()
    validate_interface(START_NODE_ID, template.interface, interface_scope)
    if not interface_scope.ok:
        return False

    graph = Graph(ctx, template)
    user_nodes = [_copy(n) for n in template.nodes]
    del template.nodes[:]
    start = _add_node(graph, workflow_pb2.Node(id=START_NODE_ID))
    start.interface = _interface(outputs=template.interface.inputs)
    end_proto = workflow_pb2.Node(id=END_NODE_ID, inputs=template.outputs)
    end = _add_node(graph, end_proto)
    end.interface = _interface(inputs=template.interface.outputs)

    top_level: set[str] = set()
    for proto in user_nodes:
        top_level.add(proto.id)
        if proto.id in graph.nodes:
            # propeller silently drops a second node with the same id; we say so.
            errors.add(e.duplicate_id(proto.id))
            continue
        validate_node(graph, _add_node(graph, proto), errors.scope())

    for node_id in sorted(graph.nodes):
        if node_id != START_NODE_ID:
            add_edges(graph, graph.nodes[node_id], EdgeDirection.BIDIRECTIONAL, errors.scope())
    if template.HasField("failure_node"):
        failure = NodeInfo(template.failure_node)
        validate_node(graph, failure, errors.scope())
        add_edges(graph, failure, EdgeDirection.UPSTREAM, errors.scope())
    _link_orphans(graph, top_level)

    end_scope = errors.scope()
    validate_interface(END_NODE_ID, end.interface, end_scope)
    if end_scope.ok:
        validate_bindings(
            graph,
            end,
            end.proto.inputs,
            end.interface.inputs,
            True,
            EdgeDirection.BIDIRECTIONAL,
            errors.scope(),
        )
    _check_reachable(graph, errors)
    _write_connections(graph, compiled)
    return errors.ok


def _add_node(graph: Graph, proto: workflow_pb2.Node) -> NodeInfo:
    graph.template.nodes.append(proto)
    info = NodeInfo(graph.template.nodes[-1])  # the live node inside the template
    graph.nodes[proto.id] = info
    return info


def _interface(**sides: interface_pb2.VariableMap) -> interface_pb2.TypedInterface:
    interface = interface_pb2.TypedInterface(**sides)
    interface.inputs.SetInParent()
    interface.outputs.SetInParent()
    return interface


def _link_orphans(graph: Graph, top_level: set[str]) -> None:
    """Nodes needing nothing start with the workflow; nodes feeding nothing finish before it
    ends (propeller waits for every upstream of the end node)."""
    for node_id in sorted(graph.nodes):
        if node_id in (START_NODE_ID, END_NODE_ID) or node_id not in top_level:
            continue
        if node_id not in graph.upstream:
            graph.add_execution_edge(START_NODE_ID, node_id)
        if node_id not in graph.downstream:
            graph.add_execution_edge(node_id, END_NODE_ID)


def _check_reachable(graph: Graph, errors: e.Collector) -> None:
    cycle, visited = _find_cycle(START_NODE_ID, graph.downstream)
    if cycle:
        errors.add(e.cycle_detected(START_NODE_ID, ">".join(cycle)))
        return
    unreachable = set(graph.nodes) - visited - {END_NODE_ID}
    if unreachable:
        errors.add(e.unreachable_nodes(START_NODE_ID, ",".join(sorted(unreachable))))


def _find_cycle(start: str, downstream: Mapping[str, set[str]]) -> tuple[list[str], set[str]]:
    """Depth-first from ``start``: the first cycle as a path ending on the repeated node (e.g.
    start-node>n1>n2>n1), and every node visited. Iterative, so deep graphs are fine."""
    visited: set[str] = {start}
    path: list[str] = [start]
    on_path: set[str] = {start}
    stack = [iter(sorted(downstream.get(start, ())))]
    while stack:
        next_id = next(stack[-1], None)
        if next_id is None:
            stack.pop()
            on_path.discard(path.pop())
            continue
        if next_id in on_path:
            return [*path, next_id], visited
        if next_id in visited:
            continue
        visited.add(next_id)
        path.append(next_id)
        on_path.add(next_id)
        stack.append(iter(sorted(downstream.get(next_id, ()))))
    return [], visited


def _write_connections(graph: Graph, compiled: compiler_pb2.CompiledWorkflow) -> None:
    connections = compiled.connections
    connections.SetInParent()
    for node_id, ids in graph.upstream.items():
        connections.upstream[node_id].ids.extend(sorted(ids))
    for node_id, ids in graph.downstream.items():
        connections.downstream[node_id].ids.extend(sorted(ids))
