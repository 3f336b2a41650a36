"""Workflows really run: `pyflyte run --remote` against the e2e stack, executed by stock
flytepropeller. In dev mode `flyteadmin dev` starts propeller (built by `.ci/run`,
docs/propeller.md) and, on the embedded control plane, its local pod runner in the kubelet's
place (docs/podrunner.md); on a kind cluster the chart deploys propeller and kubelets run Pods.
"""

from __future__ import annotations

import functools
import os
import re
import textwrap
import time
from pathlib import Path

import pytest
from flytekit.configuration import Config
from flytekit.models.core.execution import TaskExecutionPhase, WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

from tests.e2e.stacks import DOMAIN, KUBECONFIG_ENV, PROJECT, Stack
from tests.pyflyte import pyflyte
from tests.waiting import eventually

FLOWS = textwrap.dedent(
    '''
    """Workflows for tests/e2e/test_propeller_run.py."""
    from flytekit import LaunchPlan, conditional, dynamic, map_task, task, workflow
    from flytekit.exceptions.user import FlyteRecoverableException


    @task
    def add(a: int, b: int) -> int:
        return a + b


    @task
    def square(x: int) -> int:
        return x * x


    @task(retries=1)
    def fail(x: int) -> int:
        if x > 0:
            # Only a recoverable user error is retried (a plain exception is not).
            raise FlyteRecoverableException(f"bad input {x}")
        return x


    @workflow
    def sub(a: int, b: int) -> int:
        return add(a=add(a=a, b=b), b=1)


    @workflow
    def chain(a: int = 1) -> int:
        return add(a=sub(a=a, b=2), b=10)


    @workflow
    def failing(x: int = 7) -> int:
        return fail(x=x)


    @workflow
    def mapped(xs: list[int]) -> list[int]:
        return map_task(square)(x=xs)


    @dynamic
    def fan_out(n: int) -> list[int]:
        return [square(x=i) for i in range(n)]


    sub_lp = LaunchPlan.get_or_create(sub, name="propeller_flows.sub_lp")


    @workflow
    def composite(a: int = 5) -> int:
        total = sub_lp(a=a, b=1)  # a child execution, launched by propeller through our API
        squares = fan_out(n=3)  # a dynamic workflow: [0, 1, 4]
        map_task(square)(x=squares)
        big = (
            conditional("big")
            .if_(total > 5)
            .then(add(a=total, b=100))
            .else_()
            .then(square(x=total))
        )
        return add(a=big, b=0)


    @task
    def slow(x: int) -> int:
        import time

        time.sleep(900)
        return x


    @workflow
    def long_running(x: int = 1) -> int:
        return slow(x=x)
    '''
)


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("propeller-flows")
    (folder / "propeller_flows.py").write_text(FLOWS)
    return folder


@pytest.fixture(scope="module")
def remote(e2e_stack: Stack) -> FlyteRemote:
    return FlyteRemote(
        Config.auto(str(e2e_stack.flytekit_config)),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )


def run_remote(stack: Stack, cwd: Path, workflow: str, *args: str) -> tuple[str, float]:
    started = time.monotonic()
    result = pyflyte(
        stack.flytekit_config, "run", "--remote", "--project", PROJECT, "--domain", DOMAIN,
        "propeller_flows.py", workflow, *args, cwd=cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"/executions/([a-z0-9-]+)", result.stdout)
    assert match, result.stdout
    return match.group(1), started


def finished(remote: FlyteRemote, name: str, timeout: float = 240):
    execution = remote.fetch_execution(name=name)
    return remote.wait(execution, timeout=timeout, poll_interval=1)


def test_a_single_task_succeeds_with_its_output(e2e_stack, remote, flows):
    name, started = run_remote(e2e_stack, flows, "add", "--a", "1", "--b", "2")
    execution = finished(remote, name)
    seconds = time.monotonic() - started
    print(f"one-task workflow: pyflyte run --remote to SUCCEEDED in {seconds:.1f}s")
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, execution.closure.error
    assert execution.outputs["o0"] == 3


def test_a_workflow_with_a_sub_workflow_succeeds(e2e_stack, remote, flows):
    name, _ = run_remote(e2e_stack, flows, "chain", "--a", "1")
    execution = finished(remote, name)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, execution.closure.error
    assert execution.outputs["o0"] == 14
    synced = remote.sync_execution(execution, sync_nodes=True)
    assert {"n0", "n1"} <= set(synced.node_executions)


def test_a_child_launch_plan_a_dynamic_workflow_a_map_and_a_conditional(e2e_stack, remote, flows):
    name, _ = run_remote(e2e_stack, flows, "composite", "--a", "5")
    execution = finished(remote, name)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, execution.closure.error
    assert execution.outputs["o0"] == 107  # sub(5, 1) = 7 > 5, so 7 + 100
    synced = remote.sync_execution(execution, sync_nodes=True)
    # Propeller launched the child through our CreateExecution and named it in its node event.
    (child_id,) = [
        n.closure.workflow_node_metadata.execution_id
        for n in synced.node_executions.values()
        if n.closure.workflow_node_metadata is not None
    ]
    child = remote.fetch_execution(name=child_id.name)
    assert child.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    assert child.outputs["o0"] == 7


def test_a_failing_task_is_retried_then_fails_with_the_user_error(e2e_stack, remote, flows):
    name, _ = run_remote(e2e_stack, flows, "failing")
    execution = finished(remote, name)
    assert execution.closure.phase == WorkflowExecutionPhase.FAILED
    assert "bad input 7" in execution.closure.error.message
    synced = remote.sync_execution(execution, sync_nodes=True)
    attempts = synced.node_executions["n0"].task_executions
    assert [t.id.retry_attempt for t in attempts] == [0, 1]
    assert all(t.closure.logs for t in attempts)


def test_a_map_task_succeeds(e2e_stack, remote, flows):
    name, _ = run_remote(e2e_stack, flows, "mapped", "--xs", "[1, 2, 3]")
    execution = finished(remote, name)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, execution.closure.error
    assert execution.outputs["o0"] == [1, 4, 9]


def processes_mentioning(text: str) -> list[int]:
    """Local processes whose command line contains ``text`` (the pod runner's task processes
    carry their execution's name in their --inputs path)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # the process ended meanwhile
    return found


wait_for = functools.partial(eventually, timeout=120, interval=0.5)


def test_terminate_aborts_a_running_task_and_its_process(e2e_stack, remote, flows):
    name, _ = run_remote(e2e_stack, flows, "long_running")
    execution = remote.fetch_execution(name=name)

    def task_running():
        synced = remote.sync_execution(execution, sync_nodes=True)
        node = synced.node_executions.get("n0")
        tasks = node.task_executions if node else []
        return tasks and tasks[-1].closure.phase == TaskExecutionPhase.RUNNING

    wait_for(task_running, "the task to run")
    if e2e_stack.mode == "dev" and not os.environ.get(KUBECONFIG_ENV):
        assert processes_mentioning(name), "the task's local process is not running"
    remote.terminate(execution, cause="e2e: stop it")
    aborted = finished(remote, name, timeout=120)
    assert aborted.closure.phase == WorkflowExecutionPhase.ABORTED
    if e2e_stack.mode == "dev" and not os.environ.get(KUBECONFIG_ENV):
        wait_for(lambda: not processes_mentioning(name), "the task's process to end")
