"""Events from flytepropeller and the node and task execution reads (§6)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable

from flyteidl.admin import event_pb2, node_execution_pb2, task_execution_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core import metrics
from flyteadmin.core.backend import Backend
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.wire import Encoded

ADMIN = "/flyteidl.service.AdminService/"
# Failures of ours (or the apiserver's), not of the event: counted as `error`, not `rejected`.
_SERVER_CODES = frozenset(
    (
        Code.INTERNAL,
        Code.UNAVAILABLE,
        Code.UNKNOWN,
        Code.DATA_LOSS,
        Code.ABORTED,
        Code.DEADLINE_EXCEEDED,
    )
)


async def ingest(
    kind: str, applying: Awaitable[None], occurred_at: timestamp_pb2.Timestamp
) -> None:
    """Apply an event, counted by kind and outcome; accepted ones with their latency."""
    try:
        await applying
    except AdminError as error:
        if error.code == Code.ALREADY_EXISTS:
            outcome = "duplicate"
        else:
            outcome = "error" if error.code in _SERVER_CODES else "rejected"
        metrics.event_ingested(kind, outcome)
        raise
    except Exception:
        metrics.event_ingested(kind, "error")
        raise
    occurred = occurred_at.ToDatetime(tzinfo=dt.UTC) if occurred_at.seconds else None
    metrics.event_ingested(kind, "accepted", occurred)


def handlers(backend: Backend) -> dict[str, Handler]:
    events = backend.events

    async def workflow_event(
        request: event_pb2.WorkflowExecutionEventRequest, ctx: CallContext
    ) -> event_pb2.WorkflowExecutionEventResponse:
        await ingest("workflow", events.workflow_event(request), request.event.occurred_at)
        return event_pb2.WorkflowExecutionEventResponse()

    async def node_event(
        request: event_pb2.NodeExecutionEventRequest, ctx: CallContext
    ) -> event_pb2.NodeExecutionEventResponse:
        await ingest("node", events.node_event(request), request.event.occurred_at)
        return event_pb2.NodeExecutionEventResponse()

    async def task_event(
        request: event_pb2.TaskExecutionEventRequest, ctx: CallContext
    ) -> event_pb2.TaskExecutionEventResponse:
        await ingest("task", events.task_event(request), request.event.occurred_at)
        return event_pb2.TaskExecutionEventResponse()

    async def get_node(
        request: node_execution_pb2.NodeExecutionGetRequest, ctx: CallContext
    ) -> node_execution_pb2.NodeExecution:
        return await events.get_node(request.id)

    async def list_nodes(
        request: node_execution_pb2.NodeExecutionListRequest, ctx: CallContext
    ) -> Encoded[node_execution_pb2.NodeExecutionList]:
        return await events.list_nodes(request)

    async def list_nodes_for_task(
        request: node_execution_pb2.NodeExecutionForTaskListRequest, ctx: CallContext
    ) -> Encoded[node_execution_pb2.NodeExecutionList]:
        return await events.list_nodes_for_task(request)

    async def node_data(
        request: node_execution_pb2.NodeExecutionGetDataRequest, ctx: CallContext
    ) -> node_execution_pb2.NodeExecutionGetDataResponse:
        return await events.get_node_data(request.id)

    async def dynamic_workflow(
        request: node_execution_pb2.GetDynamicNodeWorkflowRequest, ctx: CallContext
    ) -> node_execution_pb2.DynamicNodeWorkflowResponse:
        return await events.get_dynamic_workflow(request.id)

    async def get_task(
        request: task_execution_pb2.TaskExecutionGetRequest, ctx: CallContext
    ) -> task_execution_pb2.TaskExecution:
        return await events.get_task(request.id)

    async def list_tasks(
        request: task_execution_pb2.TaskExecutionListRequest, ctx: CallContext
    ) -> Encoded[task_execution_pb2.TaskExecutionList]:
        return await events.list_tasks(request)

    async def task_data(
        request: task_execution_pb2.TaskExecutionGetDataRequest, ctx: CallContext
    ) -> task_execution_pb2.TaskExecutionGetDataResponse:
        return await events.get_task_data(request.id)

    return {
        ADMIN + "CreateWorkflowEvent": workflow_event,
        ADMIN + "CreateNodeEvent": node_event,
        ADMIN + "CreateTaskEvent": task_event,
        ADMIN + "GetNodeExecution": get_node,
        ADMIN + "ListNodeExecutions": list_nodes,
        ADMIN + "ListNodeExecutionsForTask": list_nodes_for_task,
        ADMIN + "GetNodeExecutionData": node_data,
        ADMIN + "GetDynamicNodeWorkflow": dynamic_workflow,
        ADMIN + "GetTaskExecution": get_task,
        ADMIN + "ListTaskExecutions": list_tasks,
        ADMIN + "GetTaskExecutionData": task_data,
    }
