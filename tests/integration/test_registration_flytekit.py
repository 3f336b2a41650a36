"""`pyflyte register` of a realistic project against the API server, then FlyteRemote reads.

The project (tests/flyteproject/myproject) has several tasks, a sub-workflow, a conditional, a
map task, a dynamic workflow, launch plans with default and fixed inputs, a scheduled launch
plan and a reference task."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid

import grpc
import pytest
import yaml
from flyteidl.admin import common_pb2, launch_plan_pb2, project_pb2, task_pb2, workflow_pb2
from flyteidl.core import identifier_pb2
from flyteidl.service import admin_pb2_grpc
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote
from kubernetes import client

from flyteadmin.core import kube
from flyteadmin.core.config import KubernetesSettings, ServerSettings, Settings
from tests.integration.conftest import running_api_server
from tests.pyflyte import PROJECT_DIR, register, register_sample_project

RT = identifier_pb2.ResourceType


def serialized(version: str) -> dict[str, bytes]:
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "serialize.py"), "flytesnacks", "development", version],
        cwd=PROJECT_DIR,
        env=dict(os.environ, PYTHONSAFEPATH="1"),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    last = result.stdout.strip().splitlines()[-1]  # flytekit prints progress before it
    return {k: base64.b64decode(v) for k, v in json.loads(last).items()}


def _stable(template):
    """The template without the gzip (timestamped) that flytekit embeds in dynamic tasks'
    `_F_SS_C` env entry: everything else must come back exactly as serialized."""
    out = type(template)()
    out.CopyFrom(template)
    kept = [e for e in out.container.env if e.key != "_F_SS_C"]
    del out.container.env[:]
    out.container.env.extend(kept)
    return out


def _from_start(binding):
    out = type(binding)()
    out.CopyFrom(binding)
    if out.binding.HasField("promise") and not out.binding.promise.node_id:
        out.binding.promise.node_id = "start-node"
    return out


@pytest.fixture(scope="module")
def registered(kubeconfig, kube_api, crds_installed, gcs, tmp_path_factory):
    """The project registered twice at v1 (the second run must also succeed), once for the
    module: pyflyte runs take seconds each."""
    namespace = f"test-reg-{uuid.uuid4().hex[:8]}"
    kube.ensure_namespace(kube_api, namespace)
    settings = Settings(
        server=ServerSettings(grpc_port=0, http_port=0),
        kubernetes=KubernetesSettings(kubeconfig=str(kubeconfig), namespace=namespace),
        storage=gcs.storage_settings(),
    )
    try:
        with (
            running_api_server(settings) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
        ):
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            stub.RegisterProject(
                project_pb2.ProjectRegisterRequest(
                    project=project_pb2.Project(id="flytesnacks", name="flytesnacks")
                )
            )
            config = tmp_path_factory.mktemp("flytekit") / "flytekit.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "admin": {
                            "endpoint": f"dns:///127.0.0.1:{server.grpc_port}",
                            "insecure": True,
                        }
                    }
                )
            )
            register_sample_project(config)
            register(config, "v1", "myproject")  # identical again: AlreadyExists is success
            yield stub, config
    finally:
        client.CoreV1Api(kube_api).delete_namespace(namespace)


def test_registered_entities_equal_what_flytekit_serialized(registered):
    stub, _ = registered
    specs = serialized("v1")
    assert specs, "flytekit serialized nothing"

    def ident(kind: int, name: str) -> identifier_pb2.Identifier:
        return identifier_pb2.Identifier(
            resource_type=kind, project="flytesnacks", domain="development", name=name, version="v1"
        )

    seen = {"TASK": 0, "WORKFLOW": 0, "LAUNCH_PLAN": 0}
    for key, data in specs.items():
        kind, name = key.split("/", 1)
        seen[kind] += 1
        if kind == "TASK":
            spec = task_pb2.TaskSpec.FromString(data)
            got = stub.GetTask(common_pb2.ObjectGetRequest(id=ident(RT.TASK, name)))
            template = got.closure.compiled_task.template
            assert _stable(template) == _stable(spec.template), name
        elif kind == "WORKFLOW":
            spec = workflow_pb2.WorkflowSpec.FromString(data)
            got = stub.GetWorkflow(common_pb2.ObjectGetRequest(id=ident(RT.WORKFLOW, name)))
            primary = got.closure.compiled_workflow.primary.template
            assert primary.interface == spec.template.interface, name
            user_nodes = {n.id: n for n in primary.nodes if n.id not in ("start-node", "end-node")}
            assert {n.id for n in spec.template.nodes} == set(user_nodes), name
            for node in spec.template.nodes:
                # Like propeller, the compiler points workflow-input promises at start-node.
                expected = [_from_start(b) for b in node.inputs]
                assert list(user_nodes[node.id].inputs) == expected, (name, node.id)
            assert list(primary.outputs) == list(spec.template.outputs)
            task_ids = {t.template.id.name for t in got.closure.compiled_workflow.tasks}
            assert task_ids, name
        else:
            spec = launch_plan_pb2.LaunchPlan.FromString(data).spec
            got = stub.GetLaunchPlan(common_pb2.ObjectGetRequest(id=ident(RT.LAUNCH_PLAN, name)))
            assert got.spec.workflow_id == spec.workflow_id
            assert got.spec.fixed_inputs == spec.fixed_inputs
            assert got.spec.entity_metadata.schedule == spec.entity_metadata.schedule
            for param, value in spec.default_inputs.parameters.items():
                assert got.spec.default_inputs.parameters[param].default == value.default
    assert all(seen.values()), seen


def test_flyteremote_fetches_with_and_without_version(registered):
    _, config = registered
    remote = FlyteRemote(
        Config.auto(str(config)), default_project="flytesnacks", default_domain="development"
    )
    wf = remote.fetch_workflow(name="myproject.workflows.pipeline", version="v1")
    assert set(wf.interface.inputs) == {"a", "b", "label"}
    assert remote.fetch_workflow(name="myproject.workflows.pipeline").id.version == "v1"
    task = remote.fetch_task(name="myproject.workflows.add")
    assert task.id.version == "v1" and set(task.interface.inputs) == {"a", "b"}
    lp = remote.fetch_launch_plan(name="myproject.workflows.pipeline_fixed", version="v1")
    assert "label" not in lp.default_inputs.parameters  # fixed inputs are not expected
    assert lp.fixed_inputs.literals["label"].scalar.primitive.string_value == "fixed"
    scheduled = remote.fetch_launch_plan(name="myproject.workflows.nightly_schedule")
    assert scheduled.entity_metadata.schedule.cron_schedule.schedule == "0 2 * * *"


def test_different_structure_under_the_same_version_is_refused(registered, tmp_path):
    stub, _ = registered
    task = stub.GetTask(
        common_pb2.ObjectGetRequest(
            id=identifier_pb2.Identifier(
                resource_type=RT.TASK,
                project="flytesnacks",
                domain="development",
                name="myproject.workflows.add",
                version="v1",
            )
        )
    )
    template = task.closure.compiled_task.template
    template.container.image = "other:image"
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateTask(
            task_pb2.TaskCreateRequest(id=template.id, spec=task_pb2.TaskSpec(template=template))
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "task with different structure already exists" in info.value.details()
    assert "other:image" in info.value.details()


def test_flyteremote_executes_a_launch_plan_and_a_task(registered):
    _, config = registered
    remote = FlyteRemote(
        Config.auto(str(config)), default_project="flytesnacks", default_domain="development"
    )
    lp = remote.fetch_launch_plan(name="myproject.workflows.pipeline_fixed", version="v1")
    execution = remote.execute(lp, inputs={"a": 2, "b": 5}, wait=False)
    fetched = remote.fetch_execution(name=execution.id.name)
    assert fetched.spec.launch_plan.name == "myproject.workflows.pipeline_fixed"
    assert fetched.closure.phase == 0  # UNDEFINED until the operator and propeller run it
    task = remote.fetch_task(name="myproject.workflows.add", version="v1")
    task_run = remote.execute(task, inputs={"a": 1, "b": 2}, wait=False)
    assert remote.fetch_execution(name=task_run.id.name).spec.launch_plan.resource_type == 1
