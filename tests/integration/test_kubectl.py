"""What a cluster admin sees with kubectl: the CRDs' printer columns, short names and category."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flyteidl.admin import project_pb2
from kubernetes import client

from flyteadmin.core import crds
from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.devstack.kubetools import kubectl_path

pytestmark = pytest.mark.cluster
Project = project_pb2.Project


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Callable[..., str]:
    """Run kubectl against the test cluster with a temporary HOME (its discovery cache)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}

    def run(*args: str) -> str:
        proc = subprocess.run(
            [str(kubectl_path()), f"--kubeconfig={kubeconfig}", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """Split kubectl's table into header and rows by the header's column starts, so cells with
    single spaces ("Alpha Team") stay whole and a duplicate header name is kept."""
    lines = text.rstrip("\n").splitlines()
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]  # "LAUNCH PLAN" is one
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    header = [lines[0][a:b].strip() for a, b in bounds]
    return header, [[line[a:b].strip() for a, b in bounds] for line in lines[1:]]


def create(kube_api: client.ApiClient, namespace: str, body: dict, plural: str) -> None:
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        crds.GROUP, crds.VERSION, namespace, plural, body
    )


@pytest.fixture
def objects(kube_api: client.ApiClient, namespace: str) -> str:
    """Two projects (written exactly as the store encodes them) and one task."""
    codec = ProjectCodec()
    for project in (
        Project(id="alpha", name="Alpha Team", description="first", state=Project.ACTIVE),
        Project(id="beta", name="Beta", state=Project.ARCHIVED),
    ):
        body = codec.encode(project)
        body["metadata"]["name"] = codec.name(project)
        body.update(apiVersion=crds.PROJECT.api_version, kind=crds.PROJECT.kind)
        create(kube_api, namespace, body, crds.PROJECT.plural)
    task_id = {"project": "alpha", "domain": "development", "name": "t", "version": "v1"}
    task = {
        "apiVersion": crds.TASK.api_version,
        "kind": crds.TASK.kind,
        "metadata": {"name": "alpha-development-t-v1"},
        "spec": {"id": task_id, "type": "python-task"},
    }
    create(kube_api, namespace, task, crds.TASK.plural)
    return namespace


def test_projects_print_their_columns(kubectl, objects: str):
    header, rows = table(kubectl("get", "projects.flyteadmin.io", "-n", objects))
    # kubectl always leads with the object name, then the CRD's printer columns.
    assert header == ["NAME", "PROJECT", "NAME", "STATE", "AGE"]
    assert [r[:4] for r in rows] == [
        ["alpha", "alpha", "Alpha Team", "ACTIVE"],
        ["beta", "beta", "Beta", "ARCHIVED"],
    ]
    assert all(re.fullmatch(r"\d+s", r[4]) for r in rows), rows  # created seconds ago

    # The description is a priority-1 column: only in the wide output.
    header, rows = table(kubectl("get", "projects.flyteadmin.io", "-n", objects, "-o", "wide"))
    assert header == ["NAME", "PROJECT", "NAME", "STATE", "DESCRIPTION", "AGE"]
    assert rows[0][4] == "first"


def test_short_name_and_category(kubectl, objects: str):
    by_short = kubectl("get", "fproj", "-n", objects, "-o", "name").split()
    assert by_short == ["project.flyteadmin.io/alpha", "project.flyteadmin.io/beta"]
    # The category spans every kind of ours, so both the projects and the task are listed.
    everything = kubectl("get", crds.CATEGORY, "-n", objects, "-o", "name").split()
    assert sorted(everything) == [
        "project.flyteadmin.io/alpha",
        "project.flyteadmin.io/beta",
        "task.flyteadmin.io/alpha-development-t-v1",
    ]
    # Without -o, one table per kind, each with its own printer columns.
    text = kubectl("get", crds.CATEGORY, "-n", objects)
    assert re.search(r"^NAME\s+PROJECT\s+NAME\s+STATE\s+AGE$", text, re.MULTILINE), text
    assert re.search(r"^NAME\s+PROJECT\s+DOMAIN\s+TASK\s+VERSION\s+TYPE\s+AGE$", text, re.M), text
    assert re.search(
        r"^task\.flyteadmin\.io/alpha-development-t-v1\s+alpha\s+development", text, re.M
    )


@pytest.fixture
def registered_objects(settings, storage_settings, namespace):
    """A task, a workflow and two launch-plan versions (one active), registered via the API."""

    import grpc
    from flyteidl.admin import launch_plan_pb2
    from flyteidl.service import admin_pb2_grpc

    from tests.integration.conftest import running_api_server
    from tests.integration.registration_helpers import (
        RT,
        chain_workflow,
        ident,
        launch_plan_request,
        task_request,
    )

    with (
        running_api_server(settings) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        stub.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=Project(id="flytesnacks", name="f"))
        )
        stub.CreateTask(task_request("my_module.my_task"))
        stub.CreateWorkflow(chain_workflow("my_module.my_wf", "my_module.my_task"))
        for version in ("v1", "v2"):
            request = launch_plan_request("my_module.my_lp", "my_module.my_wf")
            request.id.version = version
            stub.CreateLaunchPlan(request)
        stub.UpdateLaunchPlan(
            launch_plan_pb2.LaunchPlanUpdateRequest(
                id=ident(RT.LAUNCH_PLAN, "my_module.my_lp", "v2"), state=launch_plan_pb2.ACTIVE
            )
        )
    return namespace


def test_registered_entities_show_useful_columns(kubectl, registered_objects):
    ns = registered_objects
    header, rows = table(kubectl("get", "ftask", "-n", ns))
    assert header == ["NAME", "PROJECT", "DOMAIN", "TASK", "VERSION", "TYPE", "AGE"]
    assert rows[0][1:6] == ["flytesnacks", "development", "my_module.my_task", "v1", "python-task"]
    header, rows = table(kubectl("get", "fwf", "-n", ns))
    assert header == ["NAME", "PROJECT", "DOMAIN", "WORKFLOW", "VERSION", "AGE"]
    assert rows[0][3:5] == ["my_module.my_wf", "v1"]
    header, rows = table(kubectl("get", "flp", "-n", ns, "--sort-by=.spec.id.version"))
    assert header[:7] == [
        "NAME",
        "PROJECT",
        "DOMAIN",
        "LAUNCH PLAN",
        "VERSION",
        "STATE",
        "SCHEDULE",
    ]
    assert [(r[4], r[5]) for r in rows] == [("v1", "INACTIVE"), ("v2", "ACTIVE")]
    header, rows = table(kubectl("get", "fne", "-n", ns))
    assert ["my_module.my_lp", "v2"] in [[r[4], r[6]] for r in rows]


def test_executions_show_phase_launch_plan_start_and_duration(
    kubectl, settings, storage_settings, namespace
):

    import grpc
    from flyteidl.admin import execution_pb2
    from flyteidl.service import admin_pb2_grpc

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

    with (
        running_api_server(settings) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        stub.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=Project(id=PROJECT, name="f"))
        )
        stub.CreateTask(task_request("t"))
        stub.CreateWorkflow(chain_workflow("wf", "t"))
        stub.CreateLaunchPlan(launch_plan_request("my_lp", "wf", x=1))
        stub.CreateExecution(
            execution_pb2.ExecutionCreateRequest(
                project=PROJECT, domain=DOMAIN, name="run-1",
                spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "my_lp")),
            )
        )  # fmt: skip
    header, rows = table(kubectl("get", "fexec", "-n", namespace))
    assert header == [
        "NAME", "PROJECT", "DOMAIN", "EXECUTION", "LAUNCH PLAN", "PHASE", "CLUSTER", "STARTED",
        "DURATION", "AGE",
    ]  # fmt: skip
    # One cluster: executions run in the control plane's own, which has no name.
    assert rows[0][3:7] == ["run-1", "my_lp", "UNDEFINED", ""]
