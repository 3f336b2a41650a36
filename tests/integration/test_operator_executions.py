"""The operator turns executions into FlyteWorkflow objects for flytepropeller, deletes them on
TerminateExecution, and fails an execution whose object the cluster refuses."""

from __future__ import annotations

import contextlib
import dataclasses
import time

import grpc
import pytest
from flyteidl.admin import (
    event_pb2,
    execution_pb2,
    matchable_resource_pb2,
    project_domain_attributes_pb2,
    project_pb2,
    workflow_pb2,
)
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2, literals_pb2
from flyteidl.event import event_pb2 as ev
from flyteidl.service import admin_pb2_grpc
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core.blobstore import GcsBlobStore
from flyteadmin.core.flyteworkflow import crd as fw_crd
from flyteadmin.core.namespaces import namespace_for
from flyteadmin.operator.runner import OperatorThread
from tests.integration.conftest import run as run_async
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
from tests.waiting import eventually

Phase = core_execution.WorkflowExecution.Phase


def _settings(settings, storage_settings, unique, **operator):
    return dataclasses.replace(
        settings,
        storage=storage_settings,
        operator=dataclasses.replace(
            settings.operator,
            namespace_template=f"{{{{ project }}}}-{unique}-{{{{ domain }}}}",
            **operator,
        ),
    )


@contextlib.contextmanager
def _operator(settings):
    operator = OperatorThread(settings)
    operator.start()
    try:
        yield
    finally:
        operator.stop()


@contextlib.contextmanager
def _served(settings, kube_api, *, operator: bool = True):
    """The API server with a project, a task, a workflow and a launch plan (and the operator,
    once it has made the project's namespace): yields the stub and that namespace."""
    with (
        running_api_server(settings) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        _operator(settings) if operator else contextlib.nullcontext(),
    ):
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        stub.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="f"))
        )
        stub.CreateTask(task_request("t"))
        stub.CreateWorkflow(chain_workflow("wf", "t"))
        stub.CreateLaunchPlan(launch_plan_request("lp", "wf", x=1))
        namespace = namespace_for(settings.operator.namespace_template, PROJECT, DOMAIN)
        if operator:
            core = client.CoreV1Api(kube_api)
            eventually(lambda: _exists(lambda: core.read_namespace(namespace)))
        yield stub, namespace


@pytest.fixture
def stack(settings, storage_settings, unique, kube_api):
    with _served(_settings(settings, storage_settings, unique), kube_api) as served:
        yield served


def _exists(read) -> bool:
    try:
        read()
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def run(stub, name: str) -> identifier_pb2.WorkflowExecutionIdentifier:
    return stub.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT, domain=DOMAIN, name=name,
            spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "lp")),
        )
    ).id  # fmt: skip


def _blob(storage_settings, uri: str, message):
    """The blob at ``uri``, parsed as ``message``."""
    store = GcsBlobStore(storage_settings)
    try:
        return message.FromString(run_async(store.get(uri)))
    finally:
        run_async(store.close())


def _launched(kube_api, namespace: str, name: str) -> dict:
    read = _flyteworkflow(kube_api, namespace, name)
    return eventually(lambda: _exists(read) and read(), f"the FlyteWorkflow {name}")


def test_an_execution_becomes_a_flyteworkflow_and_terminate_removes_it(
    stack, kube_api, storage_settings
):
    stub, namespace = stack
    read = _flyteworkflow(kube_api, namespace, "run-a")
    execution = run(stub, "run-a")
    obj = _launched(kube_api, namespace, "run-a")
    labels = obj["metadata"]["labels"]
    assert (labels["execution-id"], labels["project"], labels["domain"]) == (
        "run-a",
        PROJECT,
        DOMAIN,
    )
    assert "flyte.org/finalizer" in obj["metadata"]["finalizers"]
    assert obj["executionId"] == {"project": PROJECT, "domain": DOMAIN, "name": "run-a"}
    # The closure and the inputs are named, not carried (operator.use_offloaded_*): what
    # propeller reads is there, the prepared closure (each task's resources completed).
    assert (obj["spec"], obj["tasks"]) == (None, None) and "inputs" not in obj
    closure = _blob(storage_settings, obj["workflowClosureReference"], workflow_pb2.WorkflowClosure)
    primary = closure.compiled_workflow.primary.template
    assert (primary.id.name, {n.id for n in primary.nodes}) == (
        "wf",
        {"start-node", "end-node", "n0", "n1"},
    )
    (task,) = closure.compiled_workflow.tasks
    assert task.template.id.name == "t"
    assert {r.name for r in task.template.container.resources.requests}  # filled in at launch
    inputs = _blob(storage_settings, obj["offloadedInputs"], literals_pb2.LiteralMap)
    assert inputs.literals["x"].scalar.primitive.integer == 1  # the launch plan's default

    stub.TerminateExecution(execution_pb2.ExecutionTerminateRequest(id=execution, cause="bye"))
    # Propeller's finalizer keeps the object until propeller lets go; deletion has begun.
    eventually(lambda: not _exists(read) or read()["metadata"].get("deletionTimestamp"))


def _task_cpu(stub, cpu: str) -> None:
    """The project-domain's task resource defaults (what a launch completes tasks with)."""
    resources = matchable_resource_pb2.TaskResourceAttributes()
    resources.defaults.cpu = cpu
    resources.limits.cpu = "8"
    stub.UpdateProjectDomainAttributes(
        project_domain_attributes_pb2.ProjectDomainAttributesUpdateRequest(
            attributes=project_domain_attributes_pb2.ProjectDomainAttributes(
                project=PROJECT,
                domain=DOMAIN,
                matching_attributes=matchable_resource_pb2.MatchingAttributes(
                    task_resource_attributes=resources
                ),
            )
        )
    )


def test_launches_name_one_closure_per_resolution(stack, kube_api, storage_settings):
    """Executions of one workflow version with the same resolved task resources name the same
    closure blob; new defaults for the project-domain make the next launch name another one,
    which holds them (flyteadmin names the registered closure, without them)."""
    stub, namespace = stack
    _task_cpu(stub, "3")
    first, second = (_launched(kube_api, namespace, run(stub, n).name) for n in ("c-1", "c-2"))
    assert first["workflowClosureReference"] == second["workflowClosureReference"]
    _task_cpu(stub, "5")
    third = _launched(kube_api, namespace, run(stub, "c-3").name)
    assert third["workflowClosureReference"] != first["workflowClosureReference"]

    def cpu(obj: dict) -> list[str]:
        closure = _blob(
            storage_settings, obj["workflowClosureReference"], workflow_pb2.WorkflowClosure
        )
        (task,) = closure.compiled_workflow.tasks
        return [r.value for r in task.template.container.resources.requests if r.name == 1]

    assert (cpu(first), cpu(third)) == (["3"], ["5"])  # 1: CPU


def test_objects_carry_closure_and_inputs_when_not_offloaded(
    settings, storage_settings, unique, kube_api
):
    inline = _settings(
        settings,
        storage_settings,
        unique,
        use_offloaded_workflow_closure=False,
        use_offloaded_inputs=False,
    )
    with _served(inline, kube_api) as (stub, namespace):
        obj = _launched(kube_api, namespace, run(stub, "inline").name)
    assert {"n0", "n1", "start-node", "end-node"} <= set(obj["spec"]["nodes"])
    assert [t["id"]["name"] for t in obj["tasks"].values()] == ["t"]
    assert obj["inputs"]["literals"]["x"]["scalar"]["primitive"]["integer"] == "1"
    assert "workflowClosureReference" not in obj and "offloadedInputs" not in obj


def test_an_execution_the_cluster_refuses_fails_with_the_reason(stack, kube_api):
    stub, namespace = stack
    client.CoreV1Api(kube_api).create_namespaced_resource_quota(
        namespace,
        {
            "metadata": {"name": "no-workflows"},
            "spec": {"hard": {f"count/{fw_crd.PLURAL}.{fw_crd.GROUP}": "0"}},
        },
    )
    time.sleep(1)  # let the quota controller record usage
    execution = run(stub, "run-b")

    def phase():
        got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution))
        return got if got.closure.phase == Phase.FAILED else None

    failed = eventually(phase)
    assert "cannot create the FlyteWorkflow object" in failed.closure.error.message
    assert "quota" in failed.closure.error.message


def _flyteworkflow(kube_api, namespace: str, name: str):
    custom = client.CustomObjectsApi(kube_api)
    return lambda: custom.get_namespaced_custom_object(
        fw_crd.GROUP, fw_crd.VERSION, namespace, fw_crd.PLURAL, name
    )


def test_a_finished_execution_loses_its_object_after_the_retention(
    settings, storage_settings, unique, kube_api
):
    fast = _settings(
        settings, storage_settings, unique, resync_seconds=0.2, flyteworkflow_retention_seconds=5
    )
    with _served(fast, kube_api) as (stub, namespace):
        execution = run(stub, "run-c")
        read = _flyteworkflow(kube_api, namespace, "run-c")
        eventually(lambda: _exists(read))
        for phase in (Phase.RUNNING, Phase.SUCCEEDED):
            event = ev.WorkflowExecutionEvent(
                execution_id=execution, producer_id="propeller", phase=phase
            )
            event.occurred_at.GetCurrentTime()
            stub.CreateWorkflowEvent(event_pb2.WorkflowExecutionEventRequest(event=event))
        time.sleep(0.5)
        assert _exists(read) and not read()["metadata"].get("deletionTimestamp")  # retained
        eventually(lambda: not _exists(read) or read()["metadata"].get("deletionTimestamp"))
        got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution))
        assert got.closure.phase == Phase.SUCCEEDED


def test_an_execution_terminated_before_its_launch_ends_aborted(
    settings, storage_settings, unique, kube_api
):
    quiet = _settings(settings, storage_settings, unique)
    with _served(quiet, kube_api, operator=False) as (stub, namespace):
        execution = run(stub, "run-d")
        stub.TerminateExecution(execution_pb2.ExecutionTerminateRequest(id=execution, cause="x"))

        def phase():
            got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution))
            return got.closure.phase

        assert phase() == Phase.ABORTING
        with _operator(quiet):
            eventually(lambda: phase() == Phase.ABORTED)
        assert not _exists(_flyteworkflow(kube_api, namespace, "run-d"))


def test_namespaces_on_first_launch(settings, storage_settings, unique, kube_api):
    """operator.namespaces = on_first_launch: registering a project makes no namespace; its
    first execution in a domain makes that domain's, and is launched into it."""
    configured = _settings(settings, storage_settings, unique, namespaces="on_first_launch")
    core = client.CoreV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)
    with _served(configured, kube_api, operator=False) as (stub, namespace):
        with _operator(configured):
            others = [
                namespace_for(configured.operator.namespace_template, PROJECT, d)
                for d in ("staging", "production")
            ]
            run(stub, "first")

            def launched():
                return _exists(
                    lambda: custom.get_namespaced_custom_object(
                        fw_crd.GROUP, fw_crd.VERSION, namespace, fw_crd.PLURAL, "first"
                    )
                )

            eventually(launched, "the FlyteWorkflow in the namespace made for it")
            # A resync or the project's own event made no namespace for the other domains.
            assert not any(_exists(lambda n=n: core.read_namespace(n)) for n in others)
        core.delete_namespace(namespace)
