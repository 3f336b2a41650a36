"""The runner's Node: registered once, kept Ready by a heartbeat (node status and Lease).

The local kube-controller-manager runs no node-lifecycle controller (see
``controlplane.CONTROLLERS``), so nothing would mark the Node NotReady or evict its Pods; the
heartbeat is still kept the way a kubelet keeps it, so that the Node looks healthy to anything
that checks (``kubectl get nodes``, a cluster that does run the controller).
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import threading
from typing import Any

from flyteadmin.core.kube import KubeError
from flyteadmin.devstack.podrunner.kubeapi import MERGE_PATCH, STRATEGIC_PATCH, KubeApi
from flyteadmin.devstack.podrunner.podenv import HOST_IP
from flyteadmin.devstack.podrunner.podstatus import now_rfc3339

log = logging.getLogger("flyteadmin.podrunner")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
RENEW_SECONDS = 10.0
STATUS_EVERY = 4  # node status every 4th lease renewal (40 s), as the kubelet's default
RUNNER_LABEL = "flyteadmin.io/podrunner"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def machine_capacity(max_pods: int) -> dict[str, str]:
    """This machine's CPUs and memory, and the Pod slots the runner offers."""
    memory_kib = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory_kib = int(line.split()[1])
    except OSError:
        pass
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib}Ki", "pods": str(max_pods)}


def node_body(name: str) -> dict[str, Any]:
    arch = _ARCH.get(platform.machine(), platform.machine())
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                RUNNER_LABEL: "true",
            },
        },
        "spec": {},
    }


def node_status(name: str, capacity: dict[str, str], now: str) -> dict[str, Any]:
    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            condition("Ready", "True", "KubeletReady", "flyteadmin pod runner is ready"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", ""),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", ""),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", ""),
        ],
        "addresses": [
            {"type": "InternalIP", "address": HOST_IP},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": platform.release(),
            "osImage": "flyteadmin local pod runner",
            "containerRuntimeVersion": "local://0",
            "kubeletVersion": "v0.0.0-flyteadmin-podrunner",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": _ARCH.get(platform.machine(), platform.machine()),
        },
    }


def _micro_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    """Registers the Node and renews its Lease and status until stopped."""

    def __init__(self, kube: KubeApi, name: str, capacity: dict[str, str]) -> None:
        self.kube = kube
        self.name = name
        self.capacity = capacity
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="podrunner-node", daemon=True)
        self._transition: str | None = None

    def register(self) -> None:
        try:
            self.kube.request("POST", "/api/v1/nodes", node_body(self.name))
        except KubeError as exc:
            if exc.status != 409:
                raise
            labels = node_body(self.name)["metadata"]["labels"]
            self.kube.request(
                "PATCH",
                f"/api/v1/nodes/{self.name}",
                {"metadata": {"labels": labels}},
                content_type=MERGE_PATCH,
            )
        self._update_status()
        self._renew_lease()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(10)

    def _update_status(self) -> None:
        status = node_status(self.name, self.capacity, now_rfc3339())
        if self._transition is None:
            self._transition = status["conditions"][0]["lastTransitionTime"]
        for condition in status["conditions"]:
            condition["lastTransitionTime"] = self._transition
        self.kube.request(
            "PATCH",
            f"/api/v1/nodes/{self.name}/status",
            {"status": status},
            content_type=STRATEGIC_PATCH,
        )

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _micro_time(),
        }
        try:
            self.kube.request(
                "PATCH", f"{path}/{self.name}", {"spec": spec}, content_type=MERGE_PATCH
            )
        except KubeError as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
                "spec": spec,
            }
            self.kube.request("POST", path, body)

    def _loop(self) -> None:
        beat = 0
        while not self._stop.wait(RENEW_SECONDS):
            beat += 1
            try:
                self._renew_lease()
                if beat % STATUS_EVERY == 0:
                    self._update_status()
            except KubeError as exc:
                log.warning("node %s: heartbeat failed: %s", self.name, exc)
