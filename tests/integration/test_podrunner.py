"""The local pod runner on the real control plane: scheduling, processes, status, deletion.

Each test gets its own Node name, work directory and namespace label, so runners of different
tests never pick up each other's Pods; every runner and process a test starts is stopped by it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.devstack.podrunner import PodRunner, RunnerOptions, gcs_emulator_env
from tests.waiting import eventually

WAIT_SECONDS = 60.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    return eventually(check, what, timeout, interval=0.1)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose (its parent, the runner, has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Cluster:
    """Test-side helpers on the admin client."""

    def __init__(self, api: client.ApiClient, label: str) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.label = label  # "podrunner-test=<unique>": the runner's namespace selector
        self.namespaces: list[str] = []

    def namespace(self, name: str, managed: bool = True) -> str:
        key, value = self.label.split("=")
        labels = {key: value} if managed else {}
        self.core.create_namespace({"metadata": {"name": name, "labels": labels}})
        self.namespaces.append(name)
        # The ServiceAccount admission plugin rejects Pods until "default" exists.
        wait_for(lambda: self._has_default_sa(name), f"service account default in {name}")
        return name

    def _has_default_sa(self, namespace: str) -> bool:
        try:
            self.core.read_namespaced_service_account("default", namespace)
            return True
        except ApiException:
            return False

    def create_pod(self, namespace: str, name: str, containers: list[dict], **spec: Any) -> dict:
        body = {
            "metadata": {"name": name, "labels": {"app": "podrunner-test"}},
            "spec": {"restartPolicy": "Never", "containers": containers, **spec},
        }
        return self.api.sanitize_for_serialization(self.core.create_namespaced_pod(namespace, body))

    def pod(self, namespace: str, name: str) -> dict | None:
        try:
            return self.api.sanitize_for_serialization(
                self.core.read_namespaced_pod(name, namespace)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def phase(self, namespace: str, name: str) -> str | None:
        pod = self.pod(namespace, name)
        return pod and pod.get("status", {}).get("phase")

    def wait_phase(
        self, namespace: str, name: str, *phases: str, timeout: float = WAIT_SECONDS
    ) -> dict:
        wait_for(lambda: self.phase(namespace, name) in phases, f"{name} in {phases}", timeout)
        return self.pod(namespace, name)

    def cleanup(self) -> None:
        for name in self.namespaces:
            try:
                # Force: once the runner is stopped, no kubelet would finish a graceful delete.
                self.core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
                self.core.delete_namespace(name)
            except ApiException:
                pass


def container(name: str, code: str, **extra: Any) -> dict:
    """A container running ``python -c code`` (python from the runner's environment)."""
    return {"name": name, "image": "ignored:latest", "command": ["python", "-c", code], **extra}


@pytest.fixture
def cluster(kube_api: client.ApiClient, unique: str) -> Iterator[Cluster]:
    helper = Cluster(kube_api, f"podrunner-test={unique}")
    yield helper
    helper.cleanup()


@pytest.fixture
def runners(kubeconfig: Path, tmp_path: Path, unique: str, cluster: Cluster, kube_api):
    """Start runners on this test's Node, work directory and namespace label; all stopped and the
    Node deleted afterwards."""
    started: list[PodRunner] = []

    def start(**options: Any) -> PodRunner:
        options.setdefault("node_name", f"podrunner-{unique}")
        options.setdefault("namespace_selector", cluster.label)
        runner = PodRunner(kubeconfig, tmp_path / "runner", RunnerOptions(**options))
        started.append(runner)
        runner.start()
        return runner

    yield start
    for runner in started:
        runner.stop()
    try:
        client.CoreV1Api(kube_api).delete_node(f"podrunner-{unique}")
    except ApiException:
        pass


def terminated(pod: dict, index: int = 0, field: str = "containerStatuses") -> dict:
    return pod["status"][field][index]["state"]["terminated"]


def test_node_is_registered_ready_with_a_lease(runners, cluster: Cluster, unique: str):
    runner = runners()
    assert runner.running
    node = cluster.api.sanitize_for_serialization(cluster.core.read_node(runner.node_name))
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert node["status"]["allocatable"]["pods"] == "110"
    lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease(
        runner.node_name, "kube-node-lease"
    )
    assert lease.spec.holder_identity == runner.node_name


def test_pod_succeeds_with_exit_code_times_and_log(runners, cluster: Cluster, unique: str):
    runner = runners()
    ns = cluster.namespace(f"pr-ok-{unique}")
    cluster.create_pod(ns, "hello", [container("main", "print('hello from the pod')")])
    pod = cluster.wait_phase(ns, "hello", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["spec"]["nodeName"] == runner.node_name
    done = terminated(pod)
    assert done["exitCode"] == 0
    assert done["reason"] == "Completed"
    assert done["startedAt"] <= done["finishedAt"]
    assert pod["status"]["startTime"] <= done["startedAt"]
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == "127.0.0.1"
    conditions = {c["type"]: c for c in pod["status"]["conditions"]}
    assert conditions["PodScheduled"]["status"] == "True"
    assert conditions["Initialized"]["status"] == "True"
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "PodCompleted"
    log = runner.pod_dir(ns, "hello") / "main.log"
    assert log.read_text() == "hello from the pod\n"


def test_failing_pod_reports_exit_code_message_and_log_tail(
    runners, cluster: Cluster, unique: str, tmp_path: Path
):
    runner = runners()
    ns = cluster.namespace(f"pr-fail-{unique}")
    message_file = tmp_path / "termination-message"
    write_message = (
        f"open({str(message_file)!r}, 'w').write('custom message'); import sys; sys.exit(3)"
    )
    cluster.create_pod(
        ns,
        "fails",
        [
            container(
                "tail",
                "import sys; print('line 1', flush=True); print('the error', file=sys.stderr);"
                "sys.exit(3)",
                terminationMessagePolicy="FallbackToLogsOnError",
            ),
            container("file", write_message, terminationMessagePath=str(message_file)),
        ],
    )
    pod = cluster.wait_phase(ns, "fails", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Failed"
    by_name = {s["name"]: s["state"]["terminated"] for s in pod["status"]["containerStatuses"]}
    assert by_name["tail"]["exitCode"] == 3
    assert by_name["tail"]["reason"] == "Error"
    assert by_name["tail"]["message"] == "line 1\nthe error"
    assert by_name["file"]["exitCode"] == 3
    assert by_name["file"]["message"] == "custom message"
    assert (runner.pod_dir(ns, "fails") / "tail.log").read_text() == "line 1\nthe error\n"


def test_environment_from_value_field_ref_secret_and_config_map(
    runners, cluster: Cluster, unique: str
):
    runner = runners(extra_env={"STORAGE_EMULATOR_HOST": "http://127.0.0.1:1", "SHADOWED": "x"})
    ns = cluster.namespace(f"pr-env-{unique}")
    cluster.core.create_namespaced_secret(
        ns, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}
    )
    cluster.core.create_namespaced_config_map(
        ns, {"metadata": {"name": "settings"}, "data": {"level": "debug", "other": "o"}}
    )
    env = [
        {"name": "PLAIN", "value": "plain"},
        {"name": "EXPANDED", "value": "$(PLAIN)-$(UNKNOWN)-$$(PLAIN)"},
        {"name": "SHADOWED", "value": "from-pod"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
    ]
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    created = cluster.create_pod(
        ns,
        "env",
        [
            {
                "name": "main",
                "image": "ignored",
                "command": ["python", "-c"],
                "args": [dump],
                "env": env,
                "envFrom": [{"prefix": "CM_", "configMapRef": {"name": "settings"}}],
            }
        ],
    )
    pod = cluster.wait_phase(ns, "env", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded"
    seen = json.loads((runner.pod_dir(ns, "env") / "main.log").read_text())
    assert {k: seen.get(k) for k in ("PLAIN", "EXPANDED", "SHADOWED")} == {
        "PLAIN": "plain",
        "EXPANDED": "plain-$(UNKNOWN)-$(PLAIN)",
        "SHADOWED": "from-pod",
    }
    assert seen["POD_NAME"] == "env"
    assert seen["POD_NS"] == ns
    assert seen["POD_UID"] == created["metadata"]["uid"]
    assert seen["APP"] == "podrunner-test"
    assert seen["POD_IP"] == "127.0.0.1"
    assert seen["NODE"] == runner.node_name
    assert seen["TOKEN"] == "s3cret"
    assert seen["LEVEL"] == "debug"
    assert seen["CM_other"] == "o"
    assert seen["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:1"
    assert seen["PATH"].split(os.pathsep)[0] == str(Path(sys.prefix) / "bin")
    assert "KUBECONFIG" not in seen


def test_missing_secret_waits_in_create_container_config_error(
    runners, cluster: Cluster, unique: str
):
    runners()
    ns = cluster.namespace(f"pr-cfg-{unique}")
    ref = {"secretKeyRef": {"name": "later", "key": "k"}}
    cluster.create_pod(
        ns,
        "cfg",
        [
            container(
                "main",
                "import os; assert os.environ['K'] == 'v'",
                env=[{"name": "K", "valueFrom": ref}],
            )
        ],
    )

    def waiting_reason() -> str | None:
        statuses = (cluster.pod(ns, "cfg") or {}).get("status", {}).get("containerStatuses")
        return statuses and (statuses[0]["state"].get("waiting") or {}).get("reason")

    wait_for(lambda: waiting_reason() == "CreateContainerConfigError", "the config error")
    assert cluster.phase(ns, "cfg") == "Pending"
    cluster.core.create_namespaced_secret(
        ns, {"metadata": {"name": "later"}, "stringData": {"k": "v"}}
    )
    assert cluster.wait_phase(ns, "cfg", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"


def test_deleting_a_running_pod_kills_its_processes_and_removes_it(
    runners, cluster: Cluster, unique: str
):
    runner = runners()
    ns = cluster.namespace(f"pr-del-{unique}")
    # The container starts a child of its own: the whole process group must go.
    code = (
        "import os, subprocess, sys, time;"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
        "open('pids', 'w').write(f'{os.getpid()} {child.pid}');"
        "time.sleep(600)"
    )
    cluster.create_pod(ns, "sleeper", [container("main", code)])
    pids_file = runner.pod_dir(ns, "sleeper") / "work" / "pids"
    wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2, "the pids")
    pids = [int(p) for p in pids_file.read_text().split()]
    assert all(pid_alive(pid) for pid in pids)
    assert cluster.phase(ns, "sleeper") == "Running"
    cluster.core.delete_namespaced_pod("sleeper", ns)
    wait_for(lambda: cluster.pod(ns, "sleeper") is None, "the pod to disappear")
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), "the processes to end")


def test_concurrency_limit_keeps_extra_pods_pending(
    runners, cluster: Cluster, unique: str, tmp_path: Path
):
    runner = runners(max_running=1)
    ns = cluster.namespace(f"pr-max-{unique}")
    gate = tmp_path / "gate"
    wait_gate = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)"
    cluster.create_pod(ns, "first", [container("main", wait_gate)])
    cluster.wait_phase(ns, "first", "Running")
    cluster.create_pod(ns, "second", [container("main", wait_gate)])
    second = wait_for(
        lambda: (
            (cluster.pod(ns, "second") or {}).get("spec", {}).get("nodeName")
            and cluster.pod(ns, "second")
        ),
        "binding",
    )
    # "first" cannot end before the gate opens, so "second" cannot have started.
    assert second["status"]["phase"] == "Pending"
    assert "startTime" not in second["status"]
    assert runner.running_count() == 1
    gate.touch()
    first = cluster.wait_phase(ns, "first", "Succeeded")
    second = cluster.wait_phase(ns, "second", "Succeeded")
    assert terminated(second)["startedAt"] >= terminated(first)["finishedAt"]


def test_init_containers_run_first_in_order(runners, cluster: Cluster, unique: str):
    runner = runners()
    ns = cluster.namespace(f"pr-init-{unique}")
    append = "open('order', 'a').write({!r})"
    cluster.create_pod(
        ns,
        "init",
        [container("main", "assert open('order').read() == 'ab'; print('ok')")],
        initContainers=[container("a", append.format("a")), container("b", append.format("b"))],
    )
    pod = cluster.wait_phase(ns, "init", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded", (
        runner.pod_dir(ns, "init") / "main.log"
    ).read_text()
    inits = [s["state"]["terminated"] for s in pod["status"]["initContainerStatuses"]]
    assert [s["reason"] for s in inits] == ["Completed", "Completed"]
    assert inits[1]["finishedAt"] <= terminated(pod)["startedAt"]


def test_failed_init_container_fails_the_pod_without_running_containers(
    runners, cluster: Cluster, unique: str
):
    runners()
    ns = cluster.namespace(f"pr-initf-{unique}")
    cluster.create_pod(
        ns,
        "initf",
        [container("main", "print('never')")],
        initContainers=[container("setup", "raise SystemExit(2)")],
    )
    pod = cluster.wait_phase(ns, "initf", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Failed"
    assert terminated(pod, field="initContainerStatuses")["exitCode"] == 2
    assert "waiting" in pod["status"]["containerStatuses"][0]["state"]


def test_pods_in_unmanaged_namespaces_are_left_alone(runners, cluster: Cluster, unique: str):
    runner = runners()
    other = cluster.namespace(f"pr-other-{unique}", managed=False)
    ns = cluster.namespace(f"pr-mine-{unique}")
    cluster.create_pod(other, "not-mine", [container("main", "pass")])
    cluster.create_pod(ns, "mine", [container("main", "pass")])
    cluster.wait_phase(ns, "mine", "Succeeded")
    # The runner saw "not-mine" before "mine" (one watch, handled in order) and left it.
    untouched = cluster.pod(other, "not-mine")
    assert not untouched["spec"].get("nodeName")
    assert untouched["status"]["phase"] == "Pending"
    # A Pod already bound to the runner's Node runs wherever it is.
    cluster.create_pod(other, "bound", [container("main", "pass")], nodeName=runner.node_name)
    assert (
        cluster.wait_phase(other, "bound", "Succeeded", "Failed")["status"]["phase"] == "Succeeded"
    )
    # Labelling the namespace makes it managed: its waiting Pod is scheduled and runs.
    key, value = cluster.label.split("=")
    cluster.core.patch_namespace(other, {"metadata": {"labels": {key: value}}})
    cluster.wait_phase(other, "not-mine", "Succeeded")


def test_active_deadline_fails_the_pod(runners, cluster: Cluster, unique: str):
    runners()
    ns = cluster.namespace(f"pr-dl-{unique}")
    cluster.create_pod(
        ns, "slow", [container("main", "import time; time.sleep(600)")], activeDeadlineSeconds=1
    )
    pod = cluster.wait_phase(ns, "slow", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert terminated(pod)["exitCode"] == 128 + 15  # SIGTERM


def test_restarted_runner_marks_orphaned_pods_failed(runners, cluster: Cluster, unique: str):
    first = runners()
    ns = cluster.namespace(f"pr-orphan-{unique}")
    cluster.create_pod(ns, "orphan", [container("main", "import time; time.sleep(600)")])
    cluster.wait_phase(ns, "orphan", "Running")
    pid = first.pod_dir(ns, "orphan").joinpath("state.json")
    pid = json.loads(pid.read_text())["processes"]["main"]["pid"]
    first.stop()
    assert not first.running
    assert not pid_alive(pid)
    assert cluster.phase(ns, "orphan") == "Running"  # a stopped runner writes nothing more
    runners()
    pod = cluster.wait_phase(ns, "orphan", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "RunnerRestarted"
    done = terminated(pod)
    assert (done["exitCode"], done["reason"]) == (137, "ContainerStatusUnknown")


def test_flytekit_in_a_pod_reads_and_writes_gs_on_the_emulator(
    runners, cluster: Cluster, unique: str, gcs
):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = storage.Client(
        project="p",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs.endpoint},
    ).bucket(gcs.bucket)
    bucket.blob(f"{unique}/in.txt").upload_from_string(b"from the emulator")
    runner = runners(extra_env=gcs_emulator_env(gcs.endpoint))
    ns = cluster.namespace(f"pr-gcs-{unique}")
    code = (
        "from flytekit.core.data_persistence import FileAccessProvider\n"
        f"fa = FileAccessProvider('sandbox', raw_output_prefix='gs://{gcs.bucket}/{unique}/raw')\n"
        f"fa.get_data('gs://{gcs.bucket}/{unique}/in.txt', 'in.txt')\n"
        "print(open('in.txt').read())\n"
        "open('out.txt', 'w').write('from the pod')\n"
        f"fa.put_data('out.txt', 'gs://{gcs.bucket}/{unique}/out.txt')\n"
    )
    cluster.create_pod(ns, "gcs", [container("main", code)])
    pod = cluster.wait_phase(ns, "gcs", "Succeeded", "Failed")
    log = (runner.pod_dir(ns, "gcs") / "main.log").read_text()
    assert pod["status"]["phase"] == "Succeeded", log
    assert "from the emulator" in log
    assert bucket.blob(f"{unique}/out.txt").download_as_bytes() == b"from the pod"


def test_on_failure_restarts_the_container_until_it_succeeds(
    runners, cluster: Cluster, unique: str
):
    runners()
    ns = cluster.namespace(f"pr-retry-{unique}")
    # Fails on its first run, succeeds on the second (the work directory outlives a restart).
    code = (
        "import os, sys\nif not os.path.exists('ran'):\n    open('ran', 'w').close(); sys.exit(1)\n"
    )
    cluster.create_pod(ns, "retry", [container("main", code)], restartPolicy="OnFailure")
    pod = cluster.wait_phase(ns, "retry", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded"
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["state"]["terminated"]["exitCode"] == 0


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(
    runners, cluster: Cluster, unique: str
):
    runner = runners()
    ns = cluster.namespace(f"pr-grace-{unique}")
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open('pid', 'w').write(str(os.getpid()))\n"
        "time.sleep(600)\n"
    )
    cluster.create_pod(ns, "stubborn", [container("main", code)])
    pid_file = runner.pod_dir(ns, "stubborn") / "work" / "pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the pid")
    pid = int(pid_file.read_text())
    cluster.core.delete_namespaced_pod("stubborn", ns, grace_period_seconds=1)
    wait_for(lambda: cluster.pod(ns, "stubborn") is None, "the pod to disappear")
    assert not pid_alive(pid)


def test_a_propeller_shaped_flytekit_task_pod_runs_to_outputs(
    runners, cluster: Cluster, unique: str, gcs, tmp_path: Path
):
    """The shape of a fast-registered Python task's Pod as flytepropeller creates it: no command,
    args ``pyflyte-fast-execute ... -- pyflyte-execute ...``, code and inputs in gs://."""
    import io
    import tarfile

    from flyteidl.core import literals_pb2
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = storage.Client(
        project="p",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs.endpoint},
    ).bucket(gcs.bucket)
    module = (
        b"from flytekit import task\n\n@task\ndef add(a: int, b: int) -> int:\n    return a + b\n"
    )
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"wf_{unique}.py")
        info.size = len(module)
        tar.addfile(info, io.BytesIO(module))
    bucket.blob(f"{unique}/fast.tar.gz").upload_from_string(archive.getvalue())

    def integer(value: int) -> literals_pb2.Literal:
        primitive = literals_pb2.Primitive(integer=value)
        return literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=primitive))

    inputs = literals_pb2.LiteralMap(literals={"a": integer(1), "b": integer(2)})
    bucket.blob(f"{unique}/inputs.pb").upload_from_string(inputs.SerializeToString())
    prefix = f"gs://{gcs.bucket}/{unique}"
    args = [
        "pyflyte-fast-execute",
        "--additional-distribution",
        f"{prefix}/fast.tar.gz",
        "--dest-dir",
        "/root",  # pyflyte register's default: a folder of the image, here the Pod's own
        "--",
        "pyflyte-execute",
        "--inputs",
        f"{prefix}/inputs.pb",
        "--output-prefix",
        f"{prefix}/out",
        "--raw-output-data-prefix",
        f"{prefix}/raw",
        "--checkpoint-path",
        f"{prefix}/checkpoint",
        "--prev-checkpoint",
        '""',
        "--resolver",
        "flytekit.core.python_auto_container.default_task_resolver",
        "--",
        "task-module",
        f"wf_{unique}",
        "task-name",
        "add",
    ]
    runner = runners(extra_env=gcs_emulator_env(gcs.endpoint))
    ns = cluster.namespace(f"pr-task-{unique}")
    primary = {
        "name": "primary",
        "image": "cr.flyte.org/flyteorg/flytekit:py3.11-latest",
        "args": args,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "env": [{"name": "FLYTE_INTERNAL_EXECUTION_ID", "value": unique}],
    }
    cluster.create_pod(ns, "task", [primary])
    pod = cluster.wait_phase(ns, "task", "Succeeded", "Failed", timeout=120)
    log = (runner.pod_dir(ns, "task") / "primary.log").read_text()
    assert pod["status"]["phase"] == "Succeeded", log
    outputs = literals_pb2.LiteralMap.FromString(
        bucket.blob(f"{unique}/out/outputs.pb").download_as_bytes()
    )
    assert outputs.literals["o0"].scalar.primitive.integer == 3
    assert (runner.pod_dir(ns, "task") / "work" / f"wf_{unique}.py").exists()


RUNNER_SCRIPT = """
import sys, threading
from flyteadmin.devstack.podrunner import PodRunner, RunnerOptions
options = RunnerOptions(node_name=sys.argv[3], namespace_selector=sys.argv[4])
runner = PodRunner(sys.argv[1], sys.argv[2], options)
runner.start()
print("started", flush=True)
threading.Event().wait()
"""


def test_a_killed_runner_takes_its_processes_along_and_the_next_marks_the_pods_failed(
    runners, cluster: Cluster, unique: str, kubeconfig: Path, tmp_path: Path
):
    import signal
    import subprocess

    workdir = tmp_path / "runner"
    argv = [sys.executable, "-c", RUNNER_SCRIPT, str(kubeconfig), str(workdir)]
    argv += [f"podrunner-{unique}", cluster.label]
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    child = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "started"
        ns = cluster.namespace(f"pr-kill-{unique}")
        cluster.create_pod(ns, "lost", [container("main", "import time; time.sleep(600)")])
        cluster.wait_phase(ns, "lost", "Running")
        state = json.loads((workdir / "pods" / ns / "lost" / "state.json").read_text())
        pid = state["processes"]["main"]["pid"]
        child.send_signal(signal.SIGKILL)  # no clean-up at all
        child.wait()
        wait_for(lambda: not pid_alive(pid), "the container to die with its runner")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    runners()  # same Node and work directory
    pod = cluster.wait_phase(ns, "lost", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "RunnerRestarted"
