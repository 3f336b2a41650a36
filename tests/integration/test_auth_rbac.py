"""Per-project authorization through Kubernetes RBAC on the real control plane: a caller bound by
a RoleBinding to one project's namespace registers and runs there, and is refused (403 /
PERMISSION_DENIED naming project and verb) in another; groups come from a token claim."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import grpc
import jwt
import pytest
import yaml
from flyteidl.admin import execution_pb2, project_pb2
from flyteidl.core import identifier_pb2
from flyteidl.service import admin_pb2_grpc
from kubernetes import client

from flyteadmin.core.auth.client_secrets import hash_secret
from flyteadmin.core.auth.keys import SigningKey, generate_pem
from flyteadmin.core.config import AuthSettings, ServerSettings, Settings
from flyteadmin.devstack.processes import free_ports
from tests.integration.conftest import running_api_server
from tests.integration.registration_helpers import chain_workflow, launch_plan_request, task_request
from tests.integration.test_auth_api import basic, http

DOMAIN = "development"
RUNNER_RULES = [
    {
        "apiGroups": ["flyteadmin.io"],
        "resources": ["tasks", "workflows", "launchplans", "executions", "namedentities"],
        "verbs": ["get", "list", "create", "update"],
    }
]


def _for_project(request, project: str):
    """A registration request moved to ``project``/development."""
    request.id.project, request.id.domain = project, DOMAIN
    spec = getattr(request, "spec", None)
    template = getattr(spec, "template", None)
    if template is not None and template.HasField("id"):
        template.id.project, template.id.domain = project, DOMAIN
    if request.DESCRIPTOR.name == "WorkflowCreateRequest":
        for node in template.nodes:
            if node.HasField("task_node"):
                node.task_node.reference_id.project = project
                node.task_node.reference_id.domain = DOMAIN
    if request.DESCRIPTOR.name == "LaunchPlanCreateRequest":
        spec.workflow_id.project, spec.workflow_id.domain = project, DOMAIN
    return request


@pytest.fixture
def rbac(kube_api, unique):
    """Two projects with their development namespaces, an admin ClusterRole for the test's
    admin client, and a Role in the first project bound to `alice` and to group `team`."""
    alpha, beta = f"alpha{unique}", f"beta{unique}"
    core, authz = client.CoreV1Api(kube_api), client.RbacAuthorizationV1Api(kube_api)
    namespaces = [f"{p}-{DOMAIN}" for p in (alpha, beta)]
    for name in namespaces:
        core.create_namespace({"metadata": {"name": name}})
    cluster_name = f"flyteadmin-test-{unique}"
    authz.create_cluster_role(
        {
            "metadata": {"name": cluster_name},
            "rules": [{"apiGroups": ["flyteadmin.io"], "resources": ["*"], "verbs": ["*"]}],
        }
    )
    authz.create_cluster_role_binding(
        {
            "metadata": {"name": cluster_name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": cluster_name,
            },
            "subjects": [
                {"kind": "User", "name": "flyte:admin", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        }
    )
    ns = namespaces[0]
    authz.create_namespaced_role(ns, {"metadata": {"name": "flyte-runner"}, "rules": RUNNER_RULES})
    authz.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "flyte-runner"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "flyte-runner",
            },
            "subjects": [
                {"kind": "User", "name": "flyte:alice", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "Group", "name": "flyte:team", "apiGroup": "rbac.authorization.k8s.io"},
            ],
        },
    )
    try:
        yield alpha, beta
    finally:
        authz.delete_cluster_role_binding(cluster_name)
        authz.delete_cluster_role(cluster_name)
        for name in namespaces:
            core.delete_namespace(name)


@pytest.fixture
def server(settings: Settings, tmp_path: Path):
    directory = tmp_path / "auth"
    directory.mkdir()
    (directory / "token_rsa_key.pem").write_bytes(generate_pem())
    clients = {
        name: hash_secret(name + "-secret", iterations=1000) for name in ("admin", "alice", "eve")
    }
    (directory / "clients.yaml").write_text(yaml.safe_dump(clients))
    grpc_port, http_port = free_ports(2)
    configured = dataclasses.replace(
        settings,
        server=ServerSettings(host="127.0.0.1", grpc_port=grpc_port, http_port=http_port),
        auth=AuthSettings(
            mode="self",
            secrets_dir=str(directory),
            authorization="kubernetes",
            user_prefix="flyte:",
            group_prefix="flyte:",
        ),
    )
    with running_api_server(configured) as api_server:
        yield api_server


def token(server, name: str) -> list[tuple[str, str]]:
    status, _, body = http(
        server,
        "POST",
        "/oauth2/token",
        form={"grant_type": "client_credentials", "scope": "all"},
        headers={"Authorization": basic(name, name + "-secret")},
    )
    assert status == 200, body
    return [("flyte-authorization", "Bearer " + body["access_token"])]


def group_token(server, subject: str, groups: list[str]) -> list[tuple[str, str]]:
    """A user token carrying a groups claim, signed with the server's key (as an IdP-backed
    login would produce)."""
    key = SigningKey.from_pem(
        (Path(server.settings.auth.secrets_dir) / "token_rsa_key.pem").read_bytes()
    )
    issuer = server.auth.verifier.issuer
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": [issuer],
        "sub": subject,
        "iat": now,
        "exp": now + 600,
        "scp": ["all"],
        "groups": groups,
    }
    signed = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    return [("authorization", "Bearer " + signed)]


def register_and_run(admin, md, project: str) -> identifier_pb2.WorkflowExecutionIdentifier:
    admin.CreateTask(_for_project(task_request("t"), project), metadata=md)
    admin.CreateWorkflow(_for_project(chain_workflow("wf", "t"), project), metadata=md)
    admin.CreateLaunchPlan(_for_project(launch_plan_request("lp", "wf", x=5), project), metadata=md)
    created = admin.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=project,
            domain=DOMAIN,
            name="e1",
            spec=execution_pb2.ExecutionSpec(
                launch_plan=identifier_pb2.Identifier(
                    resource_type=identifier_pb2.LAUNCH_PLAN,
                    project=project,
                    domain=DOMAIN,
                    name="lp",
                    version="v1",
                )
            ),
        ),
        metadata=md,
    )
    return created.id


def test_a_user_bound_to_one_project_works_there_and_is_refused_elsewhere(server, rbac):
    alpha, beta = rbac
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        root = token(server, "admin")
        for project in (alpha, beta):
            admin.RegisterProject(
                project_pb2.ProjectRegisterRequest(
                    project=project_pb2.Project(id=project, name=project)
                ),
                metadata=root,
            )
        alice = token(server, "alice")
        # Registering a project is cluster-wide: alice's Role does not allow it.
        with pytest.raises(grpc.RpcError) as caught:
            admin.RegisterProject(
                project_pb2.ProjectRegisterRequest(
                    project=project_pb2.Project(id="x" + alpha, name="x")
                ),
                metadata=alice,
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

        ident = register_and_run(admin, alice, alpha)
        execution = admin.GetExecution(
            execution_pb2.WorkflowExecutionGetRequest(id=ident), metadata=alice
        )
        assert execution.spec.metadata.principal == "alice"
        # Her Role has no `delete executions`: terminating is refused even in her project.
        with pytest.raises(grpc.RpcError) as caught:
            admin.TerminateExecution(
                execution_pb2.ExecutionTerminateRequest(id=ident, cause="x"), metadata=alice
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"delete executions in project {alpha} domain {DOMAIN}" in caught.value.details()

        # The other project: refused, with the project and verb in the message.
        with pytest.raises(grpc.RpcError) as caught:
            register_and_run(admin, alice, beta)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (
            f"flyte:alice may not create tasks in project {beta} domain {DOMAIN}"
            == caught.value.details()
        )
        # The admin can, and alice cannot read it.
        other = register_and_run(admin, root, beta)
        with pytest.raises(grpc.RpcError) as caught:
            admin.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=other), metadata=alice)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

        # Another client with no binding at all is refused everywhere, alice's project too.
        with pytest.raises(grpc.RpcError) as caught:
            admin.GetExecution(
                execution_pb2.WorkflowExecutionGetRequest(id=ident), metadata=token(server, "eve")
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

        # Group membership from the token's claims: `team` is bound in alpha.
        member = group_token(server, "carol", ["team"])
        assert (
            admin.GetExecution(
                execution_pb2.WorkflowExecutionGetRequest(id=ident), metadata=member
            ).id
            == ident
        )
        outsider = group_token(server, "dave", ["other"])
        with pytest.raises(grpc.RpcError) as caught:
            admin.GetExecution(
                execution_pb2.WorkflowExecutionGetRequest(id=ident), metadata=outsider
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # The HTTP door answers the same decisions, as 403 with a google.rpc.Status body.
    alice_http = dict(token(server, "alice"))
    status, _, body = http(
        server, "GET", f"/api/v1/executions/{alpha}/{DOMAIN}/e1", headers=alice_http
    )
    assert status == 200 and body["id"]["name"] == "e1"
    status, _, body = http(
        server, "GET", f"/api/v1/executions/{beta}/{DOMAIN}/e1", headers=alice_http
    )
    assert status == 403 and body["code"] == 7
    assert f"get executions in project {beta}" in body["message"]
    # Listing projects needs no binding (names only).
    status, _, body = http(server, "GET", "/api/v1/projects", headers=alice_http)
    assert status == 200 and {alpha, beta} <= {p["id"] for p in body["projects"]}
