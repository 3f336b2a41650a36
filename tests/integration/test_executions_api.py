"""Executions over gRPC: create from a launch plan and from a single task, retries, reads,
lists, archive, terminate; bad input changes nothing."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2, literals_pb2
from flyteidl.service import admin_pb2_grpc
from kubernetes import client

from flyteadmin.core.crmap.executions import ExecutionCodec
from flyteadmin.core.executions import single_task
from tests.integration.conftest import running_api_server
from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    ident,
    launch_plan_request,
    register_basics,
)

Phase = core_execution.WorkflowExecution.Phase


def integer(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def text(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value))
    )


@pytest.fixture
def stub(registered_stub):
    return registered_stub


def create(stub, name: str = "", ref=None, **inputs: literals_pb2.Literal):
    return stub.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            name=name,
            spec=execution_pb2.ExecutionSpec(launch_plan=ref or ident(RT.LAUNCH_PLAN, "lp")),
            inputs=literals_pb2.LiteralMap(literals=inputs),
        )
    ).id


def exec_id(name: str) -> identifier_pb2.WorkflowExecutionIdentifier:
    return identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name=name)


def stored_executions(kube_api, namespace) -> list[str]:
    items = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "executions"
    )["items"]
    return sorted(i["spec"]["id"]["name"] for i in items)


def test_create_from_a_launch_plan_with_defaults_and_a_generated_name(stub, kube_api, namespace):
    generated = create(stub)
    assert len(generated.name) == 20 and generated.name.startswith("a")
    named = create(stub, "my-run", x=integer(7))
    got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=named))
    assert got.closure.phase == Phase.UNDEFINED
    assert got.closure.workflow_id.name == "wf"
    assert got.spec.launch_plan.name == "lp"
    assert got.spec.max_parallelism == 25  # the application default, resolved at creation
    assert got.spec.metadata.system_metadata.namespace == f"{PROJECT}-{DOMAIN}"
    assert got.closure.state_change_details.state == execution_pb2.EXECUTION_ACTIVE
    assert stored_executions(kube_api, namespace) == sorted([generated.name, "my-run"])
    with pytest.raises(grpc.RpcError) as info:
        create(stub, "my-run", x=integer(7))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_every_unnamed_create_is_a_new_execution_by_default(stub, kube_api, namespace):
    # flyteadmin's behaviour: a script run twice, or a loop that repeats an input, gets every
    # execution it asked for, also when the requests arrive at once.
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: create(stub, x=integer(3)).name, range(4)))
    ids += [create(stub, x=integer(3)).name for _ in range(6)]
    assert len(set(ids)) == 10
    assert stored_executions(kube_api, namespace) == sorted(ids)


@pytest.fixture
def deduplicating_stub(settings):
    """A server with ``executions.retry_dedupe_seconds`` set (the opt-in)."""
    opted_in = dataclasses.replace(
        settings,
        executions=dataclasses.replace(settings.executions, retry_dedupe_seconds=10.0),
    )
    with running_api_server(opted_in) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            register_basics(admin)
            yield admin


def test_with_the_opt_in_a_retried_unnamed_create_does_not_start_a_second_execution(
    deduplicating_stub, kube_api, namespace
):
    stub = deduplicating_stub
    with ThreadPoolExecutor(4) as pool:  # flytekit retries 3 more times, at once
        ids = list(pool.map(lambda _: create(stub, x=integer(3)).name, range(4)))
    assert len(set(ids)) == 1
    assert create(stub, x=integer(3)).name == ids[0]  # and a later retry too
    assert stored_executions(kube_api, namespace) == ids[:1]
    assert create(stub, x=integer(4)).name != ids[0]  # a different request is a new run


BAD = [
    (dict(name="Upper"), {}, grpc.StatusCode.INVALID_ARGUMENT, "invalid name"),
    (dict(name="x" * 64), {}, grpc.StatusCode.INVALID_ARGUMENT, "invalid name"),
    (dict(ref=ident(RT.LAUNCH_PLAN, "nope")), {}, grpc.StatusCode.NOT_FOUND, "missing entity"),
    (
        dict(ref=ident(RT.WORKFLOW, "wf")),
        {},
        grpc.StatusCode.INVALID_ARGUMENT,
        "Invalid reference entity resource type",
    ),
    ({}, {"y": integer(1)}, grpc.StatusCode.INVALID_ARGUMENT, "invalid input y"),
    ({}, {"x": text("seven")}, grpc.StatusCode.INVALID_ARGUMENT, "invalid x input wrong type"),
]


@pytest.mark.parametrize("kwargs, inputs, code, message", BAD)
def test_bad_creates_change_nothing(stub, kube_api, namespace, kwargs, inputs, code, message):
    with pytest.raises(grpc.RpcError) as info:
        create(stub, **kwargs, **inputs)
    assert info.value.code() == code and message in info.value.details(), info.value.details()
    assert stored_executions(kube_api, namespace) == []


def test_required_inputs_must_be_given(stub):
    stub.CreateLaunchPlan(launch_plan_request("lp_required", "wf"))
    with pytest.raises(grpc.RpcError) as info:
        create(stub, ref=ident(RT.LAUNCH_PLAN, "lp_required"))
    assert "expected_inputs x missing" in info.value.details()


def test_single_task_execution_generates_a_hidden_workflow_and_launch_plan(stub, monkeypatch):
    run = create(stub, "task-run", ref=ident(RT.TASK, "t"), x=integer(1))
    got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=run))
    assert got.closure.workflow_id.name == ".flytegen.t"
    wf = stub.GetWorkflow(common_pb2.ObjectGetRequest(id=ident(RT.WORKFLOW, ".flytegen.t")))
    nodes = [n for n in wf.closure.compiled_workflow.primary.template.nodes if n.id == "t"]
    assert nodes and nodes[0].metadata.retries.retries == 3
    listed = stub.ListNamedEntities(
        common_pb2.NamedEntityListRequest(
            resource_type=RT.WORKFLOW, project=PROJECT, domain=DOMAIN, limit=10
        )
    )
    assert [e.id.name for e in listed.entities] == ["wf"]
    generated = stub.GetNamedEntity(
        common_pb2.NamedEntityGetRequest(
            resource_type=RT.LAUNCH_PLAN,
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=".flytegen.t"),
        )
    )
    assert generated.metadata.state == common_pb2.SYSTEM_GENERATED

    built = []
    original = single_task.generated_workflow
    monkeypatch.setattr(
        single_task, "generated_workflow", lambda task: built.append(task.id.name) or original(task)
    )
    create(stub, "task-run-2", ref=ident(RT.TASK, "t"), x=integer(2))  # reuses them
    # Found, not built and registered again (a task closure may even be read from the blob
    # store for that).
    assert built == []


def test_list_archive_and_terminate(stub, kube_api, namespace):
    for name in ("r1", "r2", "r3"):
        create(stub, name)
    pd = common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN)
    listed = stub.ListExecutions(
        common_pb2.ResourceListRequest(
            id=pd, limit=10, sort_by=common_pb2.Sort(key="execution_name", direction=1)
        )
    )
    assert [e.id.name for e in listed.executions] == ["r1", "r2", "r3"]
    stub.UpdateExecution(
        execution_pb2.ExecutionUpdateRequest(
            id=exec_id("r2"), state=execution_pb2.EXECUTION_ARCHIVED
        )
    )
    listed = stub.ListExecutions(common_pb2.ResourceListRequest(id=pd, limit=10))
    assert sorted(e.id.name for e in listed.executions) == ["r1", "r3"]
    archived = stub.ListExecutions(
        common_pb2.ResourceListRequest(id=pd, limit=10, filters="eq(state,1)")
    )
    assert [e.id.name for e in archived.executions] == ["r2"]

    stub.TerminateExecution(execution_pb2.ExecutionTerminateRequest(id=exec_id("r1"), cause="stop"))
    got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=exec_id("r1")))
    assert got.closure.phase == Phase.ABORTING and got.closure.abort_metadata.cause == "stop"
    phase = stub.ListExecutions(
        common_pb2.ResourceListRequest(id=pd, limit=10, filters="eq(phase,ABORTING)")
    )
    assert [e.id.name for e in phase.executions] == ["r1"]

    # An execution that already ended cannot be terminated (phase set as propeller's events will).
    custom = client.CustomObjectsApi(kube_api)
    (obj,) = [
        o
        for o in custom.list_namespaced_custom_object(
            "flyteadmin.io", "v1alpha1", namespace, "executions"
        )["items"]
        if o["spec"]["id"]["name"] == "r3"
    ]
    codec = ExecutionCodec()
    record = codec.decode(obj)
    record.execution.closure.phase = Phase.SUCCEEDED
    obj.update(spec=codec.encode(record)["spec"], status=codec.encode(record)["status"])
    custom.replace_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "executions", obj["metadata"]["name"], obj
    )
    import time

    deadline = time.monotonic() + 10
    while (
        stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=exec_id("r3"))).closure.phase
        != Phase.SUCCEEDED
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(grpc.RpcError) as info:
        stub.TerminateExecution(execution_pb2.ExecutionTerminateRequest(id=exec_id("r3")))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Cannot abort an already terminated workflow execution" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=exec_id("missing")))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_inputs_given_in_full_are_written_once(stub, kube_api, namespace):
    # The launch plan's default x=5: without x the inputs (x=5) differ from what the caller
    # gave (nothing), so both are written; with x given they are the same bytes, written once.
    create(stub, "given", x=integer(7))
    create(stub, "defaulted")
    items = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "executions"
    )["items"]
    specs = {i["spec"]["id"]["name"]: i["spec"] for i in items}
    assert specs["given"]["inputsUri"] == specs["given"]["userInputsUri"]
    assert specs["defaulted"]["inputsUri"] != specs["defaulted"]["userInputsUri"]
    for name, x in (("given", 7), ("defaulted", 5)):
        data = stub.GetExecutionData(
            execution_pb2.WorkflowExecutionGetDataRequest(id=exec_id(name))
        )
        assert data.full_inputs.literals["x"].scalar.primitive.integer == x
        again = stub.RelaunchExecution(
            execution_pb2.ExecutionRelaunchRequest(id=exec_id(name), name=f"{name}-again")
        ).id
        data = stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=again))
        assert data.full_inputs.literals["x"].scalar.primitive.integer == x


def test_relaunch_recover_and_execution_data(stub):
    original = create(stub, "orig", x=integer(9))
    data = stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=original))
    assert data.full_inputs.literals["x"].scalar.primitive.integer == 9
    relaunched = stub.RelaunchExecution(
        execution_pb2.ExecutionRelaunchRequest(id=original, name="again", overwrite_cache=True)
    ).id
    got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=relaunched))
    assert got.spec.metadata.mode == execution_pb2.ExecutionMetadata.RELAUNCH
    assert got.spec.metadata.reference_execution.name == "orig"
    assert got.spec.overwrite_cache is True
    again = stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=relaunched))
    assert again.full_inputs == data.full_inputs
    recovered = stub.RecoverExecution(
        execution_pb2.ExecutionRecoverRequest(id=original, name="recovered")
    ).id
    got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=recovered))
    assert got.spec.metadata.mode == execution_pb2.ExecutionMetadata.RECOVERED
    with pytest.raises(grpc.RpcError) as info:
        stub.RelaunchExecution(execution_pb2.ExecutionRelaunchRequest(id=exec_id("nope")))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def _email(*phases: int, recipients: tuple[str, ...] = ("a@example.com",)):
    return common_pb2.Notification(
        phases=list(phases), email=common_pb2.EmailNotification(recipients_email=recipients)
    )


BAD_NOTIFICATIONS = [
    (common_pb2.Notification(phases=[Phase.SUCCEEDED]), "invalid value for notification type"),
    (_email(Phase.SUCCEEDED, recipients=()), "missing recipients"),
    (_email(Phase.SUCCEEDED, recipients=("",)), "missing recipient"),
    (_email(Phase.RUNNING), "invalid value for phase"),
]


@pytest.mark.parametrize("notification, message", BAD_NOTIFICATIONS)
def test_bad_notifications_are_refused_and_change_nothing(
    stub, kube_api, namespace, notification, message
):
    spec = execution_pb2.ExecutionSpec(
        launch_plan=ident(RT.LAUNCH_PLAN, "lp"),
        notifications=execution_pb2.NotificationList(notifications=[notification]),
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateExecution(
            execution_pb2.ExecutionCreateRequest(project=PROJECT, domain=DOMAIN, spec=spec)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    assert stored_executions(kube_api, namespace) == []

    request = launch_plan_request("lp-notify", "wf")
    request.spec.entity_metadata.notifications.append(notification)
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateLaunchPlan(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.GetLaunchPlan(common_pb2.ObjectGetRequest(id=ident(RT.LAUNCH_PLAN, "lp-notify")))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
