"""Tasks, workflows, launch plans, named entities and description entities: thin handlers."""

from __future__ import annotations

from flyteidl.admin import (
    common_pb2,
    description_entity_pb2,
    launch_plan_pb2,
    task_pb2,
    workflow_pb2,
)
from flyteidl.core import identifier_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend
from flyteadmin.core.validation.identifiers import validate_identifier
from flyteadmin.core.wire import Encoded

ADMIN = "/flyteidl.service.AdminService/"
RT = identifier_pb2.ResourceType


def _checked_id(
    request: common_pb2.ObjectGetRequest, resource_type: identifier_pb2.ResourceType
) -> identifier_pb2.Identifier:
    """Get RPCs over HTTP arrive without a resource type; flyteadmin fills it in. A bad id is
    InvalidArgument here (flyteadmin only logged it and matched an arbitrary row)."""
    ident = identifier_pb2.Identifier()
    ident.CopyFrom(request.id)
    if ident.resource_type == RT.UNSPECIFIED:
        ident.resource_type = resource_type
    validate_identifier(ident, resource_type)
    return ident


def handlers(backend: Backend) -> dict[str, Handler]:
    tasks, workflows = backend.tasks, backend.workflows
    launch_plans, named, descriptions = (
        backend.launch_plans,
        backend.named_entities,
        backend.descriptions,
    )

    async def create_task(
        request: task_pb2.TaskCreateRequest, ctx: CallContext
    ) -> task_pb2.TaskCreateResponse:
        await tasks.create(request)
        return task_pb2.TaskCreateResponse()

    async def get_task(request: common_pb2.ObjectGetRequest, ctx: CallContext) -> task_pb2.Task:
        return await tasks.get_full(_checked_id(request, RT.TASK))

    async def list_tasks(
        request: common_pb2.ResourceListRequest, ctx: CallContext
    ) -> Encoded[task_pb2.TaskList]:
        return await tasks.list_full(request, rpc="ListTasks")

    async def list_task_ids(
        request: common_pb2.NamedEntityIdentifierListRequest, ctx: CallContext
    ) -> common_pb2.NamedEntityIdentifierList:
        return tasks.list_ids(request, "ListTaskIds")

    async def create_workflow(
        request: workflow_pb2.WorkflowCreateRequest, ctx: CallContext
    ) -> workflow_pb2.WorkflowCreateResponse:
        await workflows.create(request)
        return workflow_pb2.WorkflowCreateResponse()

    async def get_workflow(
        request: common_pb2.ObjectGetRequest, ctx: CallContext
    ) -> workflow_pb2.Workflow:
        return await workflows.get_full(_checked_id(request, RT.WORKFLOW))

    async def list_workflows(
        request: common_pb2.ResourceListRequest, ctx: CallContext
    ) -> Encoded[workflow_pb2.WorkflowList]:
        return await workflows.list_workflows(request)

    async def list_workflow_ids(
        request: common_pb2.NamedEntityIdentifierListRequest, ctx: CallContext
    ) -> common_pb2.NamedEntityIdentifierList:
        return workflows.list_ids(request, "ListWorkflowIds")

    async def create_launch_plan(
        request: launch_plan_pb2.LaunchPlanCreateRequest, ctx: CallContext
    ) -> launch_plan_pb2.LaunchPlanCreateResponse:
        await launch_plans.create(request)
        return launch_plan_pb2.LaunchPlanCreateResponse()

    async def get_launch_plan(
        request: common_pb2.ObjectGetRequest, ctx: CallContext
    ) -> launch_plan_pb2.LaunchPlan:
        return launch_plans.get(_checked_id(request, RT.LAUNCH_PLAN))

    async def update_launch_plan(
        request: launch_plan_pb2.LaunchPlanUpdateRequest, ctx: CallContext
    ) -> launch_plan_pb2.LaunchPlanUpdateResponse:
        await launch_plans.update(request)
        return launch_plan_pb2.LaunchPlanUpdateResponse()

    async def get_active_launch_plan(
        request: launch_plan_pb2.ActiveLaunchPlanRequest, ctx: CallContext
    ) -> launch_plan_pb2.LaunchPlan:
        return launch_plans.get_active(request)

    async def list_active_launch_plans(
        request: launch_plan_pb2.ActiveLaunchPlanListRequest, ctx: CallContext
    ) -> Encoded[launch_plan_pb2.LaunchPlanList]:
        return await launch_plans.list_launch_plans(request, active_only=True)

    async def list_launch_plans(
        request: common_pb2.ResourceListRequest, ctx: CallContext
    ) -> Encoded[launch_plan_pb2.LaunchPlanList]:
        return await launch_plans.list_launch_plans(request)

    async def list_launch_plan_ids(
        request: common_pb2.NamedEntityIdentifierListRequest, ctx: CallContext
    ) -> common_pb2.NamedEntityIdentifierList:
        return launch_plans.list_ids(request, "ListLaunchPlanIds")

    async def get_named_entity(
        request: common_pb2.NamedEntityGetRequest, ctx: CallContext
    ) -> common_pb2.NamedEntity:
        return named.get(request)

    async def update_named_entity(
        request: common_pb2.NamedEntityUpdateRequest, ctx: CallContext
    ) -> common_pb2.NamedEntityUpdateResponse:
        await named.update(request)
        return common_pb2.NamedEntityUpdateResponse()

    async def list_named_entities(
        request: common_pb2.NamedEntityListRequest, ctx: CallContext
    ) -> common_pb2.NamedEntityList:
        return await named.list(request)

    async def get_description(
        request: common_pb2.ObjectGetRequest, ctx: CallContext
    ) -> description_entity_pb2.DescriptionEntity:
        ident = identifier_pb2.Identifier()
        ident.CopyFrom(request.id)
        return descriptions.get_description(ident)

    async def list_descriptions(
        request: description_entity_pb2.DescriptionEntityListRequest, ctx: CallContext
    ) -> Encoded[description_entity_pb2.DescriptionEntityList]:
        return await descriptions.list_descriptions(request)

    return {
        ADMIN + "CreateTask": create_task,
        ADMIN + "GetTask": get_task,
        ADMIN + "ListTasks": list_tasks,
        ADMIN + "ListTaskIds": list_task_ids,
        ADMIN + "CreateWorkflow": create_workflow,
        ADMIN + "GetWorkflow": get_workflow,
        ADMIN + "ListWorkflows": list_workflows,
        ADMIN + "ListWorkflowIds": list_workflow_ids,
        ADMIN + "CreateLaunchPlan": create_launch_plan,
        ADMIN + "GetLaunchPlan": get_launch_plan,
        ADMIN + "UpdateLaunchPlan": update_launch_plan,
        ADMIN + "GetActiveLaunchPlan": get_active_launch_plan,
        ADMIN + "ListActiveLaunchPlans": list_active_launch_plans,
        ADMIN + "ListLaunchPlans": list_launch_plans,
        ADMIN + "ListLaunchPlanIds": list_launch_plan_ids,
        ADMIN + "GetNamedEntity": get_named_entity,
        ADMIN + "UpdateNamedEntity": update_named_entity,
        ADMIN + "ListNamedEntities": list_named_entities,
        ADMIN + "GetDescriptionEntity": get_description,
        ADMIN + "ListDescriptionEntities": list_descriptions,
    }
