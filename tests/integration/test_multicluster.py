"""Executions across data-plane clusters, on real apiservers (docs/multicluster.md).

The session's local control plane is the control plane. Two more local control planes are the
execution clusters ``east`` (label ``gpu``) and ``west`` (label ``cpu``), each with stock
flytepropeller whose ``cluster-id`` is its name. Nothing runs Pods in them, so the test plays
the kubelet (tests/integration/kubelet.py); everything else is real: the operator creates each
FlyteWorkflow in the chosen cluster, that cluster's propeller runs it and sends its events to
our API server, terminate deletes it there, and a cluster taken down and brought back (the same
etcd data, the same ports) delays only its own executions. The operator works in each cluster
with exactly the grants charts/flyteadmin/dataplane/operator-rbac.yaml documents.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from flyteidl.admin import (
    cluster_assignment_pb2,
    execution_pb2,
    matchable_resource_pb2,
    node_execution_pb2,
    project_attributes_pb2,
    project_pb2,
    workflow_attributes_pb2,
)
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from flyteidl.service import admin_pb2_grpc
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from prometheus_client import REGISTRY

from flyteadmin.core import crds, kube
from flyteadmin.core.blobstore import GcsBlobStore
from flyteadmin.core.config import (
    ClusterResourceSettings,
    ExecutionCluster,
    ExecutionClusterSettings,
    KubernetesSettings,
    OperatorSettings,
    ServerSettings,
    Settings,
    StorageSettings,
)
from flyteadmin.core.crmap.executions import execution_object_name
from flyteadmin.core.flyteworkflow import crd as fw_crd
from flyteadmin.core.namespaces import namespace_for
from flyteadmin.devstack import propeller_build
from flyteadmin.devstack.controlplane import ControlPlane, start_control_plane
from flyteadmin.devstack.kubetools import kubectl_path
from flyteadmin.devstack.propeller import Propeller, PropellerSetup, start_propeller
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
from tests.integration.test_kubectl import table

pytestmark = pytest.mark.cluster
Phase = core_execution.WorkflowExecution.Phase
MR = matchable_resource_pb2.MatchableResource
eventually = functools.partial(waiting.eventually, timeout=120.0, interval=0.2)
TEMPLATE = (
    "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: flavour\n"
    "  namespace: '{{ namespace }}'\n  annotations: {flavour: '{{ flavour }}'}\n"
)
# The grants the operator gets in a data-plane cluster, as docs/multicluster.md tells users.
DATAPLANE_RBAC = (
    Path(__file__).resolve().parents[2] / "charts/flyteadmin/dataplane/operator-rbac.yaml"
)


@dataclasses.dataclass
class DataPlane:
    """One execution cluster: its control plane (restartable on the same data), its propeller,
    and a client for the test's own checks."""

    name: str
    data_dir: Path
    setup: PropellerSetup | None = None
    plane: ControlPlane | None = None
    propeller: Propeller | None = None
    api: client.ApiClient | None = None

    def start_plane(self) -> None:
        self.plane = start_control_plane(self.data_dir, log=print)
        self.api = config.new_client_from_config(str(self.plane.kubeconfig))
        kube.apply_crds(self.api, flyteworkflow=True, store=False)
        applied = subprocess.run(
            [str(kubectl_path()), f"--kubeconfig={self.plane.kubeconfig}", "apply", "-f"]
            + [str(DATAPLANE_RBAC)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.data_dir)},
        )
        assert applied.returncode == 0, applied.stderr

    @property
    def operator_kubeconfig(self) -> Path:
        """The operator's credentials there: a token of the documented ServiceAccount (bound
        tokens stay valid across a restart: the signing key is kept with the data)."""
        path = self.data_dir / "operator.kubeconfig"
        if not path.exists():
            token = (
                client.CoreV1Api(self.api)
                .create_namespaced_service_account_token(
                    "flyteadmin-operator", "flyteadmin", {"spec": {"expirationSeconds": 7200}}
                )
                .status.token
            )
            admin = yaml.safe_load(self.plane.kubeconfig.read_text())
            user = admin["contexts"][0]["context"]["user"]
            admin["users"] = [{"name": user, "user": {"token": token}}]
            path.write_text(yaml.safe_dump(admin))
        return path

    def start_propeller(self) -> None:
        assert self.setup is not None
        self.propeller = start_propeller(self.setup)

    def down(self) -> None:
        """The whole cluster goes away: propeller, apiserver, etcd (data kept)."""
        if self.propeller is not None:
            self.propeller.stop()
            self.propeller = None
        if self.api is not None:
            self.api.close()
            self.api = None
        if self.plane is not None:
            self.plane.stop()
            self.plane = None

    def up(self) -> None:
        """Back at the same address (the operator knows it by its kubeconfig)."""
        address = self.setup and Path(self.setup.kubeconfig).read_text()
        self.start_plane()
        assert Path(self.plane.kubeconfig).read_text() == address, "came back elsewhere"
        self.start_propeller()

    def workflow(self, namespace: str, name: str) -> dict | None:
        try:
            return client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                fw_crd.GROUP, fw_crd.VERSION, namespace, fw_crd.PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


@dataclasses.dataclass
class Stack:
    stub: admin_pb2_grpc.AdminServiceStub
    settings: Settings
    namespace: str
    """The project-domain namespace executions run in (in every cluster)."""
    blobs: GcsBlobStore
    clusters: dict[str, DataPlane]
    home: client.ApiClient


def register(stub: admin_pb2_grpc.AdminServiceStub) -> None:
    """Project, task, two workflows with a launch plan each; the project's executions go to
    label cpu, the workflow wf-gpu's to gpu (attributes at two levels)."""
    stub.RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="f"))
    )
    request = task_request("t")
    request.spec.template.container.args[:] = ARGS
    stub.CreateTask(request)
    for workflow, lp in (("wf", "lp"), ("wf-gpu", "lp-gpu")):
        stub.CreateWorkflow(chain_workflow(workflow, "t"))
        stub.CreateLaunchPlan(launch_plan_request(lp, workflow, x=1))

    def label(value: str) -> matchable_resource_pb2.MatchingAttributes:
        cluster_label = matchable_resource_pb2.ExecutionClusterLabel(value=value)
        return matchable_resource_pb2.MatchingAttributes(execution_cluster_label=cluster_label)

    stub.UpdateProjectAttributes(
        project_attributes_pb2.ProjectAttributesUpdateRequest(
            attributes=project_attributes_pb2.ProjectAttributes(
                project=PROJECT, matching_attributes=label("cpu")
            )
        )
    )
    stub.UpdateWorkflowAttributes(
        workflow_attributes_pb2.WorkflowAttributesUpdateRequest(
            attributes=workflow_attributes_pb2.WorkflowAttributes(
                project=PROJECT, domain=DOMAIN, workflow="wf-gpu", matching_attributes=label("gpu")
            )
        )
    )


@pytest.fixture(scope="module")
def stack(
    kubeconfig, kube_api, crds_installed, gcs, tmp_path_factory
) -> Iterator[Stack]:  # fmt: skip
    work = tmp_path_factory.mktemp("multicluster")
    suffix = os.urandom(4).hex()
    store = f"mc-{suffix}"
    kube.ensure_namespace(kube_api, store)
    templates = work / "templates"
    templates.mkdir()
    (templates / "flavour.yaml").write_text(TEMPLATE)
    planes = {name: DataPlane(name, work / name) for name in ("east", "west")}
    server = operator = None
    try:
        for plane in planes.values():
            plane.start_plane()
        labels = {"east": ("gpu",), "west": ("cpu",)}
        template = f"{{{{ project }}}}-{suffix}-{{{{ domain }}}}"
        settings = Settings(
            server=ServerSettings(host="127.0.0.1", grpc_port=0, http_port=0),
            kubernetes=KubernetesSettings(kubeconfig=str(kubeconfig), namespace=store),
            storage=gcs.storage_settings(StorageSettings(prefix=f"test-{suffix}")),
            operator=OperatorSettings(namespace_template=template),
            cluster_resources=ClusterResourceSettings(templates_dir=str(templates)),
            execution_clusters=ExecutionClusterSettings(
                clusters=tuple(
                    ExecutionCluster(
                        name=name,
                        kubeconfig=str(plane.operator_kubeconfig),
                        labels=labels[name],
                        template_data={"flavour": labels[name][0]},
                    )
                    for name, plane in planes.items()
                ),
                probe_seconds=1.0,
            ),
        )  # fmt: skip
        namespace = namespace_for(settings.operator.namespace_template, PROJECT, DOMAIN)
        binary = propeller_build.ensure_binary(log=print)
        with (
            running_api_server(settings) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        ):
            operator = OperatorThread(settings)
            operator.start()
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            register(stub)
            for plane in planes.values():
                plane.setup = PropellerSetup(
                    binary=binary,
                    kubeconfig=str(plane.plane.kubeconfig),
                    admin_endpoint=f"127.0.0.1:{server.grpc_port}",
                    gcs_endpoint=gcs.endpoint,
                    bucket=gcs.bucket,
                    credentials_file=gcs.credentials_file,
                    workdir=work / plane.name / "propeller",
                    raw_output_prefix=f"gs://{gcs.bucket}/test-{suffix}/raw",
                    limit_namespace=namespace,
                    cluster_id=plane.name,
                )
                plane.start_propeller()
            yield Stack(stub, settings, namespace, GcsBlobStore(settings.storage), planes, kube_api)
            operator.stop()
            operator = None
    finally:
        if operator is not None:
            operator.stop()
        for plane in planes.values():
            plane.down()
        client.CoreV1Api(kube_api).delete_namespace(store)


def launch(stub, launch_plan: str, name: str, **spec) -> identifier_pb2.WorkflowExecutionIdentifier:
    request = execution_pb2.ExecutionCreateRequest(
        project=PROJECT,
        domain=DOMAIN,
        name=name,
        spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, launch_plan), **spec),
    )
    return stub.CreateExecution(request).id


def get(stub, execution) -> execution_pb2.Execution:
    return stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution))


def run_pods(stack: Stack, cluster: str, name: str) -> None:
    """Play the kubelet in ``cluster`` for both nodes of execution ``name``."""
    api = stack.clusters[cluster].api
    for node in ("n0", "n1"):

        def pod_of(node=node):
            pods = task_pods(api, stack.namespace, name)
            return next((p for p in pods if p.metadata.name.endswith(f"-{node}-0")), None)

        complete_pod(api, stack.blobs, eventually(pod_of, what=f"{name}'s {node} Pod in {cluster}"))


def succeeded(stack: Stack, execution) -> bool:
    return get(stack.stub, execution).closure.phase == Phase.SUCCEEDED


def execution_object(stack: Stack, execution) -> dict:
    return client.CustomObjectsApi(stack.home).get_namespaced_custom_object(
        crds.GROUP,
        crds.VERSION,
        stack.settings.kubernetes.namespace,
        crds.EXECUTION.plural,
        execution_object_name(execution),
    )


def events_of(stack: Stack, execution) -> list[tuple[str, str, str]]:
    listed = client.CoreV1Api(stack.home).list_namespaced_event(
        stack.settings.kubernetes.namespace,
        field_selector=f"involvedObject.name={execution_object_name(execution)}",
    )
    return sorted((e.type, e.reason, e.message) for e in listed.items)


@pytest.mark.timeout(900)
def test_attributes_route_executions_and_each_clusters_propeller_runs_them(
    stack, kubeconfig, tmp_path
):
    on_cpu = launch(stack.stub, "lp", "route-cpu")  # the project's attribute: cpu
    on_gpu = launch(stack.stub, "lp-gpu", "route-gpu")  # the workflow's attribute: gpu
    assert get(stack.stub, on_cpu).spec.metadata.system_metadata.execution_cluster == "west"
    assert get(stack.stub, on_gpu).spec.metadata.system_metadata.execution_cluster == "east"
    east, west = stack.clusters["east"], stack.clusters["west"]
    eventually(lambda: west.workflow(stack.namespace, "route-cpu"), what="route-cpu in west")
    eventually(lambda: east.workflow(stack.namespace, "route-gpu"), what="route-gpu in east")
    assert east.workflow(stack.namespace, "route-cpu") is None
    assert west.workflow(stack.namespace, "route-gpu") is None
    home = client.CustomObjectsApi(stack.home)
    with pytest.raises(ApiException) as missing:
        home.get_namespaced_custom_object(
            fw_crd.GROUP, fw_crd.VERSION, stack.namespace, fw_crd.PLURAL, "route-cpu"
        )
    assert missing.value.status == 404

    run_pods(stack, "west", "route-cpu")
    run_pods(stack, "east", "route-gpu")
    for execution in (on_cpu, on_gpu):
        eventually(lambda execution=execution: succeeded(stack, execution), what="SUCCEEDED")
        data = stack.stub.GetExecutionData(
            execution_pb2.WorkflowExecutionGetDataRequest(id=execution)
        )
        assert data.full_outputs.literals["o0"].scalar.primitive.integer == 3
        nodes = stack.stub.ListNodeExecutions(
            node_execution_pb2.NodeExecutionListRequest(workflow_execution_id=execution, limit=9)
        ).node_executions
        assert {n.id.node_id for n in nodes} >= {"n0", "n1"}
    # Each propeller's events claimed nothing else: the cluster is still the chosen one.
    assert get(stack.stub, on_gpu).spec.metadata.system_metadata.execution_cluster == "east"

    # kubectl shows the cluster of each execution (the CLUSTER column).
    kubectl = subprocess.run(
        [str(kubectl_path()), f"--kubeconfig={kubeconfig}", "get", "fexec"]
        + ["-n", stack.settings.kubernetes.namespace],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)},
    )
    assert kubectl.returncode == 0, kubectl.stderr
    header, lines = table(kubectl.stdout)
    rows = {(line[header.index("EXECUTION")], line[header.index("CLUSTER")]) for line in lines}
    assert {("route-cpu", "west"), ("route-gpu", "east")} <= rows


def test_namespaces_and_cluster_resources_are_kept_in_each_cluster(stack):
    def flavour(api: client.ApiClient) -> str | None:
        try:
            found = client.CoreV1Api(api).read_namespaced_service_account(
                "flavour", stack.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found.metadata.annotations["flavour"]

    # Each cluster's own template_data; the control plane's cluster gets the namespace only.
    assert eventually(lambda: flavour(stack.clusters["east"].api), what="east's object") == "gpu"
    assert eventually(lambda: flavour(stack.clusters["west"].api), what="west's object") == "cpu"
    client.CoreV1Api(stack.home).read_namespace(stack.namespace)
    assert flavour(stack.home) is None


def test_terminate_reaches_the_cluster_running_the_execution(stack):
    execution = launch(stack.stub, "lp-gpu", "stop-gpu")
    api = stack.clusters["east"].api
    eventually(lambda: task_pods(api, stack.namespace, "stop-gpu"), what="its first Pod in east")
    stack.stub.TerminateExecution(
        execution_pb2.ExecutionTerminateRequest(id=execution, cause="enough")
    )
    eventually(lambda: get(stack.stub, execution).closure.phase == Phase.ABORTED, what="ABORTED")
    eventually(lambda: not task_pods(api, stack.namespace, "stop-gpu"), what="its Pod gone")
    eventually(
        lambda: stack.clusters["east"].workflow(stack.namespace, "stop-gpu") is None,
        what="its FlyteWorkflow gone from east",
    )


def test_cluster_pools_and_labels_refused_with_a_clear_status(stack):
    pool = cluster_assignment_pb2.ClusterAssignment(cluster_pool_name="nowhere")
    with pytest.raises(grpc.RpcError) as refused:
        launch(stack.stub, "lp", "pool-1", cluster_assignment=pool)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cluster pool 'nowhere' has no enabled execution cluster" in refused.value.details()
    # An explicit label beats the attributes, and a child execution inherits its parent's.
    label = matchable_resource_pb2.ExecutionClusterLabel(value="gpu")
    parent = launch(stack.stub, "lp", "label-parent", execution_cluster_label=label)
    assert get(stack.stub, parent).spec.metadata.system_metadata.execution_cluster == "east"
    metadata = execution_pb2.ExecutionMetadata(
        parent_node_execution=identifier_pb2.NodeExecutionIdentifier(
            node_id="n0", execution_id=parent
        )
    )
    child = launch(stack.stub, "lp", "label-child", metadata=metadata)
    got = get(stack.stub, child)
    assert got.spec.execution_cluster_label.value == "gpu"
    assert got.spec.metadata.system_metadata.execution_cluster == "east"
    for execution in (parent, child):
        stack.stub.TerminateExecution(
            execution_pb2.ExecutionTerminateRequest(id=execution, cause="done")
        )
    # Over before the next test takes east down: an abort still on its way there would make
    # the operator wait for east with these too (the waiting-executions gauge counts them).
    for execution in (parent, child):
        eventually(
            lambda: get(stack.stub, execution).closure.phase == Phase.ABORTED,  # noqa: B023
            what=f"{execution.name} ABORTED",
        )


@pytest.mark.timeout(900)
def _waiting(cluster: str) -> float:
    """flyteadmin_executions_waiting{cluster} as this process last recorded it."""
    value = REGISTRY.get_sample_value("flyteadmin_executions_waiting", {"cluster": cluster})
    return value or 0.0


def test_an_unavailable_cluster_delays_only_its_executions_and_they_launch_when_it_returns(
    stack,
):
    east = stack.clusters["east"]
    east.down()
    try:
        waiting_run = launch(stack.stub, "lp-gpu", "down-gpu")
        other_run = launch(stack.stub, "lp", "down-cpu")

        # The other cluster's execution runs to the end meanwhile.
        run_pods(stack, "west", "down-cpu")
        eventually(lambda: succeeded(stack, other_run), what="down-cpu SUCCEEDED in west")

        # This one waits, with the reason on it and a Warning Event.
        def waiting_reason() -> str:
            return execution_object(stack, waiting_run)["spec"]["resolved"].get("waiting", "")

        reason = eventually(waiting_reason, what="a waiting reason on down-gpu")
        assert reason.startswith("cluster east is unavailable: "), reason
        assert get(stack.stub, waiting_run).closure.phase == Phase.UNDEFINED
        warnings = eventually(lambda: events_of(stack, waiting_run), what="an Event")
        assert warnings == [("Warning", "ClusterUnavailable", reason)]
        # ... and in the metrics (this process holds the API server and the operator; read
        # from its registry, which other tests may have switched to multiprocess mode).
        eventually(lambda: _waiting("east") == 1, what="one execution waiting for east")
        assert _waiting("west") == 0
    finally:
        east.up()

    # Back: launched there without anyone asking, the reason cleared, a Normal Event.
    eventually(lambda: east.workflow(stack.namespace, "down-gpu"), what="down-gpu in east")
    eventually(lambda: not waiting_reason(), what="the waiting reason cleared")
    eventually(lambda: _waiting("east") == 0, what="nothing waiting for east in the metrics")
    assert ("Normal", "Launched", "launched in cluster east") in events_of(stack, waiting_run)
    run_pods(stack, "east", "down-gpu")
    eventually(lambda: succeeded(stack, waiting_run), what="down-gpu SUCCEEDED in east")
