"""The user's path on the e2e stack (tests/e2e/stacks.py: `flyteadmin dev`, or the chart in a
cluster): `pyflyte register`, `pyflyte run --remote` (fast registration through the data proxy,
for a workflow and for a single task), an execution of a registered launch plan, and what the
operator makes of them: FlyteWorkflow objects naming the content flytepropeller needs (the
closure and the inputs, read here as propeller does, from the blob store), removed again by
TerminateExecution."""

from __future__ import annotations

import functools
import re
import urllib.request
import uuid
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flyteidl.admin import workflow_pb2
from flyteidl.core import compiler_pb2, literals_pb2
from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core.flyteworkflow import crd as fw_crd
from tests.e2e.stacks import DOMAIN, PROJECT, Stack
from tests.pyflyte import pyflyte, register_sample_project
from tests.waiting import eventually

FLOWS = Path(__file__).resolve().parent / "flows"
T = TypeVar("T")


wait_for = functools.partial(eventually, timeout=60)


def run_remote(stack: Stack, script: str, *args: str, cwd: Path | None = None) -> str:
    """`pyflyte run --remote`; returns the execution's name from the printed URL."""
    extra = {"cwd": cwd} if cwd else {}
    result = pyflyte(
        stack.flytekit_config, "run", "--remote", "--project", PROJECT, "--domain", DOMAIN,
        script, *args, **extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"/executions/([a-z0-9-]+)", result.stdout)
    assert match, result.stdout
    return match.group(1)


def read_flyteworkflow(api: client.ApiClient, namespace: str, name: str) -> dict | None:
    try:
        return client.CustomObjectsApi(api).get_namespaced_custom_object(
            fw_crd.GROUP, fw_crd.VERSION, namespace, fw_crd.PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def flyteworkflow(api: client.ApiClient, stack: Stack, name: str) -> dict[str, Any]:
    namespace = stack.namespace()
    return wait_for(lambda: read_flyteworkflow(api, namespace, name), f"FlyteWorkflow {name}")


def blob(remote: FlyteRemote, uri: str, message: type[T]) -> T:
    """A blob the object names, through a signed URL of the data proxy."""
    url = remote.client.get_download_signed_url(uri).signed_url
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - the stack's own
        return message.FromString(answer.read())  # type: ignore[attr-defined]


def closure_of(remote: FlyteRemote, obj: dict) -> compiler_pb2.CompiledWorkflowClosure:
    """The closure the object names (`operator.use_offloaded_workflow_closure`, the default)."""
    assert (obj["spec"], obj["tasks"]) == (None, None)
    ref = obj["workflowClosureReference"]
    return blob(remote, ref, workflow_pb2.WorkflowClosure).compiled_workflow


def inputs_of(remote: FlyteRemote, obj: dict) -> dict[str, Any]:
    """The primitive inputs the object names (`operator.use_offloaded_inputs`)."""
    assert "inputs" not in obj
    inputs = blob(remote, obj["offloadedInputs"], literals_pb2.LiteralMap)
    return {
        name: getattr(lit.scalar.primitive, lit.scalar.primitive.WhichOneof("value"))
        for name, lit in inputs.literals.items()
    }


def task_names(closure: compiler_pb2.CompiledWorkflowClosure) -> set[str]:
    return {t.template.id.name for t in closure.tasks}


def check_common(
    obj: dict, closure: compiler_pb2.CompiledWorkflowClosure, stack: Stack, name: str, workflow: str
) -> None:
    meta = obj["metadata"]
    assert (meta["name"], meta["namespace"]) == (name, stack.namespace())
    labels = meta["labels"]
    assert labels["execution-id"] == name
    assert (labels["project"], labels["domain"]) == (PROJECT, DOMAIN)
    # A label value: the name with dots and underscores as dashes, no leading dash.
    assert labels["workflow-name"] == re.sub(r"[._]", "-", workflow).lstrip("-")
    assert obj["executionId"] == {"project": PROJECT, "domain": DOMAIN, "name": name}
    primary = closure.primary.template
    assert (primary.id.project, primary.id.domain, primary.id.name) == (PROJECT, DOMAIN, workflow)
    assert obj["acceptedAt"]
    assert primary.nodes


@pytest.fixture(scope="module")
def remote(e2e_stack: Stack) -> FlyteRemote:
    return FlyteRemote(
        Config.auto(str(e2e_stack.flytekit_config)),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )


def test_register_and_run_remote_make_flyteworkflows(e2e_stack: Stack, e2e_kube, remote):
    # `pyflyte register` of the sample project, then an execution of a registered launch plan
    # (fixed input label, default a=10) that uses every node kind.
    register_sample_project(e2e_stack.flytekit_config)
    fixed_lp = remote.fetch_launch_plan(name="myproject.workflows.pipeline_fixed", version="v1")
    pipeline_run = remote.execute(fixed_lp, inputs={}, execution_name=f"e2e-{uuid.uuid4().hex[:8]}")
    obj = flyteworkflow(e2e_kube, e2e_stack, pipeline_run.id.name)
    pipeline = closure_of(remote, obj)
    check_common(obj, pipeline, e2e_stack, pipeline_run.id.name, "myproject.workflows.pipeline")
    given = inputs_of(remote, obj)
    assert (given["a"], given["label"]) == (10, "fixed")
    assert {
        "myproject.workflows.add",
        "myproject.workflows.square",
        "myproject.workflows.describe",
        "myproject.workflows.double",
        "myproject.workflows.fan_out",
        "myproject.shared.normalize",  # the reference task, at its pinned version
    } <= task_names(pipeline)
    sub_workflows = {s.template.id.name for s in pipeline.sub_workflows}
    assert "myproject.workflows.inner" in sub_workflows
    assert any(t.template.id.version == "ref-v1" for t in pipeline.tasks)

    # `pyflyte run --remote`: a workflow, and a single task (the .flytegen launch plan).
    names = [
        run_remote(e2e_stack, "myproject/workflows.py", "inner", "--a", "3", "--b", "4"),
        run_remote(e2e_stack, "myproject/workflows.py", "add", "--a", "1", "--b", "2"),
    ]
    workflow_run = remote.fetch_execution(name=names[0])
    assert workflow_run.spec.launch_plan.name == "myproject.workflows.inner"
    assert workflow_run.inputs["a"] == 3
    task_run = remote.fetch_execution(name=names[1])
    assert task_run.spec.launch_plan.resource_type == 1  # TASK: the .flytegen path
    assert task_run.inputs["b"] == 2

    inner = flyteworkflow(e2e_kube, e2e_stack, names[0])
    inner_closure = closure_of(remote, inner)
    check_common(inner, inner_closure, e2e_stack, names[0], "myproject.workflows.inner")
    assert inputs_of(remote, inner) == {"a": 3, "b": 4}
    assert task_names(inner_closure) == {"myproject.workflows.add", "myproject.workflows.square"}
    # Fast registration: the tasks run from the tarball pyflyte uploaded.
    for task in inner_closure.tasks:
        assert task.template.container.args[0] == "pyflyte-fast-execute"
    single = flyteworkflow(e2e_kube, e2e_stack, names[1])
    single_closure = closure_of(remote, single)
    check_common(single, single_closure, e2e_stack, names[1], ".flytegen.myproject.workflows.add")
    assert task_names(single_closure) == {"myproject.workflows.add"}


def test_terminate_removes_the_flyteworkflow(e2e_stack: Stack, e2e_kube, remote):
    name = run_remote(e2e_stack, "sleepy.py", "wait_then_run", "--x", "2", cwd=FLOWS)
    namespace = e2e_stack.namespace()
    obj = flyteworkflow(e2e_kube, e2e_stack, name)
    assert inputs_of(remote, obj) == {"x": 2}

    execution = remote.fetch_execution(name=name)
    remote.terminate(execution, cause="e2e: terminate")

    def removed() -> bool:
        # Deleted at once without propeller; with propeller, its finalizer keeps the object
        # (deletionTimestamp set) until propeller has aborted the run.
        current = read_flyteworkflow(e2e_kube, namespace, name)
        return current is None or bool(current["metadata"].get("deletionTimestamp"))

    wait_for(removed, f"the deletion of FlyteWorkflow {name}")
    closure = remote.client.get_execution(execution.id).closure
    assert closure.phase in (WorkflowExecutionPhase.ABORTING, WorkflowExecutionPhase.ABORTED)
    assert closure.abort_metadata.cause == "e2e: terminate"
