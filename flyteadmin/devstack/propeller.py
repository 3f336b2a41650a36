"""Stock flytepropeller beside ``flyteadmin dev``: its configuration file, and the process.

Propeller runs the FlyteWorkflow objects our operator creates. It talks to our API server for
events and launch plans (insecure gRPC on 127.0.0.1), to the local control plane through the
dev stack's kubeconfig, and to the GCS emulator through flytestdlib's ``stow``/``google``
store: the Go GCS client honours ``STORAGE_EMULATOR_HOST``, which then also skips auth (the
service-account key in the config only satisfies stow's required setting). That variable and
gcsfs' emulator settings go into every task Pod through the k8s plugin's default environment,
so flytekit in the Pod reaches the emulator too. See docs/propeller.md.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from flyteadmin.devstack.gcs import GcsEmulator
from flyteadmin.devstack.podrunner.gcs_env import gcs_emulator_env
from flyteadmin.devstack.processes import Child, ProcessGroup, Service, free_ports, http_ok

# The GCS project id stow requires; the emulator ignores it.
PROJECT = "flyteadmin-dev"
SCOPES = "https://www.googleapis.com/auth/devstorage.full_control"


@dataclass(frozen=True)
class PropellerSetup:
    binary: Path
    kubeconfig: str
    admin_endpoint: str
    """``127.0.0.1:<port>`` of our gRPC API (insecure)."""
    gcs_endpoint: str
    """``http://127.0.0.1:<port>`` of the GCS emulator."""
    bucket: str
    credentials_file: Path
    workdir: Path
    metadata_prefix: str = "metadata/propeller"
    raw_output_prefix: str = ""
    """Where tasks write raw outputs when the execution names no place; "" -> gs://bucket/raw."""
    limit_namespace: str = "all"
    """Propeller's ``limit-namespace``: our operator creates FlyteWorkflows in one namespace per
    project and domain, so the dev stack watches all of them."""
    workers: int = 4
    extra_pod_env: dict[str, str] = field(default_factory=dict)
    admin_auth: dict[str, str] = field(default_factory=dict)
    """Extra ``admin`` settings (client-credentials flow) when the API server requires tokens."""
    pod_logs_dir: Path | None = None
    """The pod runner's ``pods/`` folder: task log links become ``file://`` URIs of the
    containers' log files there (``PodRunner.pod_dir``); None keeps propeller's default link."""
    cluster_id: str = ""
    """Propeller's ``cluster-id``, the ``producer_id`` of its events: the execution cluster's
    name when it runs a data-plane cluster; empty keeps propeller's default (``propeller``)."""


def emulator_host(gcs_endpoint: str) -> str:
    """STORAGE_EMULATOR_HOST: the endpoint URL itself (Go's client and gcsfs both take a URL;
    the pod runner sets the same form)."""
    parts = urlsplit(gcs_endpoint)
    return f"{parts.scheme or 'http'}://{parts.netloc}"


def render_config(setup: PropellerSetup, prof_port: int) -> dict[str, Any]:
    """Propeller's configuration (its loader is strict: every key here must exist upstream)."""
    raw_prefix = setup.raw_output_prefix or f"gs://{setup.bucket}/raw"
    # What flytekit (gcsfs) in a task Pod needs to use the emulator (docs/podrunner.md).
    pod_env = {**gcs_emulator_env(emulator_host(setup.gcs_endpoint)), **setup.extra_pod_env}
    config: dict[str, Any] = {
        "propeller": {
            "kube-config": setup.kubeconfig,
            "limit-namespace": setup.limit_namespace,
            "workers": setup.workers,
            "workflow-reeval-duration": "5s",
            "downstream-eval-duration": "5s",
            "metadata-prefix": setup.metadata_prefix,
            "rawoutput-prefix": raw_prefix,
            "prof-port": prof_port,
            "leader-election": {"enabled": False},
            "enable-admin-launcher": True,
            "create-flyteworkflow-crd": False,  # the dev stack installs it
            "publish-k8s-events": False,
            "max-ttl-hours": 23,
            # A round that fails (e.g. the blob store restarting) is retried after a backoff:
            # upstream's default base delay is 0, so its 10 system retries were spent within
            # a second and a short blob-store outage failed the workflow. 0.1 s doubling to
            # 60 s spreads them over minutes; a successful round resets it.
            "queue": {
                "type": "batch",
                "batching-interval": "1s",
                "batch-size": -1,
                "queue": {
                    "type": "maxof",
                    "base-delay": "100ms",
                    "max-delay": "60s",
                    "rate": 1000,
                    "capacity": 10000,
                },
                "sub-queue": {"type": "bucket", "rate": 1000, "capacity": 10000},
            },
        },
        "admin": {
            "endpoint": f"dns:///{setup.admin_endpoint}",
            "insecure": True,
            **setup.admin_auth,
        },
        "event": {"type": "admin", "rate": 500, "capacity": 1000},
        "catalog-cache": {"type": "noop"},  # no datacatalog in the dev stack
        "storage": {
            "type": "stow",
            "container": setup.bucket,
            "stow": {
                "kind": "google",
                "config": {
                    "json": setup.credentials_file.read_text(),
                    "project_id": PROJECT,
                    "scopes": SCOPES,
                },
            },
            "limits": {"maxDownloadMBs": 100},
            # Propeller reads an object's offloaded closure at every round
            # (operator.use_offloaded_workflow_closure): from memory, for closures up to
            # 1/1024 of this (32 KiB). Blobs it reads are immutable.
            "cache": {"max_size_mbs": 32},
        },
        "tasks": {
            "task-plugins": {
                "enabled-plugins": ["container", "sidecar", "k8s-array", "echo"],
                "default-for-task-types": {
                    "container": "container",
                    "sidecar": "sidecar",
                    "container_array": "k8s-array",
                },
            }
        },
        # A list of one-entry maps, as upstream's samples write it: viper lowercases the keys
        # of a plain mapping (STORAGE_EMULATOR_HOST would reach the Pod as
        # storage_emulator_host), but not inside a list.
        "plugins": {
            "k8s": {
                "default-env-vars": [{name: value} for name, value in pod_env.items()],
                "inject-finalizer": True,
            }
        },
        "logger": {"level": 4, "show-source": False},
    }
    if setup.cluster_id:
        config["propeller"]["cluster-id"] = setup.cluster_id
    if setup.pod_logs_dir is not None:
        # Propeller's default link is a Kubernetes dashboard on localhost:30082; in the dev
        # stack the log is a file the pod runner writes.
        template = f"file://{setup.pod_logs_dir}/{{{{ .namespace }}}}/{{{{ .podName }}}}/"
        template += "{{ .containerName }}.log"
        config["plugins"]["logs"] = {
            "kubernetes-enabled": False,
            "templates": [
                {
                    "displayName": "Pod log (local file)",
                    "templateUris": [template],
                    "showWhilePending": True,
                }
            ],
        }
    return config


def propeller_env(setup: PropellerSetup) -> dict[str, str]:
    return {**os.environ, "STORAGE_EMULATOR_HOST": emulator_host(setup.gcs_endpoint)}


@dataclass
class Propeller:
    service: Service
    """The process, restartable as it was started (same config file and port)."""
    config_path: Path
    prof_port: int

    @property
    def child(self) -> Child:
        assert self.service.child is not None
        return self.service.child

    @property
    def log_path(self) -> Path:
        return self.child.log_path

    def alive(self) -> bool:
        return self.service.alive()

    def stop(self) -> None:
        self.child.stop()


def start_propeller(
    setup: PropellerSetup, processes: ProcessGroup | None = None, timeout: float = 60.0
) -> Propeller:
    """Write the config into ``setup.workdir``, start propeller, wait for its health check."""
    group = processes or ProcessGroup(setup.workdir / "logs")
    (prof_port,) = free_ports(1)
    config_path = setup.workdir / "propeller.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.touch(mode=0o600)  # it carries the (throwaway) service-account key
    config_path.write_text(yaml.safe_dump(render_config(setup, prof_port), sort_keys=False))
    service = Service(
        "flytepropeller",
        [str(setup.binary), "--config", str(config_path)],
        propeller_env(setup),
        functools.partial(http_ok, f"http://127.0.0.1:{prof_port}/healthcheck"),
        group,
        timeout=timeout,
    )
    service.start()
    return Propeller(service, config_path, prof_port)


def dev_setup(
    *,
    workdir: Path,
    kubeconfig: str,
    grpc_port: int,
    blobs: GcsEmulator,
    credentials: Any = None,
    pod_logs_dir: Path | None = None,
    log: Callable[[str], None],
) -> PropellerSetup:
    """The dev stack's propeller: ``$FLYTEPROPELLER_BINARY``, the cached build, or a build now
    (``PropellerBuildError`` says what to do when none is possible). ``pod_logs_dir``: the dev
    stack's pod runner's ``pods/`` folder, if it runs one."""
    from flyteadmin.devstack.propeller_build import ensure_binary

    binary = ensure_binary(log=log)
    auth = {}
    if credentials is not None:  # same client-credentials flow as the flytekit config
        auth = {
            "authType": "ClientSecret",
            "clientId": credentials.client_id,
            "clientSecretLocation": str(credentials.secret_file),
        }
    return PropellerSetup(
        binary=binary,
        kubeconfig=kubeconfig,
        admin_endpoint=f"127.0.0.1:{grpc_port}",
        gcs_endpoint=blobs.endpoint,
        bucket=blobs.bucket,
        credentials_file=blobs.credentials_file,
        workdir=workdir / "propeller",
        admin_auth=auth,
        pod_logs_dir=pod_logs_dir,
    )
