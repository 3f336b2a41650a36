"""`flyteadmin serve` and `flyteadmin operator` as the chart runs them: two processes, one
config file, against a real cluster; both stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import yaml
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core import kube
from flyteadmin.devstack.processes import free_ports
from tests.waiting import eventually

FLYTEADMIN = str(Path(sys.executable).parent / "flyteadmin")


def namespace_exists(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def test_serve_and_operator_commands(kubeconfig, kube_api, unique, tmp_path):
    store = f"e2e-{unique}"
    kube.apply_crds(kube_api)
    kube.ensure_namespace(kube_api, store)
    grpc_port, http_port, *metrics_ports = free_ports(4)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"grpc_port": grpc_port, "http_port": http_port},
                "kubernetes": {"namespace": store},
                "operator": {"namespace_template": f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"},
            }
        )
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "operator")}
    procs = {
        name: subprocess.Popen(
            [FLYTEADMIN, name, "--config", str(config), "--kubeconfig", str(kubeconfig)],
            stdout=open(logs[name], "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Each its own metrics port (in a cluster each pod has its own address).
            env={**os.environ, "FLYTEADMIN__METRICS__PORT": str(port)},
        )
        for name, port in zip(("serve", "operator"), metrics_ports, strict=True)
    }
    try:
        eventually(lambda: "ready" in logs["serve"].read_text(), "the API server", 60, 0.2)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            admin_pb2_grpc.AdminServiceStub(channel).RegisterProject(
                project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id="e2e", name="E"))
            )
        core = client.CoreV1Api(kube_api)
        for domain in ("development", "staging", "production"):
            name = f"e2e-{unique}-{domain}"
            eventually(lambda n=name: namespace_exists(core, n), f"namespace {name}", 60, 0.2)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                log = logs[name].read_text()
                raise AssertionError(f"{name} did not stop on SIGTERM:\n{log}") from None
        core = client.CoreV1Api(kube_api)
        for name in [store] + [
            f"e2e-{unique}-{d}" for d in ("development", "staging", "production")
        ]:
            if namespace_exists(core, name):
                core.delete_namespace(name)
    for name, proc in procs.items():
        assert proc.returncode == 0, logs[name].read_text()
