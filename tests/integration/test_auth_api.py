"""Authentication on a running API server in `self` mode, through both doors: the anonymous
metadata RPCs and routes, the token endpoint, `/me`, the principal recorded in executions, and
every bad-token case against a sample of RPCs over gRPC and HTTP (UNAUTHENTICATED / 401, and
nothing written)."""

from __future__ import annotations

import base64
import dataclasses
import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote_plus, urlencode

import grpc
import pytest
import yaml
from flyteidl.admin import execution_pb2, project_pb2, signal_pb2, version_pb2
from flyteidl.core import identifier_pb2
from flyteidl.service import (
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    dataproxy_pb2,
    identity_pb2,
    identity_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kubernetes import client

from flyteadmin.core import crds
from flyteadmin.core.auth.client_secrets import hash_secret
from flyteadmin.core.auth.keys import SigningKey, generate_pem
from flyteadmin.core.config import AuthSettings, ServerSettings, Settings
from flyteadmin.devstack.processes import free_ports
from tests.integration.conftest import running_api_server
from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    chain_workflow,
    launch_plan_request,
    task_request,
)
from tests.unit.test_auth_tokens import bad_tokens

CLIENT, SECRET = "ci-client", "s3cr3t/+= x"


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "auth"
    directory.mkdir()
    (directory / "token_rsa_key.pem").write_bytes(generate_pem())
    (directory / "clients.yaml").write_text(
        yaml.safe_dump({CLIENT: hash_secret(SECRET, iterations=1000)})
    )
    return directory


def self_auth(settings: Settings, auth_dir: Path, **auth) -> Settings:
    grpc_port, http_port = free_ports(2)  # fixed ports: the metadata names the token endpoint
    return dataclasses.replace(
        settings,
        server=ServerSettings(host="127.0.0.1", grpc_port=grpc_port, http_port=http_port),
        auth=AuthSettings(mode="self", secrets_dir=str(auth_dir), **auth),
    )


@pytest.fixture
def server(settings: Settings, auth_dir: Path):
    with running_api_server(self_auth(settings, auth_dir)) as api_server:
        yield api_server


def http(server, method: str, path: str, body=None, headers=None, form=None):
    """(status, headers, parsed JSON body) of one HTTP call."""
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if form is not None:
        data = urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    all_headers.update(headers or {})
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}{path}", data=data, method=method, headers=all_headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, response.headers, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, error.headers, json.loads(raw) if raw else {}


def basic(client_id: str, secret: str) -> str:
    # As flytekit builds it: the secret URL-encoded, then base64 (clients.md §3.3).
    raw = f"{client_id}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def get_token(server, secret: str = SECRET) -> tuple[int, dict]:
    status, _, body = http(
        server,
        "POST",
        "/oauth2/token",
        form={"grant_type": "client_credentials", "scope": "all"},
        headers={"Authorization": basic(CLIENT, secret), "Accept": "application/json"},
    )
    return status, body


def server_bad_tokens(server) -> dict[str, str | None]:
    """The bad-token cases, made with the server's own key, issuer and audience (so that each
    case has exactly one thing wrong)."""
    key_file = Path(server.settings.auth.secrets_dir) / "token_rsa_key.pem"
    issuer = server.auth.verifier.issuer
    return bad_tokens(SigningKey.from_pem(key_file.read_bytes()), issuer, issuer)


def test_metadata_is_anonymous_and_points_at_the_token_endpoint(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = auth_pb2_grpc.AuthMetadataServiceStub(channel)
        config = stub.GetPublicClientConfig(auth_pb2.PublicClientAuthConfigRequest())
        assert config.authorization_metadata_key == "flyte-authorization"
        assert list(config.scopes) == ["all"] and config.client_id == "flytectl"
        metadata = stub.GetOAuth2Metadata(auth_pb2.OAuth2MetadataRequest())
        base = f"http://127.0.0.1:{server.http_port}"
        assert metadata.token_endpoint == base + "/oauth2/token"
        assert metadata.jwks_uri == base + "/oauth2/jwks"
        assert metadata.issuer == base
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == 1  # SERVING
    for path in ("/.well-known/oauth-authorization-server", "/config/v1/flyte_client"):
        status, _, _ = http(server, "GET", path)
        assert status == 200, path
    status, _, jwks = http(server, "GET", "/oauth2/jwks")
    assert status == 200 and jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0]
    assert http(server, "GET", "/healthcheck")[0] == 200


def test_token_endpoint(server):
    status, body = get_token(server)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    status, body = get_token(server, secret="wrong")
    assert status == 401 and body["error"] == "invalid_client"
    status, _, body = http(
        server,
        "POST",
        "/oauth2/token",
        form={"grant_type": "password"},
        headers={"Authorization": basic(CLIENT, SECRET)},
    )
    assert status == 400 and body["error"] == "unsupported_grant_type"


def test_authenticated_calls_record_the_principal(server):
    _, body = get_token(server)
    token = body["access_token"]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        # Either header works; flytekit uses the one GetPublicClientConfig names.
        for header in ("flyte-authorization", "authorization"):
            md = [(header, f"Bearer {token}")]
            admin.GetVersion(version_pb2.GetVersionRequest(), metadata=md)
        md = [("flyte-authorization", f"Bearer {token}")]
        admin.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="p")),
            metadata=md,
        )
        admin.CreateTask(task_request("t"), metadata=md)
        admin.CreateWorkflow(chain_workflow("wf", "t"), metadata=md)
        admin.CreateLaunchPlan(launch_plan_request("lp", "wf", x=5), metadata=md)
        created = admin.CreateExecution(
            execution_pb2.ExecutionCreateRequest(
                project=PROJECT,
                domain=DOMAIN,
                name="e1",
                spec=execution_pb2.ExecutionSpec(
                    launch_plan=identifier_pb2.Identifier(
                        resource_type=identifier_pb2.LAUNCH_PLAN,
                        project=PROJECT,
                        domain=DOMAIN,
                        name="lp",
                        version="v1",
                    )
                ),
            ),
            metadata=md,
        )
        execution = admin.GetExecution(
            execution_pb2.WorkflowExecutionGetRequest(id=created.id), metadata=md
        )
        assert execution.spec.metadata.principal == CLIENT
        me = identity_pb2_grpc.IdentityServiceStub(channel).UserInfo(
            identity_pb2.UserInfoRequest(), metadata=md
        )
        assert me.subject == CLIENT
        assert me.additional_claims["client_id"] == CLIENT
    status, headers, body = http(server, "GET", "/me", headers={"authorization": f"Bearer {token}"})
    assert status == 200 and body["subject"] == CLIENT
    assert headers["X-User-Subject"] == CLIENT
    assert json.loads(headers["X-User-Claim-client-id"]) == CLIENT
    assert json.loads(headers["X-User-Claim-scp"]) == ["all"]
    status, _, body = http(
        server, "GET", "/api/v1/projects", headers={"flyte-authorization": f"Bearer {token}"}
    )
    assert status == 200 and [p["id"] for p in body["projects"]] == [PROJECT]


# A sample of RPCs: writes of every kind, reads, the identity and the data proxy.
EXEC_ID = identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name="x")
GRPC_SAMPLE = {
    "AdminService/RegisterProject": project_pb2.ProjectRegisterRequest(
        project=project_pb2.Project(id="bad", name="bad")
    ),
    "AdminService/CreateTask": task_request("bad"),
    "AdminService/CreateExecution": execution_pb2.ExecutionCreateRequest(
        project=PROJECT, domain=DOMAIN, name="bad"
    ),
    "AdminService/ListProjects": project_pb2.ProjectListRequest(limit=10),
    "AdminService/GetVersion": version_pb2.GetVersionRequest(),
    "DataProxyService/CreateUploadLocation": dataproxy_pb2.CreateUploadLocationRequest(
        project=PROJECT, domain=DOMAIN, filename="f"
    ),
    "IdentityService/UserInfo": identity_pb2.UserInfoRequest(),
    "SignalService/SetSignal": signal_pb2.SignalSetRequest(
        id=identifier_pb2.SignalIdentifier(signal_id="s", execution_id=EXEC_ID)
    ),
}
HTTP_SAMPLE = [
    ("POST", "/api/v1/projects", {"project": {"id": "bad", "name": "bad"}}),
    ("POST", "/api/v1/executions", {"project": PROJECT, "domain": DOMAIN, "name": "bad"}),
    ("GET", "/api/v1/projects", None),
    ("GET", "/api/v1/version", None),
    ("GET", "/me", None),
    ("GET", "/api/v1/no-such-route", None),
]


def test_every_bad_token_is_refused_at_both_doors_and_nothing_is_written(
    server, kube_api, namespace
):
    cases = server_bad_tokens(server)
    refused = 0
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        for case, header in cases.items():
            for header_name in ("flyte-authorization", "authorization"):
                md = [] if header is None else [(header_name, header)]
                for method, request in GRPC_SAMPLE.items():
                    call = channel.unary_unary(
                        f"/flyteidl.service.{method}",
                        request_serializer=type(request).SerializeToString,
                        response_deserializer=lambda b: b,
                    )
                    with pytest.raises(grpc.RpcError) as caught:
                        call(request, metadata=md, timeout=10)
                    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, (case, method)
                    refused += 1
                for verb, path, body in HTTP_SAMPLE:
                    headers = {} if header is None else {header_name: header}
                    status, response_headers, error = http(server, verb, path, body, headers)
                    assert status == 401, (case, verb, path, status, error)
                    assert error["code"] == 16 and error["message"], (case, path)
                    assert response_headers["WWW-Authenticate"] == "Bearer"
                    refused += 1
    assert refused == len(cases) * 2 * (len(GRPC_SAMPLE) + len(HTTP_SAMPLE))
    custom = client.CustomObjectsApi(kube_api)
    for kind in crds.KINDS:
        found = custom.list_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural
        )
        assert found["items"] == [], kind.plural


def test_expired_token_then_a_fresh_one(server):
    """What flytekit does on UNAUTHENTICATED: fetch a token and send the call again."""
    _, body = get_token(server)
    expired = server_bad_tokens(server)["expired"]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            admin.GetVersion(version_pb2.GetVersionRequest(), metadata=[("authorization", expired)])
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "expired" in caught.value.details()
        md = [("authorization", f"Bearer {body['access_token']}")]
        assert admin.GetVersion(version_pb2.GetVersionRequest(), metadata=md).control_plane_version


def test_auth_off_keeps_the_rpcs_unimplemented_and_calls_anonymous(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as caught:
            auth_pb2_grpc.AuthMetadataServiceStub(channel).GetPublicClientConfig(
                auth_pb2.PublicClientAuthConfigRequest()
            )
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "authentication is off" in caught.value.details()
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        assert admin.GetVersion(version_pb2.GetVersionRequest()).control_plane_version
