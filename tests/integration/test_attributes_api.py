"""Matchable attributes end to end: flyteidl stubs, flytekit's client and HTTP -> API server ->
MatchableAttributes custom resources (§8)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from flyteidl.admin import (
    matchable_resource_pb2,
    project_attributes_pb2,
    project_domain_attributes_pb2,
    project_pb2,
    workflow_attributes_pb2,
)
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.service import admin_pb2_grpc
from flytekit.clients.friendly import SynchronousFlyteClient
from flytekit.configuration import PlatformConfig
from flytekit.models import matchable_resource as flyte_attrs
from kubernetes import client

from flyteadmin.api_server.app import ApiServer
from flyteadmin.core.config import ExecutionDefaults, Settings
from tests.integration.servers import LoopThread

MR = matchable_resource_pb2.MatchableResource
MatchingAttributes = matchable_resource_pb2.MatchingAttributes
pda = project_domain_attributes_pb2
pa = project_attributes_pb2
wa = workflow_attributes_pb2
INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
DEV = "development"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Application defaults that show up in project-level WORKFLOW_EXECUTION_CONFIG."""
    return dataclasses.replace(
        settings,
        executions=ExecutionDefaults(
            k8s_service_account="default-sa",
            raw_output_prefix="s3://raw",
            labels={"team": "platform"},
            annotations={"note": "x"},
            envs={"NOT_SHOWN": "1"},
        ),
    )


@pytest.fixture
def stub(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        for pid in ("alpha", "beta"):
            stub.RegisterProject(
                project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=pid, name=pid))
            )
        stub.UpdateProject(project_pb2.Project(id="beta", state=project_pb2.Project.ARCHIVED))
        yield stub


@pytest.fixture
def flyte_client(api_server, stub) -> SynchronousFlyteClient:
    return SynchronousFlyteClient(
        PlatformConfig(endpoint=f"127.0.0.1:{api_server.grpc_port}", insecure=True)
    )


def stored_rows(kube_api, namespace) -> dict[str, dict]:
    items = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "matchableattributes"
    )["items"]
    return {i["metadata"]["name"]: i["spec"] for i in items}


def label(value: str) -> MatchingAttributes:
    return MatchingAttributes(
        execution_cluster_label=matchable_resource_pb2.ExecutionClusterLabel(value=value)
    )


def overrides(*task_types: str) -> MatchingAttributes:
    return MatchingAttributes(
        plugin_overrides=matchable_resource_pb2.PluginOverrides(
            overrides=[
                matchable_resource_pb2.PluginOverride(task_type=t, plugin_id=[f"{t}-plugin"])
                for t in task_types
            ]
        )
    )


def set_project(stub, project: str, attributes: MatchingAttributes) -> None:
    stub.UpdateProjectAttributes(
        pa.ProjectAttributesUpdateRequest(
            attributes=pa.ProjectAttributes(project=project, matching_attributes=attributes)
        )
    )


def set_domain(stub, project: str, domain: str, attributes: MatchingAttributes) -> None:
    stub.UpdateProjectDomainAttributes(
        pda.ProjectDomainAttributesUpdateRequest(
            attributes=pda.ProjectDomainAttributes(
                project=project, domain=domain, matching_attributes=attributes
            )
        )
    )


def set_workflow(stub, project, domain, workflow, attributes: MatchingAttributes) -> None:
    stub.UpdateWorkflowAttributes(
        wa.WorkflowAttributesUpdateRequest(
            attributes=wa.WorkflowAttributes(
                project=project, domain=domain, workflow=workflow, matching_attributes=attributes
            )
        )
    )


def get_domain(stub, domain: str = DEV, rt: int = MR.EXECUTION_CLUSTER_LABEL):
    return stub.GetProjectDomainAttributes(
        pda.ProjectDomainAttributesGetRequest(project="alpha", domain=domain, resource_type=rt)
    ).attributes


def get_workflow(stub, workflow: str = "wf", rt: int = MR.EXECUTION_CLUSTER_LABEL):
    return stub.GetWorkflowAttributes(
        wa.WorkflowAttributesGetRequest(
            project="alpha", domain=DEV, workflow=workflow, resource_type=rt
        )
    ).attributes


def task_types(attributes: MatchingAttributes) -> list[str]:
    return sorted(o.task_type for o in attributes.plugin_overrides.overrides)


# ---- clients -----------------------------------------------------------------------------------


def test_flytekit_client_sets_and_reads_project_domain_and_workflow_attributes(flyte_client):
    flyte_client.update_project_domain_attributes(
        "alpha",
        DEV,
        flyte_attrs.MatchingAttributes(
            execution_queue_attributes=flyte_attrs.ExecutionQueueAttributes(["gpu", "big"])
        ),
    )
    flyte_client.update_workflow_attributes(
        "alpha",
        DEV,
        "my_module.my_wf",
        flyte_attrs.MatchingAttributes(
            plugin_overrides=flyte_attrs.PluginOverrides(
                [flyte_attrs.PluginOverride("spark", ["spark-v2"], 0)]
            )
        ),
    )
    got = flyte_client.get_project_domain_attributes("alpha", DEV, MR.EXECUTION_QUEUE).attributes
    assert (got.project, got.domain) == ("alpha", DEV)
    assert list(got.matching_attributes.execution_queue_attributes.tags) == ["gpu", "big"]
    got = flyte_client.get_workflow_attributes(
        "alpha", DEV, "my_module.my_wf", MR.PLUGIN_OVERRIDE
    ).attributes
    assert (got.workflow, task_types(got.matching_attributes)) == ("my_module.my_wf", ["spark"])
    # The workflow's EXECUTION_QUEUE falls back to the project-domain row (quirk kept).
    got = flyte_client.get_workflow_attributes("alpha", DEV, "my_module.my_wf", MR.EXECUTION_QUEUE)
    assert (got.attributes.domain, got.attributes.workflow) == (DEV, "")
    listed = flyte_client.list_matchable_attributes(MR.EXECUTION_QUEUE).configurations
    assert [
        (c.project, c.domain, list(c.attributes.execution_queue_attributes.tags)) for c in listed
    ] == [("alpha", DEV, ["gpu", "big"])]


def test_rows_are_readable_custom_resources(stub, kube_api, namespace):
    set_workflow(stub, "alpha", DEV, "my_module.my_wf", overrides("spark"))
    (spec,) = stored_rows(kube_api, namespace).values()
    assert spec == {
        "resourceType": "PLUGIN_OVERRIDE",
        "project": "alpha",
        "domain": DEV,
        "workflow": "my_module.my_wf",
        "launchPlan": "",
        "attributes": {
            "plugin_overrides": {
                "overrides": [{"task_type": "spark", "plugin_id": ["spark-plugin"]}]
            }
        },
    }


def test_http_gateway_serves_the_attribute_routes(api_server, stub):
    status, _ = http(
        api_server,
        "PUT",
        "/api/v1/project_domain_attributes/alpha/development",
        {"attributes": {"matching_attributes": {"execution_queue_attributes": {"tags": ["q"]}}}},
    )
    assert status == 200
    got = get_domain(stub, rt=MR.EXECUTION_QUEUE).matching_attributes
    assert list(got.execution_queue_attributes.tags) == ["q"]

    path = "/api/v1/project_domain_attributes/alpha/development?resource_type=EXECUTION_QUEUE"
    status, body = http(api_server, "GET", path)
    assert status == 200
    assert body["attributes"]["matching_attributes"]["execution_queue_attributes"]["tags"] == ["q"]

    status, body = http(api_server, "GET", "/api/v1/project_attributes/alpha?resource_type=6")
    config = body["attributes"]["matching_attributes"]["workflow_execution_config"]
    assert (status, config["max_parallelism"], config["labels"]) == (
        200,
        25,
        {"values": {"team": "platform"}},
    )

    status, body = http(
        api_server,
        "GET",
        "/api/v1/workflow_attributes/alpha/development/wf?resource_type=CLUSTER_RESOURCE",
    )
    assert status == 404
    assert body["message"] == (
        "Resource [{Project:alpha Domain:development Workflow:wf LaunchPlan: "
        "ResourceType:CLUSTER_RESOURCE}] not found"
    )

    status, _ = http(
        api_server,
        "DELETE",
        "/api/v1/project_domain_attributes/alpha/development",
        {"resource_type": "EXECUTION_QUEUE"},
    )
    assert status == 200
    status, body = http(api_server, "GET", "/api/v1/matchable_attributes?resource_type=2")
    assert (status, body.get("configurations", [])) == (200, [])


# ---- resolution, levels and the quirk decisions -------------------------------------------------


def test_gets_fall_back_to_less_specific_levels(stub):
    """Quirk kept (docs/decisions.md): Get*Attributes return the most specific row, whose own
    domain/workflow fields tell the level it came from."""
    set_project(stub, "alpha", label("project"))
    for got in (get_domain(stub), get_workflow(stub)):
        assert (got.project, got.domain, got.matching_attributes) == ("alpha", "", label("project"))

    set_domain(stub, "alpha", DEV, label("domain"))
    set_workflow(stub, "alpha", DEV, "wf", label("workflow"))
    assert get_domain(stub).matching_attributes == label("domain")
    got = get_workflow(stub)
    assert (got.domain, got.workflow, got.matching_attributes) == (DEV, "wf", label("workflow"))
    assert get_workflow(stub, "other").matching_attributes == label("domain")
    assert get_domain(stub, "staging").matching_attributes == label("project")

    stub.DeleteWorkflowAttributes(
        wa.WorkflowAttributesDeleteRequest(
            project="alpha", domain=DEV, workflow="wf", resource_type=MR.EXECUTION_CLUSTER_LABEL
        )
    )
    assert get_workflow(stub).matching_attributes == label("domain")
    stub.DeleteProjectDomainAttributes(
        pda.ProjectDomainAttributesDeleteRequest(
            project="alpha", domain=DEV, resource_type=MR.EXECUTION_CLUSTER_LABEL
        )
    )
    assert get_workflow(stub).matching_attributes == label("project")


def test_deletes_remove_only_their_exact_row_and_absent_rows_are_fine(stub, kube_api, namespace):
    set_project(stub, "alpha", label("project"))
    set_domain(stub, "alpha", DEV, label("domain"))
    set_workflow(stub, "alpha", DEV, "wf", label("workflow"))
    set_project(stub, "alpha", overrides("spark"))  # another type at the same level
    for _ in range(2):  # the second time nothing is there: still OK
        stub.DeleteProjectAttributes(
            pa.ProjectAttributesDeleteRequest(
                project="alpha", resource_type=MR.EXECUTION_CLUSTER_LABEL
            )
        )
    left = sorted(
        (s["resourceType"], s["domain"], s["workflow"])
        for s in stored_rows(kube_api, namespace).values()
    )
    assert left == [
        ("EXECUTION_CLUSTER_LABEL", DEV, ""),
        ("EXECUTION_CLUSTER_LABEL", DEV, "wf"),
        ("PLUGIN_OVERRIDE", "", ""),
    ]
    stub.DeleteProjectDomainAttributes(
        pda.ProjectDomainAttributesDeleteRequest(
            project="alpha", domain="staging", resource_type=MR.TASK_RESOURCE
        )
    )
    assert len(stored_rows(kube_api, namespace)) == 3


def test_updates_replace_except_plugin_overrides_which_merge_at_every_level(stub):
    set_domain(stub, "alpha", DEV, label("one"))
    set_domain(stub, "alpha", DEV, label("two"))
    assert get_domain(stub).matching_attributes == label("two")

    set_domain(stub, "alpha", DEV, overrides("spark", "ray"))
    set_domain(stub, "alpha", DEV, overrides("mpi"))
    replaced = overrides("spark")
    replaced.plugin_overrides.overrides[0].plugin_id[:] = ["spark-v3"]
    set_domain(stub, "alpha", DEV, replaced)
    got = get_domain(stub, rt=MR.PLUGIN_OVERRIDE).matching_attributes
    assert [(o.task_type, list(o.plugin_id)) for o in got.plugin_overrides.overrides] == [
        ("spark", ["spark-v3"]),
        ("ray", ["ray-plugin"]),
        ("mpi", ["mpi-plugin"]),
    ]

    # Quirk fixed: flyteadmin fails a project-level PLUGIN_OVERRIDE update; here it merges.
    set_project(stub, "alpha", overrides("spark"))
    set_project(stub, "alpha", overrides("ray"))
    got = stub.GetProjectAttributes(
        pa.ProjectAttributesGetRequest(project="alpha", resource_type=MR.PLUGIN_OVERRIDE)
    )
    assert task_types(got.attributes.matching_attributes) == ["ray", "spark"]

    set_workflow(stub, "alpha", DEV, "wf", overrides("a"))
    set_workflow(stub, "alpha", DEV, "wf", overrides("b"))
    assert task_types(get_workflow(stub, rt=MR.PLUGIN_OVERRIDE).matching_attributes) == ["a", "b"]


def test_project_level_workflow_execution_config_is_completed_by_application_defaults(stub):
    def get(project: str = "alpha"):
        response = stub.GetProjectAttributes(
            pa.ProjectAttributesGetRequest(
                project=project, resource_type=MR.WORKFLOW_EXECUTION_CONFIG
            )
        )
        assert response.attributes.project == project
        return response.attributes.matching_attributes.workflow_execution_config

    defaults = get()
    assert (defaults.max_parallelism, defaults.overwrite_cache) == (25, False)
    assert not defaults.HasField("interruptible") and not defaults.HasField("envs")
    assert defaults.security_context.run_as.k8s_service_account == "default-sa"
    assert defaults.raw_output_data_config.output_location_prefix == "s3://raw"
    assert (dict(defaults.labels.values), dict(defaults.annotations.values)) == (
        {"team": "platform"},
        {"note": "x"},
    )
    assert get("beta") == defaults  # any state may be read

    set_project(
        stub,
        "alpha",
        MatchingAttributes(
            workflow_execution_config=matchable_resource_pb2.WorkflowExecutionConfig(
                max_parallelism=7, labels={"values": {"team": "ml"}}
            )
        ),
    )
    merged = get()
    assert (merged.max_parallelism, dict(merged.labels.values)) == (7, {"team": "ml"})
    assert merged.security_context.run_as.k8s_service_account == "default-sa"
    # Project-domain gets see the stored row itself, without the defaults.
    got = get_domain(stub, rt=MR.WORKFLOW_EXECUTION_CONFIG).matching_attributes
    assert not got.workflow_execution_config.HasField("security_context")


def test_launch_plan_rows_are_resolved_for_other_services(api_server, stub, kube_api, namespace):
    """No RPC writes the launch-plan level; a row made with the Kubernetes API is used by
    ``effective`` (what executions call) and ignored by the workflow-level Get."""
    set_workflow(stub, "alpha", DEV, "wf", label("workflow"))
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "flyteadmin.io",
        "v1alpha1",
        namespace,
        "matchableattributes",
        {
            "apiVersion": "flyteadmin.io/v1alpha1",
            "kind": "MatchableAttributes",
            "metadata": {"name": "by-hand"},
            "spec": {
                "resourceType": "EXECUTION_CLUSTER_LABEL",
                "project": "alpha",
                "domain": DEV,
                "workflow": "wf",
                "launchPlan": "lp",
                "attributes": {"execution_cluster_label": {"value": "launch plan"}},
            },
        },
    )
    attributes = api_server.backend.attributes
    deadline = time.monotonic() + 10
    while attributes.effective(MR.EXECUTION_CLUSTER_LABEL, "alpha", DEV, "wf", "lp") != label(
        "launch plan"
    ):
        assert time.monotonic() < deadline, "the watch never delivered the row"
        time.sleep(0.05)
    assert attributes.effective(MR.EXECUTION_CLUSTER_LABEL, "alpha", DEV, "wf") == label("workflow")
    assert attributes.effective(MR.EXECUTION_CLUSTER_LABEL, "alpha", DEV, "wf", "lp2") == label(
        "workflow"
    )
    assert attributes.effective(MR.EXECUTION_CLUSTER_LABEL, "alpha", "") is None
    assert get_workflow(stub).matching_attributes == label("workflow")


def test_list_returns_every_row_of_the_type_most_specific_first(stub):
    set_project(stub, "alpha", label("project"))
    set_workflow(stub, "alpha", DEV, "wf", label("workflow"))
    set_domain(stub, "alpha", "staging", label("domain"))
    set_domain(stub, "alpha", DEV, overrides("x"))  # another type
    set_domain(stub, "alpha", DEV, MatchingAttributes(task_resource_attributes={}))
    listed = stub.ListMatchableAttributes(
        matchable_resource_pb2.ListMatchableAttributesRequest(
            resource_type=MR.EXECUTION_CLUSTER_LABEL
        )
    ).configurations
    assert [(c.domain, c.workflow, c.attributes.execution_cluster_label.value) for c in listed] == [
        (DEV, "wf", "workflow"),
        ("staging", "", "domain"),
        ("", "", "project"),
    ]
    default = stub.ListMatchableAttributes(matchable_resource_pb2.ListMatchableAttributesRequest())
    assert [(c.domain, c.attributes.WhichOneof("target")) for c in default.configurations] == [
        (DEV, "task_resource_attributes")  # resource_type 0 is TASK_RESOURCE
    ]


# ---- concurrency ---------------------------------------------------------------------------------


def test_concurrent_plugin_override_updates_on_two_replicas_lose_no_task_type(
    api_server, stub, settings, kube_api, namespace
):
    async def start_second() -> ApiServer:
        server = ApiServer(settings)  # a second replica: its own caches, same store
        await server.start()
        return server

    loop = LoopThread()
    second = loop.call(start_second())
    try:
        ports = [api_server.grpc_port, second.grpc_port]
        channels = [grpc.insecure_channel(f"127.0.0.1:{p}") for p in ports]
        stubs = [admin_pb2_grpc.AdminServiceStub(c) for c in channels]
        writers = 12
        barrier = threading.Barrier(writers)

        def write(i: int) -> None:
            barrier.wait()
            set_domain(stubs[i % 2], "alpha", DEV, overrides(f"type-{i}"))

        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(write, range(writers)))
        for channel in channels:
            channel.close()
    finally:
        loop.call(second.stop())
        loop.close()
    expected = sorted(f"type-{i}" for i in range(writers))
    (spec,) = stored_rows(kube_api, namespace).values()
    stored = spec["attributes"]["plugin_overrides"]["overrides"]
    assert sorted(o["task_type"] for o in stored) == expected
    deadline = time.monotonic() + 10  # the first replica's watch catches up with the second's
    while task_types(get_domain(stub, rt=MR.PLUGIN_OVERRIDE).matching_attributes) != expected:
        assert time.monotonic() < deadline
        time.sleep(0.05)


# ---- bad input ---------------------------------------------------------------------------------

QOS = MatchingAttributes(quality_of_service=core_execution_pb2.QualityOfService(tier=1))
X = label("x")


def pd_update(project="alpha", domain=DEV, attributes: MatchingAttributes | None = X):
    a = pda.ProjectDomainAttributes(project=project, domain=domain)
    if attributes is not None:
        a.matching_attributes.CopyFrom(attributes)
    return pda.ProjectDomainAttributesUpdateRequest(attributes=a)


def p_update(project="alpha", attributes: MatchingAttributes | None = X):
    a = pa.ProjectAttributes(project=project)
    if attributes is not None:
        a.matching_attributes.CopyFrom(attributes)
    return pa.ProjectAttributesUpdateRequest(attributes=a)


def wf_update(project="alpha", workflow="wf", attributes: MatchingAttributes = X):
    return wa.WorkflowAttributesUpdateRequest(
        attributes=wa.WorkflowAttributes(
            project=project, domain=DEV, workflow=workflow, matching_attributes=attributes
        )
    )


def nf(domain: str, workflow: str, rt: str) -> str:
    return (
        f"Resource [{{Project:alpha Domain:{domain} Workflow:{workflow} LaunchPlan: "
        f"ResourceType:{rt}}}] not found"
    )


def nope(what: str) -> str:
    return f"failed to validate that project [nope] {what}, err: [project [nope] not found]"


PD_NOPE = nope("and domain [development] are registered")
UNRECOGNIZED = "Unrecognized matching attributes type for request alpha"
BETA = "project [beta] is not active"
QA = "domain [qa] is unrecognized by system"
BAD_TYPE = "invalid value for resource_type: {} is not a value of flyteidl.admin.MatchableResource"
UPD_PD, GET_PD, DEL_PD = (f"{v}ProjectDomainAttributes" for v in ("Update", "Get", "Delete"))
UPD_P, GET_P, DEL_P = (f"{v}ProjectAttributes" for v in ("Update", "Get", "Delete"))
UPD_WF, GET_WF, DEL_WF = (f"{v}WorkflowAttributes" for v in ("Update", "Get", "Delete"))
BAD_CALLS = [
    (UPD_PD, pda.ProjectDomainAttributesUpdateRequest(), INVALID, "missing attributes"),
    (UPD_PD, pd_update("nope"), INVALID, PD_NOPE),
    (UPD_PD, pd_update("beta"), INVALID, BETA),
    (UPD_PD, pd_update(domain="qa"), INVALID, QA),
    (UPD_PD, pd_update(attributes=None), INVALID, "missing matching_attributes"),
    (UPD_PD, pd_update(attributes=QOS), INVALID, f"{UNRECOGNIZED}-development"),
    (UPD_PD, pd_update(attributes=MatchingAttributes()), INVALID, f"{UNRECOGNIZED}-development"),
    (UPD_P, pa.ProjectAttributesUpdateRequest(), INVALID, "missing attributes"),
    (UPD_P, p_update("nope"), INVALID, nope("is registered")),
    (UPD_P, p_update("beta"), INVALID, BETA),
    (UPD_P, p_update(attributes=QOS), INVALID, UNRECOGNIZED),
    (UPD_WF, wa.WorkflowAttributesUpdateRequest(), INVALID, "missing attributes"),
    (UPD_WF, wf_update(workflow=""), INVALID, "missing name"),
    (UPD_WF, wf_update("nope"), INVALID, PD_NOPE),
    (UPD_WF, wf_update(attributes=QOS), INVALID, f"{UNRECOGNIZED}-development-wf"),
    (
        GET_PD,
        pda.ProjectDomainAttributesGetRequest(project="alpha", domain="staging", resource_type=1),
        NOT_FOUND,
        nf("staging", "", "CLUSTER_RESOURCE"),
    ),
    (GET_PD, pda.ProjectDomainAttributesGetRequest(project="nope", domain=DEV), INVALID, PD_NOPE),
    (
        GET_PD,
        pda.ProjectDomainAttributesGetRequest(project="alpha", domain=DEV, resource_type=99),
        INVALID,
        BAD_TYPE.format(99),
    ),
    (GET_P, pa.ProjectAttributesGetRequest(project="nope"), INVALID, nope("exists")),
    (
        GET_P,
        pa.ProjectAttributesGetRequest(project="alpha", resource_type=MR.EXECUTION_QUEUE),
        NOT_FOUND,
        nf("", "", "EXECUTION_QUEUE"),
    ),
    (GET_WF, wa.WorkflowAttributesGetRequest(project="alpha", domain=DEV), INVALID, "missing name"),
    (
        GET_WF,
        wa.WorkflowAttributesGetRequest(project="alpha", domain=DEV, workflow="wf"),
        NOT_FOUND,
        nf(DEV, "wf", "TASK_RESOURCE"),
    ),
    (DEL_PD, pda.ProjectDomainAttributesDeleteRequest(project="alpha", domain="qa"), INVALID, QA),
    (
        DEL_PD,
        pda.ProjectDomainAttributesDeleteRequest(project="alpha", domain=DEV, resource_type=8),
        INVALID,
        BAD_TYPE.format(8),
    ),
    (DEL_P, pa.ProjectAttributesDeleteRequest(project="beta"), INVALID, BETA),
    (DEL_P, pa.ProjectAttributesDeleteRequest(project="nope"), INVALID, nope("is registered")),
    (
        DEL_WF,
        wa.WorkflowAttributesDeleteRequest(project="alpha", domain=DEV),
        INVALID,
        "missing name",
    ),
    (
        DEL_WF,
        wa.WorkflowAttributesDeleteRequest(project="beta", domain=DEV, workflow="wf"),
        INVALID,
        BETA,
    ),
    (
        "ListMatchableAttributes",
        matchable_resource_pb2.ListMatchableAttributesRequest(resource_type=99),
        INVALID,
        BAD_TYPE.format(99),
    ),
]


@pytest.mark.parametrize(
    "method, request_, code, message",
    BAD_CALLS,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_CALLS)],
)
def test_bad_calls_get_clear_codes_and_change_nothing(
    stub, kube_api, namespace, method, request_, code, message
):
    # One row at each level of the types the bad calls name, so a wrong write or delete shows.
    set_project(stub, "alpha", label("project"))
    set_domain(stub, "alpha", DEV, label("domain"))
    set_workflow(stub, "alpha", DEV, "wf", label("workflow"))
    before = stored_rows(kube_api, namespace)
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(request_)
    assert (info.value.code(), info.value.details()) == (code, message)
    assert stored_rows(kube_api, namespace) == before


def test_project_level_writes_need_an_active_project_but_reads_do_not(stub):
    with pytest.raises(grpc.RpcError) as info:
        set_project(stub, "beta", label("x"))
    assert info.value.code() == INVALID
    got = stub.GetProjectAttributes(
        pa.ProjectAttributesGetRequest(project="beta", resource_type=MR.WORKFLOW_EXECUTION_CONFIG)
    )
    assert got.attributes.matching_attributes.workflow_execution_config.max_parallelism == 25


# ---- HTTP helper --------------------------------------------------------------------------------


def http(api_server, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_server.http_port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Accept": "application/json", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
