"""The matchable-attribute RPCs: Update/Get/Delete at the project, project-domain and workflow
levels, and ListMatchableAttributes (core/attributes.py holds the rules)."""

from __future__ import annotations

from flyteidl.admin import (
    matchable_resource_pb2,
    project_attributes_pb2,
    project_domain_attributes_pb2,
    workflow_attributes_pb2,
)

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend

ADMIN = "/flyteidl.service.AdminService/"

pda = project_domain_attributes_pb2
pa = project_attributes_pb2
wa = workflow_attributes_pb2


def handlers(backend: Backend) -> dict[str, Handler]:
    attributes = backend.attributes

    async def update_project_domain(
        request: pda.ProjectDomainAttributesUpdateRequest, ctx: CallContext
    ) -> pda.ProjectDomainAttributesUpdateResponse:
        await attributes.update_project_domain(request)
        return pda.ProjectDomainAttributesUpdateResponse()

    async def get_project_domain(
        request: pda.ProjectDomainAttributesGetRequest, ctx: CallContext
    ) -> pda.ProjectDomainAttributesGetResponse:
        return attributes.get_project_domain(request)

    async def delete_project_domain(
        request: pda.ProjectDomainAttributesDeleteRequest, ctx: CallContext
    ) -> pda.ProjectDomainAttributesDeleteResponse:
        await attributes.delete_project_domain(request)
        return pda.ProjectDomainAttributesDeleteResponse()

    async def update_project(
        request: pa.ProjectAttributesUpdateRequest, ctx: CallContext
    ) -> pa.ProjectAttributesUpdateResponse:
        await attributes.update_project(request)
        return pa.ProjectAttributesUpdateResponse()

    async def get_project(
        request: pa.ProjectAttributesGetRequest, ctx: CallContext
    ) -> pa.ProjectAttributesGetResponse:
        return attributes.get_project(request)

    async def delete_project(
        request: pa.ProjectAttributesDeleteRequest, ctx: CallContext
    ) -> pa.ProjectAttributesDeleteResponse:
        await attributes.delete_project(request)
        return pa.ProjectAttributesDeleteResponse()

    async def update_workflow(
        request: wa.WorkflowAttributesUpdateRequest, ctx: CallContext
    ) -> wa.WorkflowAttributesUpdateResponse:
        await attributes.update_workflow(request)
        return wa.WorkflowAttributesUpdateResponse()

    async def get_workflow(
        request: wa.WorkflowAttributesGetRequest, ctx: CallContext
    ) -> wa.WorkflowAttributesGetResponse:
        return attributes.get_workflow(request)

    async def delete_workflow(
        request: wa.WorkflowAttributesDeleteRequest, ctx: CallContext
    ) -> wa.WorkflowAttributesDeleteResponse:
        await attributes.delete_workflow(request)
        return wa.WorkflowAttributesDeleteResponse()

    async def list_(
        request: matchable_resource_pb2.ListMatchableAttributesRequest, ctx: CallContext
    ) -> matchable_resource_pb2.ListMatchableAttributesResponse:
        return attributes.list(request)

    return {
        ADMIN + "UpdateProjectDomainAttributes": update_project_domain,
        ADMIN + "GetProjectDomainAttributes": get_project_domain,
        ADMIN + "DeleteProjectDomainAttributes": delete_project_domain,
        ADMIN + "UpdateProjectAttributes": update_project,
        ADMIN + "GetProjectAttributes": get_project,
        ADMIN + "DeleteProjectAttributes": delete_project,
        ADMIN + "UpdateWorkflowAttributes": update_workflow,
        ADMIN + "GetWorkflowAttributes": get_workflow,
        ADMIN + "DeleteWorkflowAttributes": delete_workflow,
        ADMIN + "ListMatchableAttributes": list_,
    }
