"""The control plane the end-to-end suite runs against, in one of two modes.

``dev`` (the default, what CI runs): `flyteadmin dev` as a user starts it, on its own local
control plane, or on the cluster FLYTEADMIN_E2E_KUBECONFIG names (kind, with Pods). The suite
gives it a config with a cluster resource template (a ResourceQuota), so that path is covered.

``helm`` (FLYTEADMIN_E2E_MODE=helm; needs FLYTEADMIN_E2E_KUBECONFIG): the chart already
installed in that cluster (`make e2e-kind` does it, docs/e2e.md). The suite reads the release's
ConfigMaps for what it needs to know (store namespace, namespace template, blob store, cluster
resource templates), reaches the API server through `kubectl port-forward`, and, when the blob
store is an in-cluster GCS emulator whose public endpoint is on 127.0.0.1, forwards that too, so
the signed URLs pyflyte receives work from this machine.

Plain KUBECONFIG is never read, as in the rest of the tests: a developer's everyday cluster is
only used when named explicitly.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from flyteadmin.core.namespaces import namespace_for
from flyteadmin.devstack.kubetools import kubectl_path
from flyteadmin.devstack.processes import free_ports
from tests.devstack import start_dev, stop

MODE_ENV = "FLYTEADMIN_E2E_MODE"
KUBECONFIG_ENV = "FLYTEADMIN_E2E_KUBECONFIG"
RELEASE_ENV = "FLYTEADMIN_E2E_RELEASE"  # helm mode: release name (default flyteadmin)
NAMESPACE_ENV = "FLYTEADMIN_E2E_NAMESPACE"  # helm mode: release namespace (default flyte)
PROJECT = "flytesnacks"
DOMAIN = "development"

# The template `flyteadmin dev` gets in dev mode: a quota per project-domain namespace, with a
# value from the config's template data.
DEV_QUOTA = """apiVersion: v1
kind: ResourceQuota
metadata:
  name: e2e-quota
  namespace: {{ namespace }}
spec:
  hard:
    pods: "{{ maxPods }}"
"""
DEV_CONFIG = {
    "cluster_resources": {"resync_seconds": 2, "template_data": {"maxPods": "50"}},
}
_VARIABLE = re.compile(r"{{\s*(\w+)\s*}}")


@dataclass
class Stack:
    """What the tests need to know of a running control plane."""

    mode: str
    flytekit_config: Path
    kubeconfig: Path
    store_namespace: str
    namespace_template: str
    domains: tuple[str, ...]
    templates: dict[str, str] = field(default_factory=dict)
    """The cluster resource templates (file name -> text); empty when none are configured."""
    metrics_urls: tuple[str, ...] = ()
    """/metrics pages of the control plane's processes (dev: one; helm: API server, operator)."""

    def namespace(self, project: str = PROJECT, domain: str = DOMAIN) -> str:
        return namespace_for(self.namespace_template, project, domain)

    def quotas(self, project: str, domain: str) -> list[str]:
        """Names of the ResourceQuotas the templates make in that project-domain's namespace."""
        reserved = {"namespace": self.namespace(project, domain), "project": project}
        reserved["domain"] = domain
        names = []
        for text in self.templates.values():
            # Reserved variables as the operator fills them; any other one as a placeholder.
            filled = _VARIABLE.sub(lambda m: reserved.get(m.group(1), "x"), text)
            for doc in yaml.safe_load_all(filled):
                if isinstance(doc, dict) and doc.get("kind") == "ResourceQuota":
                    names.append(doc["metadata"]["name"])
        return names


def selected_mode() -> str:
    mode = os.environ.get(MODE_ENV, "dev")
    if mode not in ("dev", "helm"):
        raise ValueError(f"{MODE_ENV}={mode!r}: expected dev or helm")
    return mode


@contextlib.contextmanager
def running_stack(tmp_path: Path) -> Iterator[Stack]:
    """The stack of the selected mode, up for the duration of the ``with``."""
    existing = os.environ.get(KUBECONFIG_ENV, "")
    if selected_mode() == "helm":
        if not existing:
            raise ValueError(f"{MODE_ENV}=helm needs {KUBECONFIG_ENV} (the cluster with the chart)")
        with helm_stack(Path(existing), tmp_path) as stack:
            yield stack
    else:
        with dev_stack(tmp_path, Path(existing) if existing else None) as stack:
            yield stack


# ------------------------------------------------------------------------------ dev mode


@contextlib.contextmanager
def dev_stack(tmp_path: Path, kubeconfig: Path | None) -> Iterator[Stack]:
    templates_dir = tmp_path / "templates"
    templates_dir.mkdir()
    (templates_dir / "quota.yaml").write_text(DEV_QUOTA)
    config = yaml.safe_load(yaml.safe_dump(DEV_CONFIG))
    config["cluster_resources"]["templates_dir"] = str(templates_dir)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    # Two API-server workers: every e2e flow then also crosses workers (read-your-writes).
    extra = ["--config", str(config_file), "--project", PROJECT, "--workers", "2"]
    if kubeconfig is not None:
        extra += ["--kubeconfig", str(kubeconfig)]
    proc, found, log = start_dev(tmp_path, *extra)
    try:
        from flyteadmin.core.config import load_settings

        settings = load_settings(config_file, env={})
        # Seeded by `--project`; registering it again (as helm mode does) is harmless.
        ensure_project(Path(found["flytekit"]), PROJECT)
        yield Stack(
            mode="dev",
            flytekit_config=Path(found["flytekit"]),
            kubeconfig=Path(found["kubeconfig"]),
            store_namespace=settings.kubernetes.namespace,
            namespace_template=settings.operator.namespace_template,
            domains=settings.domain_ids(),
            templates={"quota.yaml": DEV_QUOTA},
            metrics_urls=(found["metrics"],),
        )
    finally:
        out = stop(proc, log)
    assert proc.returncode == 0, out


# ------------------------------------------------------------------------------ helm mode


def kubectl(kubeconfig: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(kubectl_path()), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
    return proc.stdout


@dataclass(frozen=True)
class Release:
    """An installed chart, as read from the cluster."""

    namespace: str
    fullname: str
    grpc_port: int
    config: dict[str, Any]
    templates: dict[str, str]


def find_release(kubeconfig: Path, release: str, namespace: str) -> Release:
    """The release's API server Service, its config and its cluster resource templates."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=api-server"
    services = yaml.safe_load(
        kubectl(kubeconfig, "get", "services", "-n", namespace, "-l", selector, "-o", "yaml")
    )["items"]
    if len(services) != 1:
        raise AssertionError(f"release {release} in {namespace}: {len(services)} API services")
    service = services[0]
    fullname = service["metadata"]["name"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    config_map = yaml.safe_load(
        kubectl(kubeconfig, "get", "configmap", f"{fullname}-config", "-n", namespace, "-o", "yaml")
    )
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    templates: dict[str, str] = {}
    if config.get("cluster_resources", {}).get("templates_dir"):
        found = kubectl(
            kubeconfig, "get", "configmap", f"{fullname}-cluster-resources", "-n", namespace,
            "-o", "yaml", "--ignore-not-found",
        )  # fmt: skip
        templates = (yaml.safe_load(found) or {}).get("data") or {}
    return Release(namespace, fullname, ports["grpc"], config, templates)


def emulator_forward(storage: dict[str, Any]) -> tuple[str, str, int, int] | None:
    """(service, namespace, local port, service port) when the blob store is an in-cluster
    emulator (``endpoint`` a Service's DNS name) whose signed URLs point at 127.0.0.1."""
    endpoint = urlsplit(storage.get("endpoint") or "")
    public = urlsplit(storage.get("public_endpoint") or "")
    host_parts = (endpoint.hostname or "").split(".")
    if len(host_parts) < 3 or host_parts[2] != "svc":
        return None
    if public.hostname not in ("127.0.0.1", "localhost") or not public.port:
        return None
    return host_parts[0], host_parts[1], public.port, endpoint.port or 80


@contextlib.contextmanager
def port_forward(
    kubeconfig: Path, namespace: str, target: str, local: int, remote: int | str, log: Path
) -> Iterator[None]:
    """`kubectl port-forward` on 127.0.0.1 until the ``with`` ends."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(kubectl_path()), f"--kubeconfig={kubeconfig}", "port-forward", "-n",
                namespace, "--address", "127.0.0.1", target, f"{local}:{remote}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "Forwarding from" not in log.read_text():
            assert proc.poll() is None, f"port-forward {target} exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"port-forward {target}:\n{log.read_text()}"
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def helm_stack(kubeconfig: Path, tmp_path: Path) -> Iterator[Stack]:
    release = find_release(
        kubeconfig,
        os.environ.get(RELEASE_ENV, "flyteadmin"),
        os.environ.get(NAMESPACE_ENV, "flyte"),
    )
    local, api_metrics, operator_metrics = free_ports(3)
    with contextlib.ExitStack() as forwards:
        forwards.enter_context(
            port_forward(
                kubeconfig,
                release.namespace,
                f"svc/{release.fullname}",
                local,
                release.grpc_port,
                tmp_path / "port-forward-api.log",
            )
        )
        # The metrics ports of the API server and of the operator (each on its own Service).
        for local_port, service in (
            (api_metrics, release.fullname),
            (operator_metrics, f"{release.fullname}-operator-metrics"),
        ):
            forwards.enter_context(
                port_forward(
                    kubeconfig, release.namespace, f"svc/{service}", local_port, "metrics",
                    tmp_path / f"port-forward-{service}.log",
                )
            )  # fmt: skip
        if emulator := emulator_forward(release.config.get("storage", {})):
            service, namespace, public_port, port = emulator
            forwards.enter_context(
                port_forward(
                    kubeconfig,
                    namespace,
                    f"svc/{service}",
                    public_port,
                    port,
                    tmp_path / "port-forward-gcs.log",
                )
            )
        flytekit_config = tmp_path / "flytekit.yaml"
        flytekit_config.write_text(
            yaml.safe_dump({"admin": {"endpoint": f"dns:///127.0.0.1:{local}", "insecure": True}})
        )
        ensure_project(flytekit_config, PROJECT)
        config = release.config
        yield Stack(
            mode="helm",
            flytekit_config=flytekit_config,
            kubeconfig=kubeconfig,
            store_namespace=config["kubernetes"]["namespace"],
            namespace_template=config["operator"]["namespace_template"],
            domains=tuple(d["id"] for d in config["domains"]),
            templates=release.templates,
            metrics_urls=tuple(
                f"http://127.0.0.1:{p}/metrics" for p in (api_metrics, operator_metrics)
            ),
        )


def ensure_project(flytekit_config: Path, project: str) -> None:
    """Register the project unless it exists (a helm-installed API server seeds none)."""
    from flytekit.clients.friendly import SynchronousFlyteClient
    from flytekit.configuration import PlatformConfig
    from flytekit.exceptions.user import FlyteEntityAlreadyExistsException
    from flytekit.models.project import Project

    admin = yaml.safe_load(flytekit_config.read_text())["admin"]
    client = SynchronousFlyteClient(
        PlatformConfig(endpoint=admin["endpoint"], insecure=admin["insecure"])
    )
    with contextlib.suppress(FlyteEntityAlreadyExistsException):
        client.register_project(Project(id=project, name=project, description="e2e"))
