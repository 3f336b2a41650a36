"""Events from flytepropeller and the node and task execution reads (§6)."""

from __future__ import annotations

from flyteidl.admin import event_pb2, node_execution_pb2, task_execution_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend

ADMIN = "/flyteidl.service.AdminService/"


def handlers(backend: Backend) -> dict[str, Handler]:
    events = backend.events

    async def workflow_event(request: event_pb2.WorkflowExecutionEventRequest, ctx: CallContext):
        await events.workflow_event(request)
        return event_pb2.WorkflowExecutionEventResponse()

    async def node_event(request: event_pb2.NodeExecutionEventRequest, ctx: CallContext):
        await events.node_event(request)
        return event_pb2.NodeExecutionEventResponse()

    async def task_event(request: event_pb2.TaskExecutionEventRequest, ctx: CallContext):
        await events.task_event(request)
        return event_pb2.TaskExecutionEventResponse()

    async def get_node(request: node_execution_pb2.NodeExecutionGetRequest, ctx: CallContext):
        return await events.get_node(request.id)

    async def list_nodes(request: node_execution_pb2.NodeExecutionListRequest, ctx: CallContext):
        return await events.list_nodes(request)

    async def list_nodes_for_task(
        request: node_execution_pb2.NodeExecutionForTaskListRequest, ctx: CallContext
    ):
        return await events.list_nodes_for_task(request)

    async def node_data(request: node_execution_pb2.NodeExecutionGetDataRequest, ctx: CallContext):
        return await events.get_node_data(request.id)

    async def dynamic_workflow(
        request: node_execution_pb2.GetDynamicNodeWorkflowRequest, ctx: CallContext
    ):
        return await events.get_dynamic_workflow(request.id)

    async def get_task(request: task_execution_pb2.TaskExecutionGetRequest, ctx: CallContext):
        return await events.get_task(request.id)

    async def list_tasks(request: task_execution_pb2.TaskExecutionListRequest, ctx: CallContext):
        return await events.list_tasks(request)

    async def task_data(request: task_execution_pb2.TaskExecutionGetDataRequest, ctx: CallContext):
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
