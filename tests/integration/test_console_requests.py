"""flyteconsole's own requests (v1.20.1, recorded by ../shared/console/run.sh in a real browser),
replayed over HTTP byte for byte: path, query string, and the headers that choose the answer's
encoding (`Accept: application/octet-stream` for entities, a browser's Accept for `/me`).
They guard issue 14's fixes without a browser."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message

import grpc
import pytest
from flyteidl.admin import (
    description_entity_pb2,
    execution_pb2,
    launch_plan_pb2,
)
from flyteidl.service import auth_pb2, auth_pb2_grpc, identity_pb2, identity_pb2_grpc
from google.rpc import status_pb2

from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    chain_workflow,
    ident,
    task_request,
)

OCTET = "application/octet-stream"  # flyteconsole's Accept for every admin entity call
BROWSER_ACCEPT = "application/json, text/plain, */*"  # axios' default: `/me`
CONSOLE_ORIGIN = "http://127.0.0.1:28090"
P, D = PROJECT, DOMAIN


def get(api_server, path_and_query: str, accept: str) -> tuple[int, str, bytes, Message]:
    """GET exactly ``path_and_query`` (no re-encoding), as the browser sent it: (status,
    content type, body, headers)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_server.http_port}{path_and_query}",
        headers={"Accept": accept, "Origin": CONSOLE_ORIGIN},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    return status, headers["Content-Type"], body, headers


def entity_filters(entity: str, name: str) -> str:
    """The filters the console's entity pages put on every list of one named entity."""
    return f"eq({entity}.name,{name})%2Beq({entity}.project,{P})%2Beq({entity}.domain,{D})"


@pytest.fixture
def documented(registered_stub):
    """Task ``t_doc`` and workflow ``wf_doc``, registered with descriptions."""
    task = task_request("t_doc")
    task.spec.description.short_description = "adds one"
    task.spec.description.long_description.value = "Adds one to x."
    registered_stub.CreateTask(task)
    workflow = chain_workflow("wf_doc", "t_doc")
    workflow.spec.description.short_description = "a chain"
    registered_stub.CreateWorkflow(workflow)
    return registered_stub


@pytest.mark.parametrize(
    ("resource_type", "entity", "name", "short"),
    [(RT.WORKFLOW, "workflow", "wf_doc", "a chain"), (RT.TASK, "task", "t_doc", "adds one")],
)
def test_entity_pages_description_with_the_resource_types_own_filters(
    api_server, documented, resource_type, entity, name, short
):
    """The workflow page and the task page ("No description found" before the fix)."""
    status, content_type, body, _ = get(
        api_server,
        f"/api/v1/description_entities/{resource_type}/{P}/{D}/{name}"
        f"?filters={entity_filters(entity, name)}"
        "&token=&limit=1&sort_by.direction=DESCENDING&sort_by.key=created_at",
        OCTET,
    )
    assert (status, content_type) == (200, OCTET), body
    listed = description_entity_pb2.DescriptionEntityList.FromString(body)
    assert [(d.id.name, d.id.version, d.short_description) for d in listed.descriptionEntities] == [
        (name, "v1", short)
    ]


def test_description_filters_name_no_other_entity(api_server, documented):
    """As flyteadmin: only the listed resource type's entity (and plain columns) may be named."""
    status, _, body, _ = get(
        api_server,
        f"/api/v1/description_entities/{RT.WORKFLOW}/{P}/{D}/wf_doc?filters="
        f"{entity_filters('task', 'wf_doc')}&limit=1",
        OCTET,
    )
    answer = status_pb2.Status.FromString(body)
    assert (status, answer.message) == (400, "'task' entity is not allowed in filters")
    status, _, body, _ = get(
        api_server,
        f"/api/v1/description_entities/{RT.TASK}/{P}/{D}/t_doc?filters=eq(version,v2)&limit=1",
        OCTET,
    )
    assert status == 200
    assert not description_entity_pb2.DescriptionEntityList.FromString(body).descriptionEntities


def test_me_with_authentication_off_is_the_anonymous_local_user(api_server):
    status, content_type, body, headers = get(api_server, "/me", BROWSER_ACCEPT)
    assert (status, content_type) == (200, "application/json")
    assert headers["Access-Control-Allow-Origin"] == CONSOLE_ORIGIN  # the console's own origin
    # The wildcard marshaler's lowerCamelCase; the console camel-cases the keys anyway.
    assert json.loads(body) == {
        "subject": "anonymous",
        "name": "Anonymous",
        "preferredUsername": "anonymous",
        "givenName": "",
        "familyName": "",
        "email": "",
        "picture": "",
        "additionalClaims": {
            "sub": "anonymous",
            "name": "Anonymous",
            "preferred_username": "anonymous",
        },
    }
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        info = identity_pb2_grpc.IdentityServiceStub(channel).UserInfo(
            identity_pb2.UserInfoRequest()
        )
        assert (info.subject, info.name) == ("anonymous", "Anonymous")
        # The auth metadata stays unserved, as in flyteadmin: nothing asks for a token.
        with pytest.raises(grpc.RpcError) as error:
            auth_pb2_grpc.AuthMetadataServiceStub(channel).GetPublicClientConfig(
                auth_pb2.PublicClientAuthConfigRequest()
            )
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_only_my_executions_finds_what_the_anonymous_user_started(api_server, registered_stub):
    """The console's "Only my executions" adds eq(user,<subject of /me>)."""
    spec = execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "lp"))
    request = execution_pb2.ExecutionCreateRequest(project=P, domain=D, spec=spec)
    created = registered_stub.CreateExecution(request).id
    status, _, body, _ = get(
        api_server,
        f"/api/v1/executions/{P}/{D}?filters=eq(user,anonymous)"
        "&limit=100&sort_by.direction=DESCENDING&sort_by.key=created_at",
        OCTET,
    )
    assert status == 200
    listed = execution_pb2.ExecutionList.FromString(body)
    assert [e.id.name for e in listed.executions] == [created.name]
    assert listed.executions[0].spec.metadata.principal == "anonymous"
    _, _, body, _ = get(
        api_server,
        f"/api/v1/executions/{P}/{D}?filters=eq(user,someone-else)&limit=100",
        OCTET,
    )
    assert not execution_pb2.ExecutionList.FromString(body).executions


def test_launch_plan_page_gets_its_default_inputs_as_literals(api_server, registered_stub):
    """The launch plan page's "Expected Inputs" show the word "scalar": flyteconsole prints the
    name of the set `Literal.value` oneof member of the protobuf it decodes (EntityInputs.tsx,
    `parameter.default?.value`). The answer itself carries the literal, as flyteadmin's does."""
    path = (
        f"/api/v1/launch_plans/{P}/{D}/lp?filters={entity_filters('launch_plan', 'lp')}"
        "&token=&limit=5&sort_by.direction=DESCENDING&sort_by.key=created_at"
    )
    status, _, body, _ = get(api_server, path, OCTET)
    assert status == 200
    (plan,) = launch_plan_pb2.LaunchPlanList.FromString(body).launch_plans
    default = plan.closure.expected_inputs.parameters["x"].default
    assert default.WhichOneof("value") == "scalar" and default.scalar.primitive.integer == 5
    # The same list as JSON (flyteadmin's application/json marshaler): int64 as a string,
    # every field present, unset messages as null.
    status, content_type, body, _ = get(api_server, path, "application/json")
    assert (status, content_type) == (200, "application/json")
    parameter = json.loads(body)["launch_plans"][0]["closure"]["expected_inputs"]["parameters"]["x"]
    assert parameter["default"]["scalar"]["primitive"] == {"integer": "5"}
    assert "blob" not in parameter["default"]["scalar"]  # unset oneof members: absent
    assert parameter["var"]["type"]["metadata"] is None
