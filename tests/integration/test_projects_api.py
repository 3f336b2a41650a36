"""Projects and domains end to end: real clients -> API server -> custom resources."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import grpc
import pytest
from flyteidl.admin import common_pb2, project_pb2
from flyteidl.service import admin_pb2_grpc, auth_pb2, auth_pb2_grpc
from flytekit.clients.friendly import SynchronousFlyteClient
from flytekit.configuration import PlatformConfig
from flytekit.exceptions.user import FlyteEntityAlreadyExistsException
from flytekit.models import filters as flyte_filters
from flytekit.models.admin.common import Sort
from flytekit.models.project import Project as FlyteProject
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kubernetes import client

from tests.waiting import eventually

Project = project_pb2.Project


@pytest.fixture
def stub(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        yield admin_pb2_grpc.AdminServiceStub(channel)


@pytest.fixture
def flyte_client(api_server) -> SynchronousFlyteClient:
    return SynchronousFlyteClient(
        PlatformConfig(endpoint=f"127.0.0.1:{api_server.grpc_port}", insecure=True)
    )


def stored_projects(kube_api, namespace) -> dict[str, dict]:
    items = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "projects"
    )["items"]
    return {i["metadata"]["name"]: i["spec"] for i in items}


def register(stub, pid: str, **fields) -> None:
    stub.RegisterProject(project_pb2.ProjectRegisterRequest(project=Project(id=pid, **fields)))


def test_flytekit_client_registers_lists_archives_and_filters(flyte_client):
    flyte_client.register_project(FlyteProject("alpha", "Alpha", "first project"))
    flyte_client.register_project(FlyteProject("beta", "Beta", "second project"))
    with pytest.raises(FlyteEntityAlreadyExistsException):
        flyte_client.register_project(FlyteProject("alpha", "Alpha", "again"))

    projects, token = flyte_client.list_projects_paginated(limit=10)
    assert [p.id for p in projects] == ["alpha", "beta"] and token == ""
    assert [d.id for d in flyte_client.get_domains()] == ["development", "staging", "production"]

    flyte_client.update_project(FlyteProject("beta", "", "", FlyteProject.ProjectState.ARCHIVED))
    projects, _ = flyte_client.list_projects_paginated(limit=10)
    assert [p.id for p in projects] == ["alpha"]  # archived hidden without filters
    archived, _ = flyte_client.list_projects_paginated(
        limit=10, filters=[flyte_filters.Equal("state", "1")]
    )
    assert [(p.id, p.name, p.description) for p in archived] == [("beta", "Beta", "second project")]

    page1, token = flyte_client.list_projects_paginated(
        limit=1,
        filters=[flyte_filters.Contains("description", ["project"])],
        sort_by=Sort("identifier", Sort.Direction.DESCENDING),
    )
    page2, token2 = flyte_client.list_projects_paginated(
        limit=1,
        token=token,
        filters=[flyte_filters.Contains("description", ["project"])],
        sort_by=Sort("identifier", Sort.Direction.DESCENDING),
    )
    assert ([p.id for p in page1], token, [p.id for p in page2], token2) == (
        ["beta"],
        "1",
        ["alpha"],
        "2",
    )
    assert flyte_client.get_control_plane_version()


def test_get_project_returns_domains_and_stored_fields(stub, kube_api, namespace):
    register(
        stub,
        "gamma",
        name="Gamma",
        description="d",
        labels=common_pb2.Labels(values={"team": "ml"}),
    )
    got = stub.GetProject(project_pb2.ProjectGetRequest(id="gamma"))
    assert (got.id, got.name, got.description, dict(got.labels.values)) == (
        "gamma",
        "Gamma",
        "d",
        {"team": "ml"},
    )
    assert [d.id for d in got.domains] == ["development", "staging", "production"]
    spec = stored_projects(kube_api, namespace)["gamma"]
    created = dt.datetime.fromisoformat(spec.pop("createdAt"))
    assert dt.timedelta(0) <= dt.datetime.now(dt.UTC) - created < dt.timedelta(minutes=10)
    assert spec == {
        "id": "gamma",
        "name": "Gamma",
        "description": "d",
        "labels": {"team": "ml"},
        "state": "ACTIVE",
    }


def test_a_repeated_list_follows_every_change_of_the_projects(stub, kube_api, namespace):
    """ListProjects keeps its answers while the projects are unchanged (listing.PageMemo):
    the same request after a registration, an update, an archive, and an edit made straight
    to the object (as with kubectl) must answer the new state."""
    request = project_pb2.ProjectListRequest(limit=100)

    def listed() -> dict[str, tuple[str, str]]:
        return {p.id: (p.name, p.description) for p in stub.ListProjects(request).projects}

    register(stub, "memo-a", name="A", description="first")
    assert listed() == {"memo-a": ("A", "first")}
    assert listed() == {"memo-a": ("A", "first")}  # kept
    register(stub, "memo-b", name="B", description="second")
    assert listed() == {"memo-a": ("A", "first"), "memo-b": ("B", "second")}
    stub.UpdateProject(Project(id="memo-b", name="B2", state=Project.ACTIVE))
    assert listed() == {"memo-a": ("A", "first"), "memo-b": ("B2", "second")}
    stub.UpdateProject(Project(id="memo-a", state=Project.ARCHIVED))
    assert listed() == {"memo-b": ("B2", "second")}
    client.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        "flyteadmin.io",
        "v1alpha1",
        namespace,
        "projects",
        "memo-b",
        {"spec": {"description": "edited by hand"}},
    )
    eventually(
        lambda: listed() == {"memo-b": ("B2", "edited by hand")},
        "the hand edit in ListProjects",
    )
    # Another request of the same state is its own answer.
    first = stub.ListProjects(project_pb2.ProjectListRequest(limit=1))
    assert ([p.id for p in first.projects], first.token) == (["memo-b"], "1")
    assert not stub.ListProjects(project_pb2.ProjectListRequest(limit=1, token="1")).projects


def test_update_writes_only_non_empty_fields_and_always_the_state(stub):
    register(stub, "delta", name="Delta", description="keep me")
    stub.UpdateProject(Project(id="delta", name="Delta 2", state=Project.ARCHIVED))
    got = stub.GetProject(project_pb2.ProjectGetRequest(id="delta"))
    assert (got.name, got.description, got.state) == ("Delta 2", "keep me", Project.ARCHIVED)
    stub.UpdateProject(Project(id="delta"))  # state ACTIVE (0) is written, nothing else
    got = stub.GetProject(project_pb2.ProjectGetRequest(id="delta"))
    assert (got.name, got.description, got.state) == ("Delta 2", "keep me", Project.ACTIVE)


LONG = "x" * 301
BAD_REGISTRATIONS = [
    (project_pb2.ProjectRegisterRequest(), "missing project"),
    (project_pb2.ProjectRegisterRequest(project=Project(id="ok")), "missing project_name"),
    (project_pb2.ProjectRegisterRequest(project=Project(name="n")), "missing project_id"),
    (
        project_pb2.ProjectRegisterRequest(project=Project(id="Bad_Id", name="n")),
        "invalid project id [Bad_Id]",
    ),
    (
        project_pb2.ProjectRegisterRequest(project=Project(id="a" * 64, name="n")),
        "must be no more than 63 characters",
    ),
    (
        project_pb2.ProjectRegisterRequest(project=Project(id="ok", name="n" * 65)),
        "project_name cannot exceed 64 characters",
    ),
    (
        project_pb2.ProjectRegisterRequest(project=Project(id="ok", name="n", description=LONG)),
        "project_description cannot exceed 300 characters",
    ),
    (
        project_pb2.ProjectRegisterRequest(
            project=Project(id="ok", name="n", domains=[project_pb2.Domain(id="x", name="x")])
        ),
        "Domains are currently only set system wide",
    ),
    (
        project_pb2.ProjectRegisterRequest(
            project=Project(id="ok", name="n", labels=common_pb2.Labels(values={"bad key!": "v"}))
        ),
        "invalid label key [bad key!]",
    ),
    (
        project_pb2.ProjectRegisterRequest(
            project=Project(id="ok", name="n", labels=common_pb2.Labels(values={"k": "bad value!"}))
        ),
        "invalid label value [bad value!]",
    ),
    (
        project_pb2.ProjectRegisterRequest(
            project=Project(
                id="ok",
                name="n",
                labels=common_pb2.Labels(values={f"k{i}": "v" for i in range(17)}),
            )
        ),
        "labels cannot have more than 16 entries",
    ),
]


@pytest.mark.parametrize("request_, message", BAD_REGISTRATIONS)
def test_bad_registrations_are_invalid_argument_and_store_nothing(
    stub, kube_api, namespace, request_, message
):
    with pytest.raises(grpc.RpcError) as info:
        stub.RegisterProject(request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    assert stored_projects(kube_api, namespace) == {}


BAD_CALLS = [
    (
        "GetProject",
        project_pb2.ProjectGetRequest(id="nope"),
        grpc.StatusCode.NOT_FOUND,
        "project [nope] not found",
    ),
    ("GetProject", project_pb2.ProjectGetRequest(), grpc.StatusCode.INVALID_ARGUMENT, "missing id"),
    (
        "UpdateProject",
        Project(id="nope", name="x"),
        grpc.StatusCode.NOT_FOUND,
        "project [nope] not found",
    ),
    (
        "UpdateProject",
        Project(id="epsilon", description=LONG),
        grpc.StatusCode.INVALID_ARGUMENT,
        "project_description cannot exceed 300 characters",
    ),
    ("UpdateProject", Project(), grpc.StatusCode.INVALID_ARGUMENT, "missing project_id"),
    (
        "ListProjects",
        project_pb2.ProjectListRequest(filters="eq(state,1"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid value for filters",
    ),
    (
        "ListProjects",
        project_pb2.ProjectListRequest(filters="foo(state,1)"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unrecognized filter function: foo",
    ),
    (
        "ListProjects",
        project_pb2.ProjectListRequest(filters="eq(colour,red)"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "'project.colour' is invalid filter",
    ),
    (
        "ListProjects",
        project_pb2.ProjectListRequest(filters="eq(task.name,x)"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "'task' entity is not allowed in filters",
    ),
    (
        "ListProjects",
        project_pb2.ProjectListRequest(sort_by=common_pb2.Sort(key="colour")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid sort key 'colour'",
    ),
    (
        "ListProjects",
        project_pb2.ProjectListRequest(limit=1, token="x"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid pagination token x for ListProjects",
    ),
    (
        "ListProjects",
        project_pb2.ProjectListRequest(filters="eq(state,active)"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid value 'active'",
    ),
]


@pytest.mark.parametrize("method, request_, code, message", BAD_CALLS)
def test_bad_calls_get_clear_codes_and_change_nothing(
    stub, kube_api, namespace, method, request_, code, message
):
    register(stub, "epsilon", name="Epsilon", description="original")
    before = stored_projects(kube_api, namespace)
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(request_)
    assert (info.value.code(), message in info.value.details()) == (code, True), (
        info.value.details()
    )
    assert stored_projects(kube_api, namespace) == before


def test_unserved_rpcs_are_unimplemented_with_a_message(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        metadata = auth_pb2_grpc.AuthMetadataServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            metadata.GetOAuth2Metadata(auth_pb2.OAuth2MetadataRequest())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "GetOAuth2Metadata is not implemented" in info.value.details()


def test_health_and_reflection(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service="flyteadmin"))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
        assert {
            "flyteidl.service.AdminService",
            "flyteidl.service.SignalService",
            "flyteidl.service.DataProxyService",
            "grpc.health.v1.Health",
        } <= names


def http(
    api_server, method: str, path: str, body: dict | None = None, accept: str = "application/json"
) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_server.http_port}{path}",
        data=data,
        method=method,
        headers={"Accept": accept, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_http_gateway_serves_the_same_handlers(api_server, stub):
    status, _ = http(
        api_server,
        "POST",
        "/api/v1/projects",
        {"project": {"id": "zeta", "name": "Zeta", "description": "via http"}},
    )
    assert status == 200
    assert stub.GetProject(project_pb2.ProjectGetRequest(id="zeta")).description == "via http"

    status, body = http(api_server, "GET", "/api/v1/projects/zeta")
    assert status == 200 and body["id"] == "zeta" and body["state"] == "ACTIVE"
    assert [d["id"] for d in body["domains"]] == ["development", "staging", "production"]

    status, _ = http(
        api_server, "PUT", "/api/v1/projects/zeta", {"id": "zeta", "state": "ARCHIVED"}
    )
    assert status == 200
    status, body = http(api_server, "GET", "/api/v1/projects?filters=eq(state%2C1)&limit=5")
    assert status == 200 and [p["id"] for p in body["projects"]] == ["zeta"]

    status, body = http(api_server, "GET", "/api/v1/projects/nope")
    assert status == 404 and body["code"] == 5 and "project [nope] not found" in body["message"]
    status, body = http(api_server, "POST", "/api/v1/projects", {"project": {"id": "Bad"}})
    assert status == 400 and body["message"] == "missing project_name"
    status, body = http(
        api_server, "POST", "/api/v1/projects", {"project": {"id": "zeta", "name": "Zeta"}}
    )
    assert status == 409

    status, body = http(api_server, "GET", "/api/v1/domains")
    assert status == 200 and body["domains"][0] == {"id": "development", "name": "development"}
    status, body = http(api_server, "GET", "/api/v1/version")
    assert status == 200 and body["control_plane_version"]["Version"]
    status, body = http(api_server, "GET", "/me")  # authentication off: the anonymous user
    assert status == 200 and body["subject"] == "anonymous"


def test_http_binary_protobuf_like_flyteconsole(api_server, stub):
    register(stub, "eta", name="Eta")
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_server.http_port}/api/v1/projects/eta",
        headers={"Accept": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert Project.FromString(response.read()).name == "Eta"
    missing = urllib.request.Request(
        f"http://127.0.0.1:{api_server.http_port}/api/v1/projects/none",
        headers={"Accept": "application/octet-stream"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(missing, timeout=10)
    assert info.value.code == 404
    assert status_pb2.Status.FromString(info.value.read()).code == 5
