"""RegisterProject, UpdateProject, GetProject, ListProjects, GetDomains."""

from __future__ import annotations

from flyteidl.admin import project_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend
from flyteadmin.core.wire import Encoded

ADMIN = "/flyteidl.service.AdminService/"


def handlers(backend: Backend) -> dict[str, Handler]:
    projects = backend.projects

    async def register(
        request: project_pb2.ProjectRegisterRequest, ctx: CallContext
    ) -> project_pb2.ProjectRegisterResponse:
        await projects.register(request)
        return project_pb2.ProjectRegisterResponse()

    async def update(
        request: project_pb2.Project, ctx: CallContext
    ) -> project_pb2.ProjectUpdateResponse:
        await projects.update(request)
        return project_pb2.ProjectUpdateResponse()

    async def get(request: project_pb2.ProjectGetRequest, ctx: CallContext) -> project_pb2.Project:
        return projects.get(request.id)

    async def list_(
        request: project_pb2.ProjectListRequest, ctx: CallContext
    ) -> Encoded[project_pb2.Projects]:
        return await projects.list(request)

    async def domains(
        request: project_pb2.GetDomainRequest, ctx: CallContext
    ) -> project_pb2.GetDomainsResponse:
        return project_pb2.GetDomainsResponse(domains=projects.domains())

    return {
        ADMIN + "RegisterProject": register,
        ADMIN + "UpdateProject": update,
        ADMIN + "GetProject": get,
        ADMIN + "ListProjects": list_,
        ADMIN + "GetDomains": domains,
    }
