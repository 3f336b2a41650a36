"""``flyteadmin dev --clusters N``: N local data-plane clusters beside the control plane
(docs/multicluster.md).

Each is a Kubernetes control plane of its own (the same binaries as the control plane's, on
free ports) with the FlyteWorkflow CRD, a pod runner, and stock flytepropeller whose
``cluster-id`` is the cluster's name, so that its events claim the executions placed there. The
clusters are the first N of ``execution_clusters.clusters`` in the configuration (their labels,
weights and pools kept, their credentials replaced by the local ones), else ``cluster-1`` ..
``cluster-N``, each serving the label of its own name. The control plane's own cluster then
runs no executions: it gets neither propeller nor a pod runner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from flyteadmin.core import kube
from flyteadmin.core.config import ConfigError, ExecutionCluster, Settings
from flyteadmin.devstack.controlplane import ControlPlane, start_control_plane
from flyteadmin.devstack.processes import Service

if TYPE_CHECKING:  # imported when used (it loads the pod runner)
    from flyteadmin.devstack.podrunner import PodRunner


@dataclasses.dataclass
class DataPlane:
    cluster: ExecutionCluster
    """Its entry in ``execution_clusters.clusters``, with the local kubeconfig."""
    plane: ControlPlane
    workdir: Path
    runner: Service | PodRunner | None = None  # a child process, or in this process
    """Its PodRunner, when Pods run locally."""

    @property
    def name(self) -> str:
        return self.cluster.name

    @property
    def pod_logs(self) -> Path | None:
        """Where its pod runner writes container logs (None: no pod runner)."""
        return self.workdir / "podrunner" / "pods" if self.runner is not None else None

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.plane.stop()


def planned_clusters(count: int, settings: Settings) -> list[ExecutionCluster]:
    """The ``count`` clusters to start, from the configuration or named cluster-<i>."""
    configured = settings.execution_clusters.clusters
    if count < 1:
        raise ConfigError(f"--clusters {count}: at least one data-plane cluster")
    if len(configured) > count:
        raise ConfigError(
            f"--clusters {count}: the configuration lists {len(configured)} execution "
            "clusters; start at least as many"
        )
    planned = list(configured)
    for index in range(len(configured), count):
        name = f"cluster-{index + 1}"
        planned.append(ExecutionCluster(name=name, labels=(name,)))
    return planned


def start_data_planes(
    clusters: list[ExecutionCluster],
    workdir: Path,
    *,
    pod_runner: bool,
    pod_env: Mapping[str, str],
    log: Callable[[str], None],
    durable: bool | None = None,
) -> list[DataPlane]:
    """Start every cluster (stopping those already started if one fails). ``durable``: etcd
    fsyncs (``start_control_plane``; default: yes, each has a data directory)."""
    planes: list[DataPlane] = []
    try:
        for cluster in clusters:
            log(f"starting data-plane cluster {cluster.name}")
            home = workdir / "clusters" / cluster.name
            plane = start_control_plane(home / "k8s", durable=durable, log=log)
            local = dataclasses.replace(
                cluster, kubeconfig=str(plane.kubeconfig), context="", in_cluster=False
            )
            data_plane = DataPlane(local, plane, home)
            planes.append(data_plane)
            api = kube.api_client(str(plane.kubeconfig))
            try:
                kube.apply_crds(api, flyteworkflow=True, store=False)
            finally:
                api.close()
            if pod_runner:
                from flyteadmin.devstack.podrunner import PodRunner, RunnerOptions

                runner = PodRunner(
                    plane.kubeconfig, home / "podrunner", RunnerOptions(extra_env=dict(pod_env))
                )
                runner.start()
                data_plane.runner = runner
            labels = ", ".join(cluster.labels) or "none"
            log(f"cluster {cluster.name}: kubeconfig {plane.kubeconfig}, labels {labels}")
    except BaseException:
        stop_data_planes(planes)
        raise
    return planes


def with_data_planes(settings: Settings, planes: list[DataPlane]) -> Settings:
    """``settings`` whose execution clusters are ``planes``."""
    clusters = tuple(p.cluster for p in planes)
    return dataclasses.replace(
        settings,
        execution_clusters=dataclasses.replace(settings.execution_clusters, clusters=clusters),
    )


def stop_data_planes(planes: list[DataPlane]) -> None:
    for plane in reversed(planes):
        plane.stop()
