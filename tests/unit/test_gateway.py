"""The HTTP/JSON gateway: route table from the descriptors, request building, encodings, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from flyteidl.admin import (
    common_pb2,
    execution_pb2,
    node_execution_pb2,
    project_pb2,
    task_pb2,
)
from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2
from flyteidl.service import admin_pb2, auth_pb2, dataproxy_pb2, identity_pb2, signal_pb2
from google.api import annotations_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2
from yarl import URL

from flyteadmin.api_server.context import CallContext
from flyteadmin.api_server.gateway import HTTP_STATUS, build_http_app
from flyteadmin.api_server.routes import ROUTES, RouteTable, compile_template, match
from flyteadmin.core.errors import AdminError, Code

ADMIN = "/flyteidl.service.AdminService/"
OCTET = "application/octet-stream"
BROWSER_ACCEPT = "application/json, text/plain, */*"


class Fake:
    """A handler that records what it got and returns (or raises) a canned answer."""

    def __init__(self, response: Message | None = None, error: BaseException | None = None):
        self.response, self.error = response, error
        self.calls: list[tuple[Message, CallContext]] = []

    async def __call__(self, request: Message, ctx: CallContext) -> Message:
        self.calls.append((request, ctx))
        if self.error is not None:
            raise self.error
        return self.response

    @property
    def request(self) -> Any:
        assert len(self.calls) == 1, self.calls
        return self.calls[0][0]


@dataclasses.dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def status_proto(self) -> status_pb2.Status:
        return status_pb2.Status.FromString(self.body)


def call(handlers: Mapping[str, Any], method: str, path: str, **kwargs: Any) -> Reply:
    app_kwargs = kwargs.pop("app_kwargs", {})

    async def go() -> Reply:
        app = build_http_app(handlers, **app_kwargs)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            # encoded=True: send the path exactly as written (e.g. %2B, %2F).
            response = await client.request(method, URL(path, encoded=True), **kwargs)
            return Reply(response.status, response.headers, await response.read())

    return asyncio.run(go())


# ---- Route table -----------------------------------------------------------------------------


def _annotated_bindings() -> set[tuple[str, str, str]]:
    services = [
        admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
        dataproxy_pb2.DESCRIPTOR.services_by_name["DataProxyService"],
        auth_pb2.DESCRIPTOR.services_by_name["AuthMetadataService"],
        identity_pb2.DESCRIPTOR.services_by_name["IdentityService"],
        signal_pb2.DESCRIPTOR.services_by_name["SignalService"],
    ]
    found = set()
    for service in services:
        for method in service.methods:
            if not method.GetOptions().HasExtension(annotations_pb2.http):
                continue
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                verb = binding.WhichOneof("pattern")
                full = f"/{service.full_name}/{method.name}"
                found.add((verb.upper(), getattr(binding, verb), full))
    return found


def test_route_table_has_every_annotated_binding() -> None:
    expected = _annotated_bindings()
    assert len(expected) == 69  # 65 annotated methods + 4 additional bindings (flyteidl 1.16)
    assert len(ROUTES) == len(expected)
    assert {(r.verb, r.template, r.full_method) for r in ROUTES} == expected
    assert not any(r.method == "GetOrCreateSignal" for r in ROUTES)  # gRPC only


@pytest.mark.parametrize(
    ("verb", "path", "method"),
    [
        ("GET", "/api/v1/projects", ADMIN + "ListProjects"),
        ("POST", "/api/v1/projects", ADMIN + "RegisterProject"),
        ("POST", "/api/v1/executions", ADMIN + "CreateExecution"),
        ("POST", "/api/v1/executions/relaunch", ADMIN + "RelaunchExecution"),
        ("POST", "/api/v1/executions/recover", ADMIN + "RecoverExecution"),
        ("GET", "/api/v1/tasks/p/d", ADMIN + "ListTasks"),
        ("GET", "/api/v1/tasks/p/d/n", ADMIN + "ListTasks"),
        ("GET", "/api/v1/tasks/p/d/n/v", ADMIN + "GetTask"),
        (
            "GET",
            "/api/v1/node_executions/p/d/e/n/dynamic_workflow",
            ADMIN + "GetDynamicNodeWorkflow",
        ),
        ("GET", "/api/v1/data", "/flyteidl.service.DataProxyService/GetData"),
        ("GET", "/api/v1/version", ADMIN + "GetVersion"),
        ("GET", "/me", "/flyteidl.service.IdentityService/UserInfo"),
        (
            "GET",
            "/.well-known/oauth-authorization-server",
            "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata",
        ),
        ("POST", "/api/v1/signals", "/flyteidl.service.SignalService/SetSignal"),
    ],
)
def test_well_known_routes(verb: str, path: str, method: str) -> None:
    found = match(verb, path)
    assert found is not None
    assert found[0].full_method == method


def test_no_route_for_wrong_verb_or_path() -> None:
    assert match("DELETE", "/api/v1/projects") is None
    assert match("GET", "/api/v1/tasks/p") is None
    assert match("GET", "/api/v1/tasks/p/d/n/v/extra") is None


def test_literal_segment_beats_variable_whatever_the_order() -> None:
    get_project = next(r for r in ROUTES if r.method == "GetProject")  # /api/v1/projects/{id}
    pattern, variables, specificity = compile_template("/api/v1/projects/special")
    literal = dataclasses.replace(
        get_project,
        template="/api/v1/projects/special",
        pattern=pattern,
        variables=variables,
        specificity=specificity,
        full_method=ADMIN + "Special",
    )
    pattern, variables, specificity = compile_template("/api/v1/{rest=**}")
    catch_all = dataclasses.replace(
        get_project,
        template="/api/v1/{rest=**}",
        pattern=pattern,
        variables=variables,
        specificity=specificity,
        full_method=ADMIN + "CatchAll",
    )
    for order in ([get_project, literal, catch_all], [catch_all, literal, get_project]):
        table = RouteTable(order)
        assert table.match("GET", "/api/v1/projects/special")[0].full_method == ADMIN + "Special"
        assert table.match("GET", "/api/v1/projects/other")[0].method == "GetProject"
        route, params = table.match("GET", "/api/v1/a/b/c")
        assert route.full_method == ADMIN + "CatchAll" and params == {"rest": "a/b/c"}


def test_template_forms() -> None:
    pattern, variables, _ = compile_template("/v1/{name=projects/*/things/**}:cancel")
    assert variables == ("name",)
    assert (
        pattern.fullmatch("/v1/projects/p/things/a/b:cancel").group("v0") == "projects/p/things/a/b"
    )
    assert pattern.fullmatch("/v1/projects/p/things/a/b") is None
    pattern, variables, kinds = compile_template("/a/{x=*}/{y}")
    assert variables == ("x", "y") and kinds == (0, 1, 1)
    with pytest.raises(ValueError):
        compile_template("a/{x}")


# ---- Request building ------------------------------------------------------------------------


def test_path_params_fill_nested_fields_and_are_decoded() -> None:
    fake = Fake(task_pb2.Task())
    # A query parameter naming a path-bound field is skipped, as in grpc-gateway.
    path = "/api/v1/tasks/proj/dev/my.task/v%2F1%201?id.project=nope&id.resource_type=TASK"
    reply = call({ADMIN + "GetTask": fake}, "GET", path)
    assert reply.status == 200, reply.body
    request = fake.request
    assert (request.id.project, request.id.domain, request.id.name, request.id.version) == (
        "proj",
        "dev",
        "my.task",
        "v/1 1",
    )
    assert request.id.resource_type == identifier_pb2.TASK  # not path-bound: taken from the query


def test_nine_segment_path_with_uint32() -> None:
    fake = Fake(node_execution_pb2.NodeExecutionList())
    path = "/api/v1/children/task_executions/p/d/e/n1/tp/td/tn/tv/3"
    assert call({ADMIN + "ListNodeExecutionsForTask": fake}, "GET", path).status == 200
    te = fake.request.task_execution_id
    assert te.node_execution_id.execution_id.name == "e" and te.node_execution_id.node_id == "n1"
    assert te.task_id.version == "tv" and te.retry_attempt == 3
    bad = call({ADMIN + "ListNodeExecutionsForTask": fake}, "GET", path[:-1] + "x")
    assert bad.status == 400 and bad.json()["code"] == Code.INVALID_ARGUMENT


@pytest.mark.parametrize("segment", ["1", "TASK"])
def test_enum_path_segment_by_number_or_name(segment: str) -> None:
    fake = Fake(common_pb2.NamedEntityList())
    reply = call(
        {ADMIN + "ListNamedEntities": fake}, "GET", f"/api/v1/named_entities/{segment}/p/d"
    )
    assert reply.status == 200, reply.body
    assert fake.request.resource_type == identifier_pb2.TASK
    assert (fake.request.project, fake.request.domain) == ("p", "d")


@pytest.mark.parametrize("segment", ["BOGUS", "99"])
def test_bad_enum_path_segment_is_invalid_argument(segment: str) -> None:
    fake = Fake(common_pb2.NamedEntityList())
    reply = call(
        {ADMIN + "ListNamedEntities": fake}, "GET", f"/api/v1/named_entities/{segment}/p/d"
    )
    assert reply.status == 400
    assert (
        reply.json()["code"] == Code.INVALID_ARGUMENT and "resource_type" in reply.json()["message"]
    )
    assert not fake.calls


def test_list_query_params() -> None:
    fake = Fake(execution_pb2.ExecutionList())
    query = (
        "limit=10&token=abc&filters=eq(phase,SUCCEEDED)%2Beq(x,y)"
        "&sort_by.key=created_at&sort_by.direction=ASCENDING&unknown_param=1&_=123"
    )
    reply = call({ADMIN + "ListExecutions": fake}, "GET", f"/api/v1/executions/p/d?{query}")
    assert reply.status == 200, reply.body
    request = fake.request
    assert (request.id.project, request.id.domain) == ("p", "d")
    assert request.limit == 10 and request.token == "abc"
    assert request.filters == "eq(phase,SUCCEEDED)+eq(x,y)"
    assert request.sort_by.key == "created_at"
    assert request.sort_by.direction == common_pb2.Sort.ASCENDING


def test_enum_query_param_by_number_and_camel_case_names() -> None:
    fake = Fake(execution_pb2.ExecutionList())
    path = "/api/v1/executions/p/d?sortBy.key=k&sort_by.direction=1&limit=5"
    assert call({ADMIN + "ListExecutions": fake}, "GET", path).status == 200
    assert fake.request.sort_by.key == "k"
    assert fake.request.sort_by.direction == common_pb2.Sort.ASCENDING


def test_camel_case_unique_parent_id_on_list_node_executions() -> None:
    fake = Fake(node_execution_pb2.NodeExecutionList())
    path = "/api/v1/node_executions/p/d/e?uniqueParentId=n0-0&limit=100"
    assert call({ADMIN + "ListNodeExecutions": fake}, "GET", path).status == 200
    assert fake.request.unique_parent_id == "n0-0"
    assert fake.request.workflow_execution_id.name == "e"
    assert fake.request.limit == 100


@pytest.mark.parametrize(
    "query", ["limit=abc", "limit=-1", "limit=1&limit=2", "sort_by.direction=UP"]
)
def test_bad_query_value_is_invalid_argument(query: str) -> None:
    fake = Fake(project_pb2.Projects())
    reply = call({ADMIN + "ListProjects": fake}, "GET", f"/api/v1/projects?{query}")
    assert reply.status == 400, reply.body
    assert reply.json()["code"] == Code.INVALID_ARGUMENT
    assert not fake.calls


def test_well_known_type_and_repeated_query_params() -> None:
    fake = Fake(dataproxy_pb2.CreateDownloadLocationResponse())
    path = "/api/v1/dataproxy/artifact_urn?native_url=s3://b/k&expires_in=90s"
    assert (
        call(
            {"/flyteidl.service.DataProxyService/CreateDownloadLocation": fake}, "GET", path
        ).status
        == 200
    )
    assert fake.request.native_url == "s3://b/k" and fake.request.expires_in.seconds == 90
    # No flyteidl GET request has a repeated field: serve one through a copied route.
    route = dataclasses.replace(
        next(r for r in ROUTES if r.method == "ListProjects"), request_type=tasks_pb2.Container
    )
    fake = Fake(project_pb2.Projects())
    reply = call(
        {route.full_method: fake},
        "GET",
        "/api/v1/projects?args=a&args=b&image=i",
        app_kwargs={"table": RouteTable([route])},
    )
    assert reply.status == 200, reply.body
    assert list(fake.request.args) == ["a", "b"] and fake.request.image == "i"


def test_json_body_accepts_snake_and_camel_case() -> None:
    fake = Fake(execution_pb2.ExecutionCreateResponse())
    body = {
        "id": {"project": "p", "domain": "d", "name": "e"},
        "name": "new",
        "overwriteCache": True,
    }
    reply = call(
        {ADMIN + "RelaunchExecution": fake}, "POST", "/api/v1/executions/relaunch", json=body
    )
    assert reply.status == 200, reply.body
    assert fake.request.id.name == "e" and fake.request.name == "new"
    assert fake.request.overwrite_cache is True
    fake = Fake(project_pb2.ProjectRegisterResponse())
    body = {"project": {"id": "p", "name": "P", "domains": [{"id": "d", "name": "D"}]}}
    assert (
        call({ADMIN + "RegisterProject": fake}, "POST", "/api/v1/projects", json=body).status == 200
    )
    assert fake.request.project.domains[0].id == "d"


def test_body_star_route_ignores_query_and_path_wins_over_body() -> None:
    fake = Fake(project_pb2.ProjectUpdateResponse())
    path = "/api/v1/projects/from-path?name=from-query"
    body = {"id": "from-body", "name": "from-body", "state": "ARCHIVED"}
    assert call({ADMIN + "UpdateProject": fake}, "PUT", path, json=body).status == 200
    assert fake.request.id == "from-path" and fake.request.name == "from-body"
    assert fake.request.state == project_pb2.Project.ARCHIVED


def test_delete_with_body_and_empty_body() -> None:
    fake = Fake(execution_pb2.ExecutionTerminateResponse())
    handlers = {ADMIN + "TerminateExecution": fake}
    assert call(handlers, "DELETE", "/api/v1/executions/p/d/e", json={"cause": "why"}).status == 200
    assert call(handlers, "DELETE", "/api/v1/executions/p/d/e").status == 200
    assert [(r.id.name, r.cause) for r, _ in fake.calls] == [("e", "why"), ("e", "")]


def test_unknown_json_field_rejected_with_json_content_type_only() -> None:
    fake = Fake(project_pb2.ProjectRegisterResponse())
    handlers = {ADMIN + "RegisterProject": fake}
    body = json.dumps({"project": {"id": "p"}, "bogus": 1})
    reply = call(
        handlers,
        "POST",
        "/api/v1/projects",
        data=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert reply.status == 400 and "bogus" in reply.json()["message"]
    assert not fake.calls
    # Any other Content-Type gets grpc-gateway's wildcard marshaler, which discards them.
    reply = call(
        handlers, "POST", "/api/v1/projects", data=body, headers={"Content-Type": "text/plain"}
    )
    assert reply.status == 200 and fake.request.project.id == "p"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"limit": "x"}', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"\x0a\xff", OCTET),
    ],
)
def test_malformed_body_is_invalid_argument(data: bytes, content_type: str) -> None:
    fake = Fake(project_pb2.ProjectRegisterResponse())
    reply = call(
        {ADMIN + "RegisterProject": fake},
        "POST",
        "/api/v1/projects",
        data=data,
        headers={"Content-Type": content_type},
    )
    assert reply.status == 400, reply.body
    assert not fake.calls


def test_body_over_the_limit_is_rejected() -> None:
    fake = Fake(project_pb2.ProjectRegisterResponse())
    body = {"project": {"id": "p", "description": "x" * 500}}
    reply = call(
        {ADMIN + "RegisterProject": fake},
        "POST",
        "/api/v1/projects",
        json=body,
        app_kwargs={"max_body_bytes": 100},
    )
    assert reply.status == 413 and reply.json()["code"] == Code.RESOURCE_EXHAUSTED
    assert not fake.calls


def test_headers_reach_the_call_context() -> None:
    fake = Fake(project_pb2.Projects())
    headers = {
        "Authorization": "Bearer t",
        "X-Request-Id": "a-123",
        "Flyte-Authorization": "Bearer f",
    }
    assert (
        call({ADMIN + "ListProjects": fake}, "GET", "/api/v1/projects", headers=headers).status
        == 200
    )
    ctx = fake.calls[0][1]
    assert ctx.metadata["authorization"] == "Bearer t"
    assert ctx.metadata["flyte-authorization"] == "Bearer f"
    assert ctx.request_id == "a-123"


# ---- Response encoding -----------------------------------------------------------------------


def _named_entities() -> common_pb2.NamedEntityList:
    entity = common_pb2.NamedEntity(
        resource_type=identifier_pb2.WORKFLOW,
        id=common_pb2.NamedEntityIdentifier(project="p", domain="d", name="wf"),
        metadata=common_pb2.NamedEntityMetadata(description="hello"),
    )
    return common_pb2.NamedEntityList(entities=[entity])


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"Accept": "application/json"}, "resource_type"),
        ({}, "resourceType"),
        ({"Accept": "*/*"}, "resourceType"),
        ({"Accept": BROWSER_ACCEPT}, "resourceType"),
        # Outbound falls back to the Content-Type's marshaler, as in grpc-gateway.
        ({"Accept": BROWSER_ACCEPT, "Content-Type": "application/json"}, "resource_type"),
    ],
)
def test_json_field_names_follow_accept(headers: dict[str, str], key: str) -> None:
    fake = Fake(_named_entities())
    reply = call(
        {ADMIN + "ListNamedEntities": fake}, "GET", "/api/v1/named_entities/2/p/d", headers=headers
    )
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    entity = body["entities"][0]
    assert entity[key] == "WORKFLOW"  # enums by name
    assert body["token"] == ""  # unpopulated fields are emitted
    other = "resourceType" if key == "resource_type" else "resource_type"
    assert other not in entity


def test_int64_is_a_json_string() -> None:
    literal = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=1))
    )
    response = execution_pb2.WorkflowExecutionGetDataResponse(
        full_inputs=literals_pb2.LiteralMap(literals={"x": literal})
    )
    fake = Fake(response)
    reply = call(
        {ADMIN + "GetExecutionData": fake},
        "GET",
        "/api/v1/data/executions/p/d/e",
        headers={"Accept": "application/json"},
    )
    assert reply.status == 200
    assert reply.json()["full_inputs"]["literals"]["x"]["scalar"]["primitive"]["integer"] == "1"


@pytest.mark.parametrize("accept", [OCTET, None])
def test_binary_request_and_response(accept: str | None) -> None:
    request = execution_pb2.ExecutionCreateRequest(project="p", domain="d", name="e")
    response = execution_pb2.ExecutionCreateResponse(
        id=identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e")
    )
    fake = Fake(response)
    headers = {"Content-Type": OCTET, **({"Accept": accept} if accept else {})}
    reply = call(
        {ADMIN + "CreateExecution": fake},
        "POST",
        "/api/v1/executions",
        data=request.SerializeToString(),
        headers=headers,
    )
    assert reply.status == 200 and reply.headers["Content-Type"] == OCTET
    assert execution_pb2.ExecutionCreateResponse.FromString(reply.body) == response
    assert fake.request == request


def test_binary_accept_on_a_get() -> None:
    fake = Fake(_named_entities())
    reply = call(
        {ADMIN + "ListNamedEntities": fake},
        "GET",
        "/api/v1/named_entities/2/p/d",
        headers={"Accept": OCTET},
    )
    assert reply.headers["Content-Type"] == OCTET
    assert common_pb2.NamedEntityList.FromString(reply.body) == _named_entities()


# ---- Errors ----------------------------------------------------------------------------------

EXPECTED_HTTP = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def test_status_table_is_grpc_gateways() -> None:
    assert HTTP_STATUS == EXPECTED_HTTP


@pytest.mark.parametrize("code", [c for c in Code if c != Code.OK])
def test_admin_error_becomes_http_status(code: Code) -> None:
    fake = Fake(error=AdminError(code, f"failed with {code.name}"))
    reply = call({ADMIN + "ListProjects": fake}, "GET", "/api/v1/projects")
    assert reply.status == EXPECTED_HTTP[code]
    assert reply.json() == {"code": int(code), "message": f"failed with {code.name}", "details": []}


def test_error_details_round_trip_in_json() -> None:
    detail = project_pb2.Project(id="p", name="P")
    fake = Fake(error=AdminError(Code.ALREADY_EXISTS, "exists", [detail]))
    reply = call(
        {ADMIN + "RegisterProject": fake},
        "POST",
        "/api/v1/projects",
        json={"project": {"id": "p"}},
        headers={"Accept": "application/json"},
    )
    assert reply.status == 409
    body = reply.json()
    assert body["code"] == Code.ALREADY_EXISTS and body["message"] == "exists"
    assert body["details"][0]["@type"] == "type.googleapis.com/flyteidl.admin.Project"
    assert body["details"][0]["id"] == "p" and body["details"][0]["name"] == "P"


def test_error_details_round_trip_in_binary() -> None:
    detail = project_pb2.Project(id="p", name="P")
    fake = Fake(error=AdminError(Code.NOT_FOUND, "project [p] not found", [detail]))
    reply = call(
        {ADMIN + "GetProject": fake}, "GET", "/api/v1/projects/p", headers={"Accept": OCTET}
    )
    assert reply.status == 404 and reply.headers["Content-Type"] == OCTET
    status = reply.status_proto()
    assert status.code == Code.NOT_FOUND and status.message == "project [p] not found"
    unpacked = project_pb2.Project()
    assert status.details[0].Unpack(unpacked) and unpacked == detail


def test_unimplemented_method_is_501() -> None:
    reply = call({}, "GET", "/me")
    assert reply.status == 501
    assert reply.json() == {
        "code": Code.UNIMPLEMENTED,
        "message": "unknown service flyteidl.service.IdentityService",
        "details": [],
    }
    reply = call({ADMIN + "ListProjects": Fake(project_pb2.Projects())}, "GET", "/api/v1/version")
    assert reply.status == 501
    assert (
        reply.json()["message"]
        == "unknown method GetVersion for service flyteidl.service.AdminService"
    )


def test_unexpected_exception_is_internal(caplog: pytest.LogCaptureFixture) -> None:
    fake = Fake(error=RuntimeError("secret detail"))
    reply = call({ADMIN + "ListProjects": fake}, "GET", "/api/v1/projects")
    assert reply.status == 500
    assert reply.json()["code"] == Code.INTERNAL and "secret" not in reply.json()["message"]
    assert "secret detail" in caplog.text  # logged with its traceback


def test_routing_errors() -> None:
    reply = call({}, "GET", "/api/v1/nothing/here")
    assert reply.status == 404 and reply.json()["code"] == Code.NOT_FOUND
    reply = call({}, "PATCH", "/api/v1/projects", headers={"Accept": "application/json"})
    assert reply.status == 405 and reply.json()["code"] == Code.UNIMPLEMENTED


# ---- Plain routes and CORS -------------------------------------------------------------------


def test_healthcheck_and_extra_routes() -> None:
    reply = call({}, "GET", "/healthcheck")
    assert reply.status == 200 and reply.body == b""

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response({"swagger": "2.0"})

    reply = call(
        {},
        "GET",
        "/api/v1/openapi",
        app_kwargs={"extra_routes": [web.get("/api/v1/openapi", openapi)]},
    )
    assert reply.status == 200 and reply.json() == {"swagger": "2.0"}


def test_cors_preflight() -> None:
    headers = {
        "Origin": "http://console.example",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-custom, content-type",
    }
    reply = call({}, "OPTIONS", "/api/v1/projects/p", headers=headers)
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == "http://console.example"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    methods = {m.strip() for m in reply.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods == {"GET", "POST", "DELETE", "HEAD", "PUT", "PATCH"}
    allowed = {h.strip().lower() for h in reply.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "flyte-authorization", "authorization", "x-custom"} <= allowed


def test_cors_echoes_exact_origin_on_responses_and_errors() -> None:
    fake = Fake(project_pb2.Projects())
    headers = {"Origin": "http://console.example"}
    for path, status in (("/api/v1/projects", 200), ("/api/v1/version", 501)):
        reply = call({ADMIN + "ListProjects": fake}, "GET", path, headers=headers)
        assert reply.status == status
        assert reply.headers["Access-Control-Allow-Origin"] == "http://console.example"
        assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    assert (
        "Access-Control-Allow-Origin"
        not in call({ADMIN + "ListProjects": fake}, "GET", "/api/v1/projects").headers
    )


def test_cors_rejects_origins_not_configured() -> None:
    app_kwargs = {"cors_origins": ["http://good.example"]}
    fake = Fake(project_pb2.Projects())
    reply = call(
        {ADMIN + "ListProjects": fake},
        "GET",
        "/api/v1/projects",
        headers={"Origin": "http://evil.example"},
        app_kwargs=app_kwargs,
    )
    assert reply.status == 200 and "Access-Control-Allow-Origin" not in reply.headers
    reply = call(
        {},
        "OPTIONS",
        "/api/v1/projects",
        app_kwargs=app_kwargs,
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert reply.status == 403 and "Access-Control-Allow-Origin" not in reply.headers
    reply = call(
        {ADMIN + "ListProjects": fake},
        "GET",
        "/api/v1/projects",
        headers={"Origin": "http://good.example"},
        app_kwargs=app_kwargs,
    )
    assert reply.headers["Access-Control-Allow-Origin"] == "http://good.example"
