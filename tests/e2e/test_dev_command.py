"""`flyteadmin dev` as a user runs it: starts everything, serves, writes configs, stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from flytekit.clients.friendly import SynchronousFlyteClient
from flytekit.configuration import Config, PlatformConfig
from flytekit.models.core.identifier import Identifier, ResourceType

from flyteadmin.devstack.processes import free_ports, http_ok
from tests.pyflyte import register_sample_project

# The console script, as a user runs it.
FLYTEADMIN = str(Path(sys.executable).parent / "flyteadmin")


def start_dev(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, dict[str, str], Path]:
    """Start `flyteadmin dev` as a user would; return once it prints its ready line."""
    grpc_port, http_port = free_ports(2)
    log = tmp_path / f"dev-{grpc_port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flyteadmin",
                "dev",
                "--grpc-port",
                str(grpc_port),
                "--http-port",
                str(http_port),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
            start_new_session=True,
        )
    found: dict[str, str] = {"grpc": str(grpc_port), "http": str(http_port)}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log.read_text()
        if m := re.search(r"flytekit config: (\S+)", text):
            found["flytekit"] = m.group(1)
        if m := re.search(r"kubeconfig: (\S+)", text):
            found["kubeconfig"] = m.group(1)
        if re.search(r"ready: gRPC", text):
            return proc, found, log
        assert proc.poll() is None, f"dev exited before ready:\n{text}"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"dev not ready in time:\n{log.read_text()}")


def stop(proc: subprocess.Popen, log: Path) -> str:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    return log.read_text()


def test_dev_serves_flytekit_and_stops_everything(tmp_path):
    proc, found, log = start_dev(tmp_path, "--data-dir", str(tmp_path / "state"))
    try:
        config = yaml.safe_load(Path(found["flytekit"]).read_text())
        assert config["admin"] == {
            "endpoint": f"dns:///127.0.0.1:{found['grpc']}",
            "insecure": True,
        }
        client = SynchronousFlyteClient(Config.auto(found["flytekit"]).platform)
        projects, _ = client.list_projects_paginated(limit=10)
        assert [p.id for p in projects] == ["flytesnacks"]  # seeded
        assert http_ok(f"http://127.0.0.1:{found['http']}/healthcheck")
        # The user's first step: register a project with pyflyte, using the printed config.
        register_sample_project(found["flytekit"])
        remote_wf = client.get_workflow(
            Identifier(
                ResourceType.WORKFLOW,
                "flytesnacks",
                "development",
                "myproject.workflows.pipeline",
                "v1",
            )
        )
        assert remote_wf.closure.compiled_workflow.primary.template.nodes
        kubeconfig = yaml.safe_load(Path(found["kubeconfig"]).read_text())
        server = kubeconfig["clusters"][0]["cluster"]["server"]
    finally:
        out = stop(proc, log)
    assert proc.returncode == 0, out
    assert "stopped" in out
    port = int(server.rsplit(":", 1)[1])
    # kube-apiserver (and with it etcd and the controller manager) is gone.
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0

    # --data-dir keeps the cluster's state: the project created before is still there.
    proc, found, log = start_dev(
        tmp_path, "--data-dir", str(tmp_path / "state"), "--project", "other"
    )
    try:
        # (flytekit caches config files by path, so read the rewritten one ourselves.)
        admin = yaml.safe_load(Path(found["flytekit"]).read_text())["admin"]
        client = SynchronousFlyteClient(
            PlatformConfig(endpoint=admin["endpoint"], insecure=admin["insecure"])
        )
        projects, _ = client.list_projects_paginated(limit=10)
        assert sorted(p.id for p in projects) == ["flytesnacks", "other"]
    finally:
        stop(proc, log)
