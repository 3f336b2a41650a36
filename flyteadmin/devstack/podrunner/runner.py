"""The runner: watches Pods, schedules them onto its Node, admits them, finishes their deletion.

Threads: one list+watch per kind (Pods everywhere, managed Namespaces) feeding one queue; one
reconciler that owns all decisions (so its state needs no lock) and is level-triggered (every
event, the end of a worker and a periodic resync look at the latest Pod body, never at what
changed); the Node heartbeat; one ``PodWorker`` per admitted Pod.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyteadmin.core import kube as core_kube
from flyteadmin.core.kube import KubeError
from flyteadmin.core.namespaces import MANAGED
from flyteadmin.devstack.podrunner import processes
from flyteadmin.devstack.podrunner.kubeapi import STRATEGIC_PATCH, KubeApi, pod_path
from flyteadmin.devstack.podrunner.node import NodeAgent, machine_capacity
from flyteadmin.devstack.podrunner.podstatus import (
    TERMINATED,
    Conditions,
    Container,
    now_rfc3339,
    pod_status,
)
from flyteadmin.devstack.podrunner.worker import PodWorker, WorkerContext

log = logging.getLogger("flyteadmin.podrunner")

TERMINAL = ("Succeeded", "Failed")
WATCH_SECONDS = 300
ORPHAN_REASON = "RunnerRestarted"
ORPHAN_MESSAGE = (
    "the pod runner restarted while this Pod was running; its processes are gone "
    "(a development pod runner does not adopt processes of a previous instance)"
)
LOST_MESSAGE = "The container could not be located when the pod was terminated"  # the kubelet's
# Variables passed from the runner's own environment; everything else a container sees comes
# from the Pod, the options' extra_env and PATH.
PASSTHROUGH_ENV = (
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


@dataclass(frozen=True)
class RunnerOptions:
    node_name: str = "flyteadmin-local"
    """The Node the runner registers and binds Pods to."""
    python_env: Path | None = None
    """Prefix of the Python environment the containers run in (its ``bin/`` goes first on
    PATH); default: the runner's own, ``sys.prefix``. It needs flytekit for Flyte tasks."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """Added to every container's environment (the Pod's own variables win), e.g. the GCS
    emulator's settings (docs/podrunner.md)."""
    max_running: int = 4
    """Pods running at once; the others wait, Pending, in creation order."""
    namespace_selector: str = f"{MANAGED}=true"
    """Label selector of the namespaces whose unscheduled Pods the runner schedules to itself."""
    resync_seconds: float = 30.0
    """Every Pod is looked at again this often, whatever the watch says."""
    stop_grace_seconds: float = 5.0
    """On ``stop()``, SIGKILL follows SIGTERM after this long."""


def base_environment(options: RunnerOptions) -> dict[str, str]:
    prefix = Path(options.python_env) if options.python_env else Path(sys.prefix)
    path = os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin"
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{path}"
    env.update(options.extra_env)
    return env


def _created(pod: dict[str, Any]) -> tuple[str, str]:
    meta = pod["metadata"]
    return meta.get("creationTimestamp") or "", meta["name"]


class PodRunner:
    """Runs the Pods of the local control plane as local processes: a development kubelet.

    ``PodRunner(kubeconfig, workdir, RunnerOptions(...))``, then ``start()`` (registers the Node,
    lists, returns when the first lists are handled) and ``stop()`` (kills the Pods' processes
    and writes nothing more; a later runner on the same Node marks those Pods Failed).
    Container logs: ``pod_dir(namespace, name) / f"{container}.log"``.
    """

    def __init__(
        self, kubeconfig: str | Path, workdir: str | Path, options: RunnerOptions | None = None
    ) -> None:
        self.options = options or RunnerOptions()
        self.workdir = Path(workdir)
        self.node_name = self.options.node_name
        # Two watches hold a connection each; workers write status and read Secrets.
        pool_size = 4 + 2 * self.options.max_running
        self._api = core_kube.api_client(str(kubeconfig), pool_size=pool_size)
        self.kube = KubeApi(self._api)
        capacity = machine_capacity(max_pods=110)
        self._node = NodeAgent(self.kube, self.node_name, capacity)
        self._stopping = threading.Event()
        self._stopped = False
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._ctx = WorkerContext(
            kube=self.kube,
            node_name=self.node_name,
            base_env=base_environment(self.options),
            allocatable=capacity,
            lookup=self._lookup,
            stopping=self._stopping,
            on_done=lambda uid: self._queue.put(("done", uid)),
        )
        # Reconciler state (only the reconciler thread touches it).
        self._pods: dict[str, dict[str, Any]] = {}
        self._namespaces: set[str] = set()
        self._workers: dict[str, PodWorker] = {}
        self._waiting: dict[str, dict[str, Any]] = {}
        self._deleted_by_us: set[str] = set()
        self._listed = {"pods": threading.Event(), "namespaces": threading.Event()}
        self._threads = [
            threading.Thread(target=self._reconcile_loop, name="podrunner", daemon=True),
            threading.Thread(
                target=self._watch_loop,
                args=("pods", "/api/v1/pods", {}),
                name="podrunner-pods",
                daemon=True,
            ),
            threading.Thread(
                target=self._watch_loop,
                args=(
                    "namespaces",
                    "/api/v1/namespaces",
                    {"labelSelector": self.options.namespace_selector},
                ),
                name="podrunner-namespaces",
                daemon=True,
            ),
        ]
        self.error: BaseException | None = None

    # -- public ----------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Register the Node, start watching; return once the first lists are handled."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._node.register()
        except BaseException:
            self.stop()
            raise
        self._node.start()
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + timeout
        for name, listed in self._listed.items():
            if not listed.wait(max(0.0, deadline - time.monotonic())):
                self.stop()
                raise TimeoutError(f"the pod runner could not list {name} within {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        """Kill every Pod process (SIGTERM, then SIGKILL) and stop the threads. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self.kube.close_streams()
        self._queue.put(("stop", None))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        workers = list(self._workers.values())
        for worker in workers:
            worker.terminate(self.options.stop_grace_seconds)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._node.stop()
        self._api.close()

    @property
    def running(self) -> bool:
        """False once stopped, or if a thread of the runner died."""
        return not self._stopped and all(t.is_alive() for t in self._threads)

    def pod_dir(self, namespace: str, name: str) -> Path:
        """Where a Pod's logs (``<container>.log``), ``state.json`` and ``work/`` are."""
        return self.workdir / "pods" / namespace / name

    def running_count(self) -> int:
        return sum(not w.done.is_set() for w in list(self._workers.values()))

    # -- watches -----------------------------------------------------------------------------

    def _watch_loop(self, kind: str, path: str, query: dict[str, str]) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                listing = self.kube.get(path, **query)
                rv = listing["metadata"]["resourceVersion"]
                self._queue.put(("list", (kind, listing.get("items") or [])))
                backoff = 0.2
                while not self._stopping.is_set():
                    for event in self.kube.watch(path, rv, timeoutSeconds=WATCH_SECONDS, **query):
                        obj = event.get("object") or {}
                        rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                        if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                            self._queue.put(("event", (kind, event["type"], obj)))
            except KubeError as exc:
                if self._stopping.is_set():
                    return
                if exc.status != 410:  # 410: our version is too old, list again at once
                    log.warning("pod runner: watch of %s failed: %s", kind, exc)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
            except Exception:  # noqa: BLE001 - keep watching through surprises
                log.exception("pod runner: watch of %s failed", kind)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    # -- the reconciler ----------------------------------------------------------------------

    def _reconcile_loop(self) -> None:
        next_resync = time.monotonic() + self.options.resync_seconds
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=max(0.0, next_resync - time.monotonic()))
            except queue.Empty:
                item = ("resync", None)
            try:
                self._handle(*item)
                if item[0] == "resync":
                    next_resync = time.monotonic() + self.options.resync_seconds
                self._admit()
            except Exception as exc:  # noqa: BLE001 - the next event or resync tries again
                if self._stopping.is_set():
                    return
                self.error = exc
                log.exception("pod runner: reconcile failed")

    def _handle(self, what: str, payload: Any) -> None:
        if what == "list":
            kind, items = payload
            if kind == "pods":
                fresh = {p["metadata"]["uid"]: p for p in items}
                gone = set(self._pods) - set(fresh)
                self._pods = fresh
                for uid in gone | set(fresh):
                    self._reconcile(uid)
            else:
                self._namespaces = {n["metadata"]["name"] for n in items}
                self._reconcile_all()
            self._listed[kind].set()
        elif what == "event":
            kind, event_type, obj = payload
            if kind == "pods":
                uid = obj["metadata"]["uid"]
                if event_type == "DELETED":
                    self._pods.pop(uid, None)
                else:
                    self._pods[uid] = obj
                self._reconcile(uid)
            else:
                name = obj["metadata"]["name"]
                if event_type == "DELETED":
                    self._namespaces.discard(name)
                else:
                    self._namespaces.add(name)
                    self._reconcile_all(namespace=name)
        elif what == "done":
            self._reconcile(payload)
        elif what == "resync":
            self._reconcile_all()

    def _reconcile_all(self, namespace: str | None = None) -> None:
        for uid, pod in list(self._pods.items()):
            if namespace is None or pod["metadata"]["namespace"] == namespace:
                self._reconcile(uid)

    def _reconcile(self, uid: str) -> None:
        try:
            self._reconcile_pod(uid)
        except KubeError as exc:  # the next event or the resync tries again
            name = (self._pods.get(uid) or {}).get("metadata", {}).get("name", uid)
            log.warning("pod runner: pod %s: %s", name, exc)

    def _reconcile_pod(self, uid: str) -> None:
        pod = self._pods.get(uid)
        worker = self._workers.get(uid)
        if pod is None:  # gone from the API (force-deleted, or our own final delete)
            self._waiting.pop(uid, None)
            self._deleted_by_us.discard(uid)
            if worker is not None:
                if worker.done.is_set():
                    del self._workers[uid]
                else:
                    worker.terminate(0)
            return
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        node = spec.get("nodeName")
        if not node:
            if (
                meta["namespace"] in self._namespaces
                and not meta.get("deletionTimestamp")
                and status.get("phase") not in TERMINAL
            ):
                self._bind(pod)
            return
        if node != self.node_name:
            return
        if meta.get("deletionTimestamp"):
            self._waiting.pop(uid, None)
            if worker is not None and not worker.done.is_set():
                grace = meta.get("deletionGracePeriodSeconds")
                worker.terminate(30 if grace is None else grace)
                return  # its end comes back here as "done"
            if worker is None and status.get("phase") not in TERMINAL:
                self._kill_leftovers(pod)
            self._finish_deletion(pod)
            return
        if status.get("phase") in TERMINAL:
            return
        if worker is not None:
            if worker.done.is_set():
                worker.report_final()  # its last write failed or is not in the watch yet
            return
        if status.get("startTime"):
            self._mark_orphan(pod)
            return
        self._waiting[uid] = pod

    def _admit(self) -> None:
        running = self.running_count()
        for uid, pod in sorted(self._waiting.items(), key=lambda item: _created(item[1])):
            if running >= self.options.max_running or self._stopping.is_set():
                return
            del self._waiting[uid]
            pod_dir = self._prepare_dir(pod)
            worker = PodWorker(self._ctx, pod, pod_dir)
            self._workers[uid] = worker
            worker.start()
            running += 1

    # -- API actions -------------------------------------------------------------------------

    def _bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.kube.request("POST", pod_path(meta["namespace"], meta["name"], "binding"), body)
        except KubeError as exc:
            if exc.status not in (404, 409):  # gone, or bound meanwhile: the watch tells
                raise

    def _finish_deletion(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if meta["uid"] in self._deleted_by_us and meta.get("deletionGracePeriodSeconds") == 0:
            return  # done already; finalizers of others keep the object for now
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        try:
            self.kube.request("DELETE", pod_path(meta["namespace"], meta["name"]), body)
        except KubeError as exc:
            if exc.status not in (404, 409):
                raise
        self._deleted_by_us.add(meta["uid"])

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        plural = {"Secret": "secrets", "ConfigMap": "configmaps"}[kind]
        try:
            return self.kube.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    # -- Pods of a previous runner -----------------------------------------------------------

    def _prepare_dir(self, pod: dict[str, Any]) -> Path:
        meta = pod["metadata"]
        pod_dir = self.pod_dir(meta["namespace"], meta["name"])
        uid_file = pod_dir / "uid"
        if pod_dir.exists() and (not uid_file.exists() or uid_file.read_text() != meta["uid"]):
            shutil.rmtree(pod_dir)  # an earlier Pod of the same name
        (pod_dir / "work").mkdir(parents=True, exist_ok=True)
        uid_file.write_text(meta["uid"])
        return pod_dir

    def _kill_leftovers(self, pod: dict[str, Any]) -> None:
        """SIGKILL any process group a previous runner recorded for this Pod that still runs."""
        meta = pod["metadata"]
        state_file = self.pod_dir(meta["namespace"], meta["name"]) / "state.json"
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return
        if state.get("uid") != meta["uid"]:
            return
        for proc in (state.get("processes") or {}).values():
            pid, ticks = proc.get("pid"), proc.get("ticks")
            if pid and ticks is not None and processes.start_ticks(pid) == ticks:
                processes.signal_group(pid, signal.SIGKILL)

    def _mark_orphan(self, pod: dict[str, Any]) -> None:
        """A Pod a previous runner started: its processes are not ours to adopt. Kill what is
        left of them and report the Pod Failed, as a kubelet reports containers it lost."""
        self._kill_leftovers(pod)
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}

        def lost(specs: list[dict[str, Any]], statuses: list[dict[str, Any]]) -> list[Container]:
            by_name = {s.get("name"): s for s in statuses}
            out = []
            for c in specs:
                old = by_name.get(c["name"]) or {}
                container = Container(c["name"], c.get("image", ""))
                container.restart_count = old.get("restartCount", 0)
                state = old.get("state") or {}
                if "terminated" in state:
                    done = state["terminated"]
                    container.state, container.exit_code = TERMINATED, done.get("exitCode")
                    container.reason, container.message = done.get("reason"), done.get("message")
                    container.started_at = done.get("startedAt")
                    container.finished_at = done.get("finishedAt")
                elif "running" in state:
                    container.state, container.exit_code = TERMINATED, 137
                    container.reason, container.message = "ContainerStatusUnknown", LOST_MESSAGE
                    container.started_at = state["running"].get("startedAt")
                    container.finished_at = now_rfc3339()
                else:  # never started: stays waiting
                    waiting = state.get("waiting") or {}
                    container.reason = waiting.get("reason") or "PodInitializing"
                out.append(container)
            return out

        new_status = pod_status(
            lost(spec.get("initContainers") or [], status.get("initContainerStatuses") or []),
            lost(spec.get("containers") or [], status.get("containerStatuses") or []),
            phase="Failed",
            start_time=status["startTime"],
            conditions=Conditions(),
            reason=ORPHAN_REASON,
            message=ORPHAN_MESSAGE,
        )
        body = {"metadata": {"uid": meta["uid"]}, "status": new_status}
        try:
            self.kube.request(
                "PATCH",
                pod_path(meta["namespace"], meta["name"], "status"),
                body,
                content_type=STRATEGIC_PATCH,
            )
        except KubeError as exc:
            if exc.status not in (404, 409, 422):  # 422: the uid differs, a new Pod
                raise
