"""Crashes of `flyteadmin dev --data-dir` (issue 12 §3): each child process killed with SIGKILL in
turn while a client writes (tasks, executions with inputs) and flytepropeller runs those
executions (events, output blobs); then the whole stack killed with SIGKILL and started again
on the same data directory. Every acknowledged write must be readable with its content, every
execution must finish with its outputs, and a stop with a wedged child must still end.

One stack for the whole scenario (a few minutes on two shared cores)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import common_pb2, execution_pb2, node_execution_pb2, task_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from flyteidl.service import admin_pb2_grpc

from tests.devstack import start_dev
from tests.integration.registration_helpers import DOMAIN, PROJECT, RT, ident, ints, task_request
from tests.pyflyte import pyflyte
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(1200)

FLOWS = '''
"""Executions of the crash test: a task that propeller runs in a Pod (retried: a Pod running
while the pod runner is killed is marked Failed by the next runner)."""
from flytekit import task, workflow


@task(retries=3)
def double(x: int) -> int:
    return 2 * x


@workflow
def wf(x: int = 0) -> int:
    return double(x=x)
'''
# A child's name in `flyteadmin dev`'s lines -> how its command line ends or names it.
COMPONENTS = {
    "etcd": "/etcd",
    "kube-apiserver": "/kube-apiserver",
    "kube-controller-manager": "/kube-controller-manager",
    "gcs-emulator": "/fake-gcs-server",
    "flytepropeller": "/flytepropeller",
    "pod-runner": "flyteadmin.devstack.podrunner",
}
WF = core_execution.WorkflowExecution.Phase
TERMINAL = {WF.SUCCEEDED, WF.FAILED, WF.ABORTED, WF.TIMED_OUT}
LOAD_SECONDS = 4.0  # of writes after each restart, before the next kill


def all_children(pid: int) -> list[int]:
    """Every child process (the components, and the API server's worker processes)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


def children(pid: int) -> dict[str, int]:
    """The dev process's children by component name."""
    found = {}
    for child in all_children(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for name, mark in COMPONENTS.items():
            if argv[0].decode().endswith(mark) or mark.encode() in argv:
                found[name] = child
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


class Load:
    """A client writing tasks and executions with inputs; remembers what was acknowledged."""

    def __init__(self, grpc_port: int, launch_plan: identifier_pb2.Identifier) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        self.stub = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.launch_plan = launch_plan
        self.tasks: dict[str, task_pb2.TaskCreateRequest] = {}
        self.executions: dict[str, int] = {}
        self.refused: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._count = 0

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.channel.close()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._count += 1
            i = self._count
            request = task_request("crash.t", version=f"v{i}")
            if self._call(self.stub.CreateTask, request):
                self.tasks[f"v{i}"] = request
            if i % 15 == 1:  # executions cost a Pod each: a few per round
                name = f"crash-{i}"
                create = execution_pb2.ExecutionCreateRequest(
                    project=PROJECT,
                    domain=DOMAIN,
                    name=name,
                    spec=execution_pb2.ExecutionSpec(launch_plan=self.launch_plan),
                    inputs=ints(x=i),
                )
                if self._call(self.stub.CreateExecution, create):
                    self.executions[name] = i

    def _call(self, method, request) -> bool:
        try:
            method(request, timeout=20)
            return True
        except grpc.RpcError as error:  # an outage: not acknowledged, so nothing to check
            self.refused[error.code().name] += 1
            return False


def restarts(log: Path, name: str) -> int:
    return log.read_text().count(f"flyteadmin dev: {name} restarted")


def execution_id(name: str) -> identifier_pb2.WorkflowExecutionIdentifier:
    return identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name=name)


def check_everything(stub, load: Load) -> None:
    for version, request in load.tasks.items():
        got = stub.GetTask(common_pb2.ObjectGetRequest(id=ident(RT.TASK, "crash.t", version)))
        template = got.closure.compiled_task.template
        assert template.container == request.spec.template.container, version
        assert template.interface == request.spec.template.interface, version

    def finished(name: str):
        got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution_id(name)))
        return got if got.closure.phase in TERMINAL else None

    for name, x in load.executions.items():
        execution = eventually(lambda n=name: finished(n), f"{name} to finish", timeout=600)
        assert execution.closure.phase == WF.SUCCEEDED, (name, execution.closure.error)
        data = stub.GetExecutionData(
            execution_pb2.WorkflowExecutionGetDataRequest(id=execution_id(name))
        )
        assert data.full_inputs == ints(x=x), name
        assert data.full_outputs == ints(o0=2 * x), name
        nodes = stub.ListNodeExecutions(
            node_execution_pb2.NodeExecutionListRequest(
                workflow_execution_id=execution_id(name), limit=100
            )
        ).node_executions
        (task_node,) = [n for n in nodes if n.metadata.spec_node_id == "n0"]
        node_data = stub.GetNodeExecutionData(
            node_execution_pb2.NodeExecutionGetDataRequest(id=task_node.id)
        )
        assert node_data.full_inputs == ints(x=x) and node_data.full_outputs == ints(o0=2 * x)


def test_every_acknowledged_write_survives_killed_components_and_a_killed_stack(tmp_path):
    data_dir = tmp_path / "state"
    proc, found, log = start_dev(tmp_path, "--data-dir", str(data_dir))
    try:
        flows = tmp_path / "flows"
        flows.mkdir()
        (flows / "crashflows.py").write_text(FLOWS)
        result = pyflyte(
            found["flytekit"], "run", "--remote", "--project", PROJECT, "--domain", DOMAIN,
            "crashflows.py", "wf", "--x", "1", cwd=flows,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        with grpc.insecure_channel(f"127.0.0.1:{found['grpc']}") as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            (first,) = stub.ListExecutions(
                common_pb2.ResourceListRequest(
                    id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=10
                )
            ).executions
            launch_plan = first.spec.launch_plan

        with Load(int(found["grpc"]), launch_plan) as load:
            time.sleep(LOAD_SECONDS)
            for name in COMPONENTS:
                before = restarts(log, name)
                os.kill(children(proc.pid)[name], signal.SIGKILL)
                eventually(
                    lambda n=name, b=before: restarts(log, n) > b,
                    f"{name} to be restarted",
                    timeout=120,
                )
                time.sleep(LOAD_SECONDS)
        assert len(load.tasks) > 20 and len(load.executions) >= len(COMPONENTS), load.refused
        print(f"acknowledged: {len(load.tasks)} tasks, {len(load.executions)} executions; "
              f"refused during outages: {dict(load.refused)}")  # fmt: skip

        # The whole stack killed at once: its children die with it (PR_SET_PDEATHSIG), the API
        # server's workers included (none may serve the ports on).
        old = all_children(proc.pid)
        assert len(old) > len(COMPONENTS)
        proc.kill()
        proc.wait()
        eventually(lambda: all(gone(pid) for pid in old), "the old children to die")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc, found, log = start_dev(tmp_path, "--data-dir", str(data_dir))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{found['grpc']}") as channel:
            check_everything(admin_pb2_grpc.AdminServiceStub(channel), load)

        # SIGTERM stops the stack even while a child is wedged (etcd stopped: every write and
        # the stop of everything that talks to it hangs); STOP_SECONDS bounds it.
        running = all_children(proc.pid)
        os.kill(children(proc.pid)["etcd"], signal.SIGSTOP)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        eventually(lambda: all(gone(pid) for pid in running), "every child to end")
        assert "flyteadmin dev: stopped" in log.read_text() or "killing what is left" in (
            log.read_text()
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
