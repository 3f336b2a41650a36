"""The pod runner's pure parts: environment and argv, phase rules, conditions, log tails."""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

import pytest

from flyteadmin.devstack.podrunner import RunnerOptions, gcs_emulator_env, podenv, processes
from flyteadmin.devstack.podrunner.podstatus import (
    RUNNING,
    TERMINATED,
    WAITING,
    Conditions,
    Container,
    pod_phase,
    wanted_conditions,
)
from flyteadmin.devstack.podrunner.runner import base_environment
from flyteadmin.devstack.podrunner.worker import exit_code_of

POD = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"b": "2", "a": "1"},
        "annotations": {"note": "n"},
    },
    "spec": {
        "serviceAccountName": "sa",
        "containers": [
            {"name": "main", "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}}},
            {"name": "side"},
        ],
    },
}

OBJECTS = {
    ("Secret", "ns", "s"): {"data": {"k": base64.b64encode(b"secret").decode()}},
    ("ConfigMap", "ns", "c"): {"data": {"k": "plain", "x": "y"}, "binaryData": {"b": "Ynl0ZXM="}},
}


def lookup(kind: str, namespace: str, name: str):
    return OBJECTS.get((kind, namespace, name))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)z", "x1y2z"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$(A", "$(A"),
        ("a$b", "a$b"),
        ("$", "$"),
        ("", ""),
    ],
)
def test_expand(text, expected):
    assert podenv.expand(text, {"A": "1", "B": "2"}) == expected


@pytest.mark.parametrize(
    "path, expected",
    [
        ("metadata.name", "p"),
        ("metadata.namespace", "ns"),
        ("metadata.uid", "u-1"),
        ("metadata.labels['a']", "1"),
        ("metadata.labels['absent']", ""),
        ("metadata.annotations['note']", "n"),
        ("metadata.labels", 'a="1"\nb="2"'),
        ("spec.nodeName", "node-x"),
        ("spec.serviceAccountName", "sa"),
        ("status.podIP", "127.0.0.1"),
        ("status.hostIP", "127.0.0.1"),
    ],
)
def test_field_value(path, expected):
    assert podenv.field_value(POD, path, "node-x") == expected


def test_unknown_field_path_is_a_config_error():
    with pytest.raises(podenv.EnvError, match="spec.bogus"):
        podenv.field_value(POD, "spec.bogus", "n")


@pytest.mark.parametrize(
    "ref, expected",
    [
        ({"resource": "limits.cpu"}, "2"),  # 1.5 rounded up
        ({"resource": "limits.cpu", "divisor": "1m"}, "1500"),
        ({"resource": "requests.memory", "divisor": "1Mi"}, "1024"),  # requests default to limits
        ({"resource": "limits.memory", "containerName": "side"}, "4096"),  # node allocatable
    ],
)
def test_resource_field_ref(ref, expected):
    assert podenv.resource_value(POD, ref, "main", {"memory": "4096", "cpu": "2"}) == expected


def test_container_env_sources_and_order():
    container = {
        "name": "main",
        "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CM_"}],
        "env": [
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$(A)-$(CM_x)"},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
        ],
    }
    env = podenv.container_env(POD, container, lookup, node_name="n")
    assert env == {
        "CM_k": "plain",
        "CM_x": "y",
        "CM_b": "bytes",
        "A": "a",
        "B": "a-y",
        "S": "secret",
        "C": "plain",
        "N": "p",
    }


@pytest.mark.parametrize(
    "source, message",
    [
        ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
        ({"secretKeyRef": {"name": "s", "key": "other"}}, "couldn't find key other"),
        ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
    ],
)
def test_missing_sources_are_config_errors(source, message):
    container = {"name": "main", "env": [{"name": "X", "valueFrom": source}]}
    with pytest.raises(podenv.EnvError, match=message):
        podenv.container_env(POD, container, lookup, node_name="n")


@pytest.mark.parametrize(
    "container, argv",
    [
        ({"command": ["python", "-c"], "args": ["print($(X))"]}, ["python", "-c", "print(1)"]),
        ({"args": ["pyflyte-execute", "--x"]}, ["pyflyte-execute", "--x"]),
        ({"command": ["echo", "$$(X)"]}, ["echo", "$(X)"]),
    ],
)
def test_container_argv(container, argv):
    assert podenv.container_argv(container, {"X": "1"}) == argv


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            [
                "pyflyte-fast-execute",
                "--dest-dir",
                "/root",
                "--",
                "pyflyte-execute",
                "--dest-dir",
                "/x",
            ],
            [
                "pyflyte-fast-execute",
                "--dest-dir",
                ".",
                "--",
                "pyflyte-execute",
                "--dest-dir",
                "/x",
            ],
        ),
        (
            ["pyflyte-fast-execute", "--dest-dir", "sub"],
            ["pyflyte-fast-execute", "--dest-dir", "sub"],
        ),
        (
            ["/venv/bin/pyflyte-fast-execute", "--dest-dir", "/r"],
            ["/venv/bin/pyflyte-fast-execute", "--dest-dir", "."],
        ),
        (["pyflyte-execute", "--dest-dir", "/root"], ["pyflyte-execute", "--dest-dir", "/root"]),
        ([], []),
    ],
)
def test_fast_execute_destination_is_the_pod_working_directory(argv, expected):
    assert podenv.localize_fast_execute(argv) == expected


def test_container_without_command_or_args_cannot_start():
    with pytest.raises(ValueError, match="neither command nor args"):
        podenv.container_argv({"name": "c"}, {})


def c(state: str, code: int | None = None, restarted: bool = False) -> Container:
    container = Container("c", state=state, exit_code=code)
    if restarted:
        container.last_terminated = {"exitCode": 1}
    return container


OK, BAD = c(TERMINATED, 0), c(TERMINATED, 1)


@pytest.mark.parametrize(
    "init, main, policy, phase",
    [
        ([], [c(WAITING)], "Never", "Pending"),
        ([c(RUNNING)], [c(WAITING)], "Never", "Pending"),
        ([BAD], [c(WAITING)], "Never", "Failed"),
        ([BAD], [c(WAITING)], "OnFailure", "Pending"),  # the init container is restarted
        ([OK], [c(RUNNING)], "Never", "Running"),
        ([], [c(RUNNING), OK], "Never", "Running"),
        ([], [c(RUNNING), BAD], "Never", "Running"),
        ([], [OK, OK], "Never", "Succeeded"),
        ([], [OK, BAD], "Never", "Failed"),
        ([], [OK, OK], "OnFailure", "Succeeded"),
        ([], [OK, BAD], "OnFailure", "Running"),
        ([], [OK], "Always", "Running"),
        ([], [c(WAITING, restarted=True)], "OnFailure", "Running"),  # in back-off
        ([], [c(WAITING), c(RUNNING)], "Never", "Pending"),
    ],
)
def test_pod_phase(init, main, policy, phase):
    assert pod_phase(init, main, policy) == phase


def test_conditions_while_running_and_after():
    running = wanted_conditions([OK], [c(RUNNING)], "Running")
    assert [(t, s) for t, s, _, _ in running] == [
        ("PodScheduled", "True"),
        ("Initialized", "True"),
        ("ContainersReady", "True"),
        ("Ready", "True"),
    ]
    initializing = dict(
        (t, (s, r)) for t, s, r, _ in wanted_conditions([c(RUNNING)], [c(WAITING)], "Pending")
    )
    assert initializing["Initialized"] == ("False", "ContainersNotInitialized")
    assert initializing["Ready"] == ("False", "ContainersNotReady")
    done = dict((t, (s, r)) for t, s, r, _ in wanted_conditions([], [OK], "Succeeded"))
    assert done["Ready"] == ("False", "PodCompleted")


def test_condition_transition_time_changes_only_with_status():
    conditions = Conditions()
    first = conditions.render([("Ready", "False", "", "")], "t1")
    same = conditions.render([("Ready", "False", "ContainersNotReady", "m")], "t2")
    flipped = conditions.render([("Ready", "True", "", "")], "t3")
    assert [x[0]["lastTransitionTime"] for x in (first, same, flipped)] == ["t1", "t1", "t3"]
    assert first[0]["message"] is None  # null clears a stale message in a merge patch


def test_container_status_shapes():
    container = Container("main", image="img", state=TERMINATED, exit_code=3, reason="Error")
    container.pid, container.message = 42, "boom"
    container.started_at = container.finished_at = "2026-01-01T00:00:00Z"
    status = container.to_status()
    assert status["state"]["terminated"]["exitCode"] == 3
    assert status["state"]["terminated"]["message"] == "boom"
    assert status["containerID"] == "local://42"
    assert status["ready"] is False
    assert Container("w").to_status()["state"] == {"waiting": {"reason": "PodInitializing"}}


@pytest.mark.parametrize("returncode, code", [(0, 0), (3, 3), (-15, 143), (-9, 137)])
def test_exit_code_of(returncode, code):
    assert exit_code_of(returncode) == code


def test_log_tail_keeps_last_lines_within_bytes(tmp_path: Path):
    log = tmp_path / "c.log"
    log.write_text("".join(f"line {i}\n" for i in range(500)))
    tail = processes.log_tail(log)
    assert tail.splitlines()[-1] == "line 499"
    assert len(tail.splitlines()) == processes.TAIL_LINES
    assert processes.log_tail(tmp_path / "absent.log") == ""
    log.write_text("x" * 5000)
    assert len(processes.log_tail(log)) == processes.TAIL_BYTES


def test_termination_message_only_when_written_after_start(tmp_path: Path):
    message = tmp_path / "msg"
    message.write_text("m" * 5000)
    assert processes.termination_message(str(message), time.time() + 60) is None
    assert processes.termination_message(str(message), 0) == "m" * processes.MESSAGE_BYTES
    assert processes.termination_message("/dev/termination-log", 0) is None
    assert processes.termination_message(str(tmp_path / "absent"), 0) is None


def test_start_ticks_identify_a_live_process():
    assert processes.start_ticks(os.getpid()) == processes.start_ticks(os.getpid())
    assert processes.start_ticks(2**22 + 1) is None


def test_base_environment_puts_the_python_env_first(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/somewhere")  # the runner's own settings stay its own
    env = base_environment(RunnerOptions(extra_env={"X": "1"}))
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.prefix) / "bin")
    assert env["X"] == "1"
    other = base_environment(RunnerOptions(python_env=tmp_path))
    assert other["PATH"].startswith(f"{tmp_path / 'bin'}{os.pathsep}")
    assert "KUBECONFIG" not in base_environment(RunnerOptions())


def test_defaults():
    assert RunnerOptions().namespace_selector == "flyteadmin.io/managed=true"
    assert gcs_emulator_env("http://127.0.0.1:1") == {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1",
        "FSSPEC_GS_TOKEN": "anon",
        "NO_GCE_CHECK": "true",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
