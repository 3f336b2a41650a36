"""Large task templates (issue 12 §2): flyteadmin stores a task of any size its gRPC limit lets
in; here a closure above ``storage.inline_threshold_bytes`` goes to the blob store, exactly as
workflow closures do, and only what exceeds ``server.max_message_bytes`` is refused, with the
limit in the message and nothing stored."""

from __future__ import annotations

import dataclasses
import json

import grpc
import pytest
import requests
from flyteidl.admin import common_pb2, execution_pb2, project_pb2
from flyteidl.core import literals_pb2
from flyteidl.service import admin_pb2_grpc
from google.protobuf import json_format
from kubernetes import client

from tests.integration.conftest import running_api_server
from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    chain_workflow,
    ident,
    launch_plan_request,
    task_request,
)
from tests.integration.stored_state import Snapshot

LIMIT = 8 * 1024 * 1024  # server.max_message_bytes of this test's server


def big_task(name: str, version: str, size: int):
    request = task_request(name, version)
    request.spec.template.custom.update({"blob": "x" * size})
    return request


@pytest.fixture
def server(settings):
    limited = dataclasses.replace(
        settings, server=dataclasses.replace(settings.server, max_message_bytes=LIMIT)
    )
    with running_api_server(limited) as running:
        yield running


@pytest.fixture
def stub(server):
    options = [
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 64 << 20),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="p"))
        )
        yield admin


def stored_task(kube_api, namespace, version: str) -> dict:
    items = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "tasks"
    )["items"]
    return next(i for i in items if i["spec"]["id"]["version"] == version)


def test_large_task_templates_are_stored_in_the_blob_store(stub, kube_api, namespace):
    sizes = {"v2mb": 2_000_000, "v3mb": 3_000_000}  # the UNAVAILABLE and INTERNAL
    for version, size in sizes.items():
        request = big_task("big", version, size)
        request.spec.description.short_description = f"a task of {size} bytes"
        stub.CreateTask(request)
        body = stored_task(kube_api, namespace, version)
        assert body["spec"]["closureRef"].startswith("gs://")
        assert len(json.dumps(body)) < 64 * 1024  # only the light form is in etcd
        got = stub.GetTask(common_pb2.ObjectGetRequest(id=ident(RT.TASK, "big", version)))
        assert len(got.closure.compiled_task.template.custom["blob"]) == size
        assert got.closure.compiled_task.template.container.image == "img:1"
        # The description stays in the object beside the light form.
        description = stub.GetDescriptionEntity(
            common_pb2.ObjectGetRequest(id=ident(RT.TASK, "big", version))
        )
        assert description.short_description == f"a task of {size} bytes"
    listed = stub.ListTasks(
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="big"),
            limit=10,
        )
    )
    assert sorted(len(t.closure.compiled_task.template.custom["blob"]) for t in listed.tasks) == [
        2_000_000,
        3_000_000,
    ]
    # Registering it again is AlreadyExists; a different template under the version is refused
    # with the differences of the whole stored template.
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateTask(big_task("big", "v2mb", 2_000_000))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateTask(big_task("big", "v2mb", 2_000_001))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "/template/custom/blob" in info.value.details()
    assert "/template/container" not in info.value.details()

    # A workflow and a single-task execution of it compile against the whole template.
    request = chain_workflow("wf", "big", nodes=1, version="v2mb")
    for node in request.spec.template.nodes:
        node.task_node.reference_id.version = "v2mb"
    stub.CreateWorkflow(request)
    workflow = stub.GetWorkflow(common_pb2.ObjectGetRequest(id=ident(RT.WORKFLOW, "wf", "v2mb")))
    (task,) = workflow.closure.compiled_workflow.tasks
    assert len(task.template.custom["blob"]) == 2_000_000
    stub.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            name="big-run",
            spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.TASK, "big", "v3mb")),
            inputs=literals_pb2.LiteralMap(
                literals={
                    "x": literals_pb2.Literal(
                        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=1))
                    )
                }
            ),
        )
    )


def test_a_task_above_the_maximum_message_size_is_refused_and_nothing_is_stored(
    stub, server, gcs, storage_settings
):
    snapshot = Snapshot(server, gcs, storage_settings.prefix)
    before = snapshot.take()
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateTask(big_task("huge", "v1", LIMIT + 1000))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(LIMIT) in info.value.details()
    body = json_format.MessageToJson(big_task("huge", "v1", LIMIT + 1000)).encode()
    answer = requests.post(
        f"http://127.0.0.1:{server.http_port}/api/v1/tasks",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert str(LIMIT) in answer.json()["message"]
    assert snapshot.take() == before


def test_other_payloads_too_large_for_etcd_are_refused_as_such(stub, server, gcs, storage_settings):
    """Launch plans and description entities are not moved to the blob store (yet): one
    beyond what etcd takes is RESOURCE_EXHAUSTED, never UNAVAILABLE (clients would retry it)
    or INTERNAL, and nothing is stored."""
    stub.CreateTask(task_request("t"))
    stub.CreateWorkflow(chain_workflow("wf", "t"))
    snapshot = Snapshot(server, gcs, storage_settings.prefix)
    before = snapshot.take()
    lp = launch_plan_request("lp", "wf", x=1)
    lp.spec.default_inputs.parameters["x"].var.description = "d" * 2_000_000
    described = task_request("described")
    described.spec.description.long_description.value = "v" * 2_000_000
    for call, request in ((stub.CreateLaunchPlan, lp), (stub.CreateTask, described)):
        with pytest.raises(grpc.RpcError) as info:
            call(request)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
        assert "too large" in info.value.details()
    assert snapshot.take() == before
