"""GetExecutionMetrics (§5.7): a ``core.Span`` tree that splits an execution's wall time into
what the platform spent (setup, transitions, resets, teardown) and what nodes and tasks ran.

The shape follows flyteadmin's metrics manager: an execution span holds WORKFLOW_SETUP (created
until the start node finished), one span per node execution in creation order, and
WORKFLOW_TEARDOWN (the last node before the end node finished until the execution's last
update). A node span starts with NODE_TRANSITION (its latest upstream node finished until it was
created) and then, by node kind:

* task node: NODE_SETUP until the first attempt, each attempt (TASK_SETUP, TASK_RUNTIME,
  TASK_TEARDOWN) with NODE_RESET between attempts, then NODE_TEARDOWN;
* dynamic node (a task node with children): as a task node, then NODE_RESET until the child
  start node finished, the child nodes against the dynamic workflow, NODE_TEARDOWN;
* sub-workflow node: NODE_SETUP until its start node finished, its nodes, NODE_TEARDOWN;
* launch-plan node: NODE_SETUP until the child execution was created, the child execution's
  span, NODE_TEARDOWN;
* branch node: NODE_SETUP, the taken branch's node span, NODE_TEARDOWN;
* gate node: NODE_SETUP, NODE_IDLE (waiting), NODE_TEARDOWN.

``depth`` limits the levels expanded: 0 is the execution span alone, and each workflow, node or
task level below costs one. Differences from flyteadmin (decisions.md): a node whose definition
cannot be found (or is of an unknown kind) is a span without children instead of failing the
whole call, and a child execution or workflow that is gone is left out the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from flyteidl.admin import execution_pb2, node_execution_pb2, task_execution_pb2
from flyteidl.admin import workflow_pb2 as admin_workflow
from flyteidl.core import compiler_pb2, identifier_pb2, metrics_pb2, workflow_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.core.errors import AdminError

log = logging.getLogger(__name__)

START_NODE, END_NODE = "start-node", "end-node"
WORKFLOW_SETUP, WORKFLOW_TEARDOWN = "WORKFLOW_SETUP", "WORKFLOW_TEARDOWN"
NODE_SETUP, NODE_RESET, NODE_IDLE = "NODE_SETUP", "NODE_RESET", "NODE_IDLE"
NODE_TEARDOWN, NODE_TRANSITION = "NODE_TEARDOWN", "NODE_TRANSITION"
TASK_SETUP, TASK_RUNTIME, TASK_TEARDOWN = "TASK_SETUP", "TASK_RUNTIME", "TASK_TEARDOWN"

Timestamp = timestamp_pb2.Timestamp
NodeExecution = node_execution_pb2.NodeExecution


def _set(stamp: Timestamp) -> bool:
    return bool(stamp.seconds or stamp.nanos)


def _key(stamp: Timestamp) -> tuple[int, int]:
    return stamp.seconds, stamp.nanos


def _op(start: Timestamp, end: Timestamp, operation: str) -> metrics_pb2.Span:
    return metrics_pb2.Span(start_time=start, end_time=end, operation_id=operation)


def _plus(start: Timestamp, closure: Any) -> Timestamp:
    end = Timestamp()
    end.FromNanoseconds(start.ToNanoseconds() + closure.duration.ToNanoseconds())
    return end


def _latest_upstream(
    node_id: str, closure: compiler_pb2.CompiledWorkflowClosure, nodes: dict[str, NodeExecution]
) -> NodeExecution | None:
    """The upstream node execution of ``node_id`` that was updated last, if any ran."""
    upstream = closure.primary.connections.upstream.get(node_id)
    latest = None
    for up in upstream.ids if upstream is not None else ():
        candidate = nodes.get(up)
        if candidate is not None and (
            latest is None or _key(candidate.closure.updated_at) > _key(latest.closure.updated_at)
        ):
            latest = candidate
    return latest


def _branch_target(node_id: str, branch: workflow_pb2.BranchNode) -> workflow_pb2.Node | None:
    if_else = branch.if_else
    for case in (if_else.case, *if_else.other):
        if case.then_node.id == node_id:
            return case.then_node
    if if_else.HasField("else_node") and if_else.else_node.id == node_id:
        return if_else.else_node
    return None


def _task_span(task: task_execution_pb2.TaskExecution) -> metrics_pb2.Span:
    c = task.closure
    spans = []
    if not _set(c.started_at):
        spans.append(_op(c.created_at, c.updated_at, TASK_SETUP))
    else:
        spans.append(_op(c.created_at, c.started_at, TASK_SETUP))
        if not c.HasField("duration") or not c.duration.ToNanoseconds():
            spans.append(_op(c.started_at, c.updated_at, TASK_RUNTIME))
        else:
            end = _plus(c.started_at, c)
            spans.append(_op(c.started_at, end, TASK_RUNTIME))
            if _key(c.updated_at) >= _key(end):
                spans.append(_op(end, c.updated_at, TASK_TEARDOWN))
    return metrics_pb2.Span(
        start_time=c.created_at, end_time=c.updated_at, task_id=task.id, spans=spans
    )


class ExecutionMetrics:
    def __init__(self, executions: Any, workflows: Any, events: Any) -> None:
        self.executions = executions
        self.workflows = workflows
        self.events = events

    async def get(
        self, request: execution_pb2.WorkflowExecutionGetMetricsRequest
    ) -> execution_pb2.WorkflowExecutionGetMetricsResponse:
        execution = await self.executions.get(request.id)
        span = await self._execution_span(execution, request.depth)
        return execution_pb2.WorkflowExecutionGetMetricsResponse(span=span)

    # ------------------------------------------------------------------ reads

    async def _nodes(
        self, ex: identifier_pb2.WorkflowExecutionIdentifier, parent: str = ""
    ) -> dict[str, NodeExecution]:
        """Node executions of one level (top level, or the children of ``parent``), by spec id."""
        children = await self.events.children_of(ex)
        if parent:
            rows = children.with_parent(parent)
        else:
            rows = [r for r in children.all_nodes() if not r.value.parent_id]
        served = [self.events._served_node(r.value, children) for r in rows]
        served.sort(key=lambda n: (_key(n.closure.created_at), n.id.node_id))
        return {n.metadata.spec_node_id or n.id.node_id: n for n in served}

    async def _tasks(self, node: NodeExecution) -> list[task_execution_pb2.TaskExecution]:
        children = await self.events.children_of(node.id.execution_id)
        rows = children.tasks_of(node.id.node_id)
        tasks = [r.value.task for r in rows]
        tasks.sort(key=lambda t: (_key(t.closure.created_at), t.id.retry_attempt))
        return tasks

    async def _workflow_closure(
        self, ident: identifier_pb2.Identifier
    ) -> compiler_pb2.CompiledWorkflowClosure | None:
        try:
            workflow: admin_workflow.Workflow = await self.workflows.get_full(ident)
            return workflow.closure.compiled_workflow
        except AdminError:
            log.warning("metrics: workflow %s is not registered", ident)
            return None

    # ------------------------------------------------------------------ spans

    async def _execution_span(
        self, execution: execution_pb2.Execution, depth: int
    ) -> metrics_pb2.Span:
        c = execution.closure
        spans: list[metrics_pb2.Span] = []
        if depth != 0:
            nodes = await self._nodes(execution.id)
            start = nodes.get(START_NODE)
            if start is None or not _set(start.closure.updated_at):
                spans.append(_op(c.created_at, c.updated_at, WORKFLOW_SETUP))
            else:
                spans.append(_op(c.created_at, start.closure.updated_at, WORKFLOW_SETUP))
                compiled = await self._workflow_closure(c.workflow_id)
                if compiled is not None:
                    spans += await self._node_spans(nodes, compiled, depth - 1)
                    last = _latest_upstream(END_NODE, compiled, nodes)
                    if last is not None and _key(c.updated_at) >= _key(last.closure.updated_at):
                        spans.append(_op(last.closure.updated_at, c.updated_at, WORKFLOW_TEARDOWN))
        return metrics_pb2.Span(
            start_time=c.created_at, end_time=c.updated_at, workflow_id=execution.id, spans=spans
        )

    async def _node_spans(
        self,
        nodes: dict[str, NodeExecution],
        compiled: compiler_pb2.CompiledWorkflowClosure,
        depth: int,
    ) -> list[metrics_pb2.Span]:
        definitions = {n.id: n for n in compiled.primary.template.nodes}
        out = []
        for spec_id, node in nodes.items():  # already in creation order
            if spec_id in (START_NODE, END_NODE):
                continue
            span = await self._node_span(node, definitions.get(spec_id), compiled, depth)
            upstream = _latest_upstream(spec_id, compiled, nodes)
            if upstream is not None:
                transition = _op(
                    upstream.closure.updated_at, node.closure.created_at, NODE_TRANSITION
                )
                span.spans.insert(0, transition)
            out.append(span)
        return out

    async def _node_span(
        self,
        node: NodeExecution,
        definition: workflow_pb2.Node | None,
        compiled: compiler_pb2.CompiledWorkflowClosure,
        depth: int,
    ) -> metrics_pb2.Span:
        spans: list[metrics_pb2.Span] = []
        if depth != 0 and definition is not None:
            kind = definition.WhichOneof("target")
            if kind == "branch_node":
                spans = await self._branch(node, definition.branch_node, compiled, depth - 1)
            elif kind == "gate_node":
                spans = self._gate(node)
            elif kind == "task_node" and node.metadata.is_parent_node:
                spans = await self._dynamic(node, depth - 1)
            elif kind == "task_node":
                spans = await self._task_node(node, depth - 1)
            elif kind == "workflow_node":
                reference = definition.workflow_node.WhichOneof("reference")
                if reference == "launchplan_ref":
                    spans = await self._launch_plan_node(node, depth - 1)
                else:
                    sub = definition.workflow_node.sub_workflow_ref
                    spans = await self._subworkflow(node, sub, compiled, depth - 1)
        elif depth != 0:
            log.warning("metrics: no definition of node %s", node.metadata.spec_node_id)
        c = node.closure
        return metrics_pb2.Span(
            start_time=c.created_at, end_time=c.updated_at, node_id=node.id, spans=spans
        )

    def _attempts(
        self,
        node: node_execution_pb2.NodeExecution,
        tasks: list[task_execution_pb2.TaskExecution],
        depth: int,
    ) -> list[metrics_pb2.Span]:
        """NODE_SETUP, then each attempt with NODE_RESET between them."""
        spans = [_op(node.closure.created_at, tasks[0].closure.created_at, NODE_SETUP)]
        for index, task in enumerate(tasks):
            if index:
                previous = tasks[index - 1].closure.updated_at
                spans.append(_op(previous, task.closure.created_at, NODE_RESET))
            if depth != 0:
                spans.append(_task_span(task))
        return spans

    async def _task_node(self, node: NodeExecution, depth: int) -> list[metrics_pb2.Span]:
        tasks = await self._tasks(node)
        c = node.closure
        if not tasks:
            return [_op(c.created_at, c.updated_at, NODE_SETUP)]
        spans = self._attempts(node, tasks, depth)
        last = tasks[-1].closure.updated_at
        if _key(c.updated_at) >= _key(last):
            spans.append(_op(last, c.updated_at, NODE_TEARDOWN))
        return spans

    async def _dynamic(self, node: NodeExecution, depth: int) -> list[metrics_pb2.Span]:
        tasks = await self._tasks(node)
        c = node.closure
        if not tasks:
            return [_op(c.created_at, c.updated_at, NODE_SETUP)]
        spans = self._attempts(node, tasks, depth)
        last = tasks[-1].closure.updated_at
        children = await self._nodes(node.id.execution_id, node.id.node_id)
        if not children:
            if _key(c.updated_at) >= _key(last):
                spans.append(_op(last, c.updated_at, NODE_RESET))
            return spans
        start = children.get(START_NODE)
        if start is not None:
            spans.append(_op(last, start.closure.updated_at, NODE_RESET))
        record = (await self.events.find_node(node.id))[0].value
        if not record.dynamic_workflow_uri:
            return spans
        compiled = await self.events._dynamic_closure(record)
        spans += await self._node_spans(children, compiled, depth)
        end = _latest_upstream(END_NODE, compiled, children)
        if end is not None and _key(c.updated_at) >= _key(end.closure.updated_at):
            spans.append(_op(end.closure.updated_at, c.updated_at, NODE_TEARDOWN))
        return spans

    async def _subworkflow(
        self,
        node: NodeExecution,
        ident: identifier_pb2.Identifier,
        parent: compiler_pb2.CompiledWorkflowClosure,
        depth: int,
    ) -> list[metrics_pb2.Span]:
        c = node.closure
        children = await self._nodes(node.id.execution_id, node.id.node_id)
        if not children:
            return [_op(c.created_at, c.updated_at, NODE_SETUP)]
        start = children.get(START_NODE)
        spans = [_op(c.created_at, start.closure.updated_at if start else c.updated_at, NODE_SETUP)]
        # The sub-workflow is compiled into the parent's closure; else it was registered alone.
        compiled = None
        for sub in parent.sub_workflows:
            if sub.template.id == ident:
                compiled = compiler_pb2.CompiledWorkflowClosure(primary=sub)
                compiled.sub_workflows.extend(parent.sub_workflows)
                compiled.tasks.extend(parent.tasks)
        if compiled is None:
            compiled = await self._workflow_closure(ident)
        if compiled is None:
            return spans
        spans += await self._node_spans(children, compiled, depth)
        end = _latest_upstream(END_NODE, compiled, children)
        if end is not None and _key(c.updated_at) >= _key(end.closure.updated_at):
            spans.append(_op(end.closure.updated_at, c.updated_at, NODE_TEARDOWN))
        return spans

    async def _launch_plan_node(self, node: NodeExecution, depth: int) -> list[metrics_pb2.Span]:
        c = node.closure
        if not c.HasField("workflow_node_metadata"):
            return [_op(c.created_at, c.updated_at, NODE_SETUP)]
        try:
            child = await self.executions.get(c.workflow_node_metadata.executionId)
        except AdminError:
            log.warning("metrics: child execution of %s is gone", node.id)
            return [_op(c.created_at, c.updated_at, NODE_SETUP)]
        spans = [_op(c.created_at, child.closure.created_at, NODE_SETUP)]
        spans.append(await self._execution_span(child, depth))
        if _key(c.updated_at) >= _key(child.closure.updated_at):
            spans.append(_op(child.closure.updated_at, c.updated_at, NODE_TEARDOWN))
        return spans

    async def _branch(
        self,
        node: NodeExecution,
        branch: workflow_pb2.BranchNode,
        compiled: compiler_pb2.CompiledWorkflowClosure,
        depth: int,
    ) -> list[metrics_pb2.Span]:
        c = node.closure
        children = list((await self._nodes(node.id.execution_id, node.id.node_id)).values())
        if not children:
            return [_op(c.created_at, c.updated_at, NODE_SETUP)]
        taken = children[-1]  # flyteadmin insists on exactly one; the latest is the one taken
        spans = [_op(c.created_at, taken.closure.created_at, NODE_SETUP)]
        definition = _branch_target(taken.metadata.spec_node_id, branch)
        spans.append(await self._node_span(taken, definition, compiled, depth))
        if _key(c.updated_at) >= _key(taken.closure.updated_at):
            spans.append(_op(taken.closure.updated_at, c.updated_at, NODE_TEARDOWN))
        return spans

    @staticmethod
    def _gate(node: NodeExecution) -> list[metrics_pb2.Span]:
        c = node.closure
        if not _set(c.started_at):
            return [_op(c.created_at, c.updated_at, NODE_SETUP)]
        spans = [_op(c.created_at, c.started_at, NODE_SETUP)]
        if not c.HasField("duration") or not c.duration.ToNanoseconds():
            spans.append(_op(c.started_at, c.updated_at, NODE_IDLE))
        else:
            end = _plus(c.started_at, c)
            spans.append(_op(c.started_at, end, NODE_IDLE))
            spans.append(_op(end, c.updated_at, NODE_TEARDOWN))
        return spans
