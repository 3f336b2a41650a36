"""Stock flytepropeller runs our FlyteWorkflow objects and reports to our API.

The binary is built from Go modules once (like the Kubernetes binaries; see docs/propeller.md).
Nothing runs Pods here, so the test plays the kubelet's part through the Pod status subresource:
it writes the task's outputs where propeller told the Pod to, then marks the Pod Succeeded.
Everything else is real: propeller reads the FlyteWorkflow from the API server, keeps its data in
the GCS emulator, and sends its workflow, node and task events to our API server.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import execution_pb2, node_execution_pb2, project_pb2, task_execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.service import admin_pb2_grpc
from kubernetes import client

from flyteadmin.core.blobstore import GcsBlobStore
from flyteadmin.core.flyteworkflow import crd as fw_crd
from flyteadmin.core.namespaces import namespace_for
from flyteadmin.devstack import propeller_build
from flyteadmin.devstack.propeller import PropellerSetup, start_propeller
from flyteadmin.operator.runner import OperatorThread
from tests import waiting
from tests.integration.conftest import running_api_server
from tests.integration.kubelet import ARGS, complete_pod, task_pods
from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    chain_workflow,
    ident,
    launch_plan_request,
    task_request,
)
from tests.listening import listening_addresses

Phase = core_execution.WorkflowExecution.Phase
NodePhase = core_execution.NodeExecution.Phase
TaskPhase = core_execution.TaskExecution.Phase


eventually = functools.partial(waiting.eventually, timeout=90.0, interval=0.2)


@pytest.fixture(scope="session")
def propeller_binary():
    return propeller_build.ensure_binary(log=print)


@dataclasses.dataclass
class Stack:
    stub: admin_pb2_grpc.AdminServiceStub
    namespace: str
    blobs: GcsBlobStore
    pods_dir: Path
    propeller_pid: int


@pytest.fixture
def stack(settings, gcs, unique, kube_api, propeller_binary, tmp_path) -> Iterator[Stack]:
    settings = dataclasses.replace(
        settings,
        operator=dataclasses.replace(
            settings.operator, namespace_template=f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"
        ),
    )
    namespace = namespace_for(settings.operator.namespace_template, PROJECT, DOMAIN)
    with (
        running_api_server(settings) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        operator = OperatorThread(settings)
        operator.start()
        propeller = None
        try:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            stub.RegisterProject(
                project_pb2.ProjectRegisterRequest(
                    project=project_pb2.Project(id=PROJECT, name="f")
                )
            )
            request = task_request("t")
            request.spec.template.container.args[:] = ARGS
            stub.CreateTask(request)
            stub.CreateWorkflow(chain_workflow("wf", "t"))
            stub.CreateLaunchPlan(launch_plan_request("lp", "wf", x=1))
            setup = PropellerSetup(
                binary=propeller_binary,
                kubeconfig=str(settings.kubernetes.kubeconfig),
                admin_endpoint=f"127.0.0.1:{server.grpc_port}",
                gcs_endpoint=gcs.endpoint,
                bucket=gcs.bucket,
                credentials_file=gcs.credentials_file,
                workdir=tmp_path / "propeller",
                raw_output_prefix=f"gs://{gcs.bucket}/test-{unique}/raw",
                limit_namespace=namespace,  # other tests' objects are not ours to run
                pod_logs_dir=tmp_path / "pods",
            )
            propeller = start_propeller(setup)
            blobs = GcsBlobStore(settings.storage)
            yield Stack(stub, namespace, blobs, tmp_path / "pods", propeller.child.popen.pid)
        finally:
            if propeller is not None:
                propeller.stop()
            operator.stop()


def launch(stub, name: str) -> core_execution.WorkflowExecutionIdentifier:
    spec = execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "lp"))
    request = execution_pb2.ExecutionCreateRequest(
        project=PROJECT, domain=DOMAIN, name=name, spec=spec
    )
    return stub.CreateExecution(request).id


def phase_of(stub, execution) -> int:
    got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution))
    return got.closure.phase


def test_propeller_listens_on_127_0_0_1_only(stack):
    # Its profiling server (metrics, health) takes no host; our build edits it (propeller_build).
    addresses = listening_addresses(stack.propeller_pid)
    assert addresses, "propeller listens nowhere: its health check could not have passed"
    assert {host for host, _ in addresses} == {"127.0.0.1"}, addresses


def test_propeller_runs_our_flyteworkflow_to_succeeded_with_outputs(stack, kube_api):
    execution = launch(stack.stub, "run-ok")
    eventually(
        lambda: phase_of(stack.stub, execution) == Phase.RUNNING, what="RUNNING from propeller"
    )
    seen: list[int] = []
    for node in ("n0", "n1"):

        def pod_of(node=node):
            pods = task_pods(kube_api, stack.namespace, "run-ok")
            return next((p for p in pods if p.metadata.name.endswith(f"-{node}-0")), None)

        pod = eventually(pod_of, what=f"the Pod of {node}")
        env = {e.name: e.value for e in pod.spec.containers[0].env}
        assert env["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
        assert env["FLYTE_INTERNAL_EXECUTION_ID"] == "run-ok"
        seen.append(complete_pod(kube_api, stack.blobs, pod))
    assert seen == [1, 2]  # n1 got n0's output: propeller moved data through the emulator

    eventually(
        lambda: phase_of(stack.stub, execution) == Phase.SUCCEEDED, what="SUCCEEDED", timeout=120
    )
    data = stack.stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=execution))
    assert data.full_outputs.literals["o0"].scalar.primitive.integer == 3
    assert data.full_inputs.literals["x"].scalar.primitive.integer == 1

    nodes = stack.stub.ListNodeExecutions(
        node_execution_pb2.NodeExecutionListRequest(workflow_execution_id=execution, limit=20)
    ).node_executions
    phases = {n.id.node_id: n.closure.phase for n in nodes}
    assert phases["n0"] == phases["n1"] == NodePhase.SUCCEEDED
    n0 = next(n for n in nodes if n.id.node_id == "n0")
    tasks = stack.stub.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(node_execution_id=n0.id, limit=10)
    ).task_executions
    assert [(t.id.retry_attempt, t.closure.phase) for t in tasks] == [(0, TaskPhase.SUCCEEDED)]
    # The log link is the file a pod runner writes for this Pod's container.
    (link,) = tasks[0].closure.logs
    pod_dir = f"file://{stack.pods_dir}/{stack.namespace}/run-ok-n0-0/"
    assert link.uri.startswith(pod_dir) and link.uri.endswith(".log"), link.uri

    # Propeller finished with the object: its status says so.
    custom = client.CustomObjectsApi(kube_api)
    obj = custom.get_namespaced_custom_object(
        fw_crd.GROUP, fw_crd.VERSION, stack.namespace, fw_crd.PLURAL, "run-ok"
    )
    assert obj["status"]["phase"] != 0


def test_terminate_aborts_the_running_workflow_and_its_pod(stack, kube_api):
    execution = launch(stack.stub, "run-stop")
    eventually(lambda: task_pods(kube_api, stack.namespace, "run-stop"), what="the first Pod")
    stack.stub.TerminateExecution(
        execution_pb2.ExecutionTerminateRequest(id=execution, cause="stop it")
    )
    eventually(lambda: phase_of(stack.stub, execution) == Phase.ABORTED, what="ABORTED")
    # Propeller deleted the task Pod (its finalizer goes with the abort).
    eventually(lambda: not task_pods(kube_api, stack.namespace, "run-stop"), what="Pod gone")
