"""One admitted Pod: its init containers in order, then its containers together, and its status.

A ``PodWorker`` owns a Pod from admission to its last status write. Init containers run one
after the other in the worker's thread; regular containers each run in a thread of their own
(which forks the process and waits for it, so PR_SET_PDEATHSIG stays armed). Every state change
is written through ``pods/status``. ``terminate`` stops everything: SIGTERM to each process group,
SIGKILL when the grace period is over.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyteadmin.core.kube import KubeError
from flyteadmin.devstack.podrunner import podenv, processes
from flyteadmin.devstack.podrunner.kubeapi import STRATEGIC_PATCH, KubeApi, pod_path
from flyteadmin.devstack.podrunner.podstatus import (
    RUNNING,
    TERMINATED,
    WAITING,
    Conditions,
    Container,
    now_rfc3339,
    pod_phase,
    pod_status,
)

log = logging.getLogger("flyteadmin.podrunner")

POLL_SECONDS = 0.2
CONFIG_RETRY_SECONDS = 2.0
BACKOFF_START, BACKOFF_MAX = 1.0, 60.0  # restart back-off (the kubelet's: 10 s doubling to 5 min)
STATUS_ATTEMPTS = 5
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


@dataclass(frozen=True)
class WorkerContext:
    """What every worker shares with the runner."""

    kube: KubeApi
    node_name: str
    base_env: Mapping[str, str]
    allocatable: Mapping[str, str]
    lookup: podenv.Lookup
    stopping: threading.Event  # the runner is stopping: kill, but write no more status
    on_done: Callable[[str], None]


def exit_code_of(returncode: int) -> int:
    """Popen's -N (killed by signal N) as a container runtime reports it: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class PodWorker:
    def __init__(self, ctx: WorkerContext, pod: dict[str, Any], pod_dir: Path) -> None:
        self.ctx = ctx
        self.pod = pod
        meta, spec = pod["metadata"], pod["spec"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir = pod_dir
        self.workdir = pod_dir / "work"
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        self._specs = {c["name"]: c for c in (spec.get("initContainers") or [])}
        self._specs.update({c["name"]: c for c in spec.get("containers") or []})
        # The kubelet's waiting reasons before a container starts.
        first = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        self.init = [
            Container(c["name"], c.get("image", ""), reason=first)
            for c in spec.get("initContainers") or []
        ]
        self.main = [
            Container(c["name"], c.get("image", ""), reason=first)
            for c in spec.get("containers") or []
        ]
        deadline = spec.get("activeDeadlineSeconds")
        self._deadline = time.monotonic() + deadline if deadline else None
        self.start_time = now_rfc3339()
        self._conditions = Conditions()
        self._last_phase = "Pending"
        self._lock = threading.Lock()  # the containers' state and the process table
        self._write_lock = threading.Lock()  # status writes, in order
        self._state_lock = threading.Lock()  # state.json
        self._popens: dict[str, subprocess.Popen] = {}
        self._killed = threading.Event()
        self._kill_by = 0.0
        self._kill_reason: tuple[str, str] | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def terminate(self, grace: float, reason: tuple[str, str] | None = None) -> None:
        """Stop the Pod's processes: SIGTERM now, SIGKILL after ``grace`` seconds. Idempotent;
        a later call can only shorten the grace period."""
        with self._lock:
            kill_by = time.monotonic() + max(0.0, grace)
            if self._killed.is_set():
                self._kill_by = min(self._kill_by, kill_by)
                return
            self._kill_by = kill_by
            self._kill_reason = reason
            self._killed.set()
            popens = list(self._popens.values())
        for popen in popens:
            processes.signal_group(popen.pid, signal.SIGTERM)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def report_final(self) -> None:
        """Write the final status again (one attempt): the runner calls it while the watch does
        not show a terminal phase for a finished worker."""
        self._write_status(final=True, attempts=1)

    # -- the Pod's life ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._write_status()
            if all(self._run_container(c, init=True) for c in self.init):
                threads = [
                    threading.Thread(
                        target=self._run_main, args=(c,), name=f"pod-{self.name}-{c.name}"
                    )
                    for c in self.main
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            self._write_status(final=True)
        except Exception:  # noqa: BLE001 - a worker must always finish and report
            log.exception("pod %s/%s: worker failed", self.namespace, self.name)
            self.terminate(0)
        finally:
            self.done.set()
            self.ctx.on_done(self.uid)

    def _run_main(self, c: Container) -> None:
        try:
            self._run_container(c)
        except Exception as exc:  # noqa: BLE001 - the container fails, the Pod carries on
            log.exception("pod %s/%s: container %s failed", self.namespace, self.name, c.name)
            with self._lock:
                popen = self._popens.pop(c.name, None)
            if popen is not None:  # never leave a process behind untracked
                processes.signal_group(popen.pid, signal.SIGKILL)
                popen.wait()
            self._terminated(c, 128, "StartError", f"the pod runner failed: {exc!r}")

    def _check_deadline(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds")
            self.terminate(30 if grace is None else grace, ("DeadlineExceeded", DEADLINE_MESSAGE))

    def _wait_or_killed(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the Pod is being killed."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._check_deadline()
            if self._killed.wait(min(POLL_SECONDS, max(0.0, end - time.monotonic()))):
                return True
        return self._killed.is_set()

    def _configure(self, c: Container) -> tuple[list[str], dict[str, str]] | None:
        """argv and env, retrying a missing Secret/ConfigMap as the kubelet does; None if killed."""
        spec = self._specs[c.name]
        while not self._killed.is_set():
            try:
                pod_env = podenv.container_env(
                    self.pod,
                    spec,
                    self.ctx.lookup,
                    node_name=self.ctx.node_name,
                    allocatable=self.ctx.allocatable,
                )
                argv = podenv.localize_fast_execute(podenv.container_argv(spec, pod_env))
                return argv, {**self.ctx.base_env, **pod_env}
            except (podenv.EnvError, KubeError) as exc:
                self._set(c, state=WAITING, reason="CreateContainerConfigError", message=str(exc))
            if self._wait_or_killed(CONFIG_RETRY_SECONDS):
                return None
        return None

    def _run_container(self, c: Container, init: bool = False) -> bool:
        """Run ``c`` to its end, with the restarts its policy asks for; True if it succeeded."""
        backoff = BACKOFF_START
        while True:
            try:
                configured = self._configure(c)
            except ValueError as exc:  # no command at all: a start error, like a bad image
                configured = None
                self._terminated(c, 128, "StartError", str(exc))
            if configured is None:
                return c.succeeded()
            self._attempt(c, *configured)
            if self._killed.is_set():
                return False
            again = self.restart_policy == "Always" and not init
            again = again or (not c.succeeded() and self.restart_policy != "Never")
            if not again:
                return c.succeeded()
            with self._lock:
                c.last_terminated = c.terminated()
                c.restart_count += 1
            self._set(
                c, state=WAITING, reason="CrashLoopBackOff", message=f"back-off {backoff:.0f}s"
            )
            if self._wait_or_killed(backoff):
                return False
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _attempt(self, c: Container, argv: list[str], env: dict[str, str]) -> None:
        spec = self._specs[c.name]
        log_path = self.dir / f"{c.name}.log"
        not_before = time.time() - 0.05  # file times are coarser than time.time()
        try:
            popen = processes.launch(argv, env, self.workdir, log_path)
        except OSError as exc:
            self._terminated(c, 128, "StartError", f"cannot start {argv[0]!r}: {exc}")
            return
        with self._lock:
            self._popens[c.name] = popen
            c.pid, c.state, c.reason, c.message = popen.pid, RUNNING, "", ""
            c.started_at, c.finished_at, c.exit_code = now_rfc3339(), None, None
            killed = self._killed.is_set()
        self._record_pids()
        if killed:  # terminate() ran before this process was in the table
            processes.signal_group(popen.pid, signal.SIGTERM)
        self._write_status()
        sent_kill = False
        while True:
            try:
                popen.wait(POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            self._check_deadline()
            if self._killed.is_set() and not sent_kill and time.monotonic() > self._kill_by:
                processes.signal_group(popen.pid, signal.SIGKILL)
                sent_kill = True
        # The leader is gone; the kubelet would tear down the whole container, so do the same
        # for anything it left behind in its process group.
        processes.signal_group(popen.pid, signal.SIGKILL)
        with self._lock:
            self._popens.pop(c.name, None)  # its pid may be reused from now on
        code = exit_code_of(popen.returncode)
        message = processes.termination_message(spec.get("terminationMessagePath", ""), not_before)
        if message is None and code != 0:
            if spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
                message = processes.log_tail(log_path)
        self._terminated(c, code, "Completed" if code == 0 else "Error", message or "")

    def _terminated(self, c: Container, code: int, reason: str, message: str) -> None:
        with self._lock:
            now = now_rfc3339()
            c.state, c.exit_code, c.reason, c.message = TERMINATED, code, reason, message
            c.started_at = c.started_at or now
            c.finished_at = now
        self._write_status()

    def _set(self, c: Container, **fields: Any) -> None:
        with self._lock:
            changed = any(getattr(c, k) != v for k, v in fields.items())
            for key, value in fields.items():
                setattr(c, key, value)
        if changed:
            self._write_status()

    def _record_pids(self) -> None:
        """``state.json``: the process groups of this Pod, so that a restarted runner can tell
        whether any is left (the pid together with its start time identifies a process)."""
        with self._state_lock:  # containers start concurrently; one writer at a time
            try:
                self._write_pids()
            except OSError as exc:  # the process runs anyway; only a restart loses track
                log.warning("pod %s/%s: cannot record pids: %s", self.namespace, self.name, exc)

    def _write_pids(self) -> None:
        with self._lock:
            pids = {name: p.pid for name, p in self._popens.items() if p.poll() is None}
        state = {
            "uid": self.uid,
            "processes": {
                n: {"pid": p, "ticks": processes.start_ticks(p)} for n, p in pids.items()
            },
        }
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(self.dir / "state.json")

    # -- status ------------------------------------------------------------------------------

    def _status(self, final: bool) -> dict[str, Any]:
        with self._lock:
            phase = pod_phase(self.init, self.main, self.restart_policy)
            reason = message = None
            if final and self._killed.is_set():
                phase = "Failed"
                reason, message = self._kill_reason or (None, None)
            elif not final and phase in ("Succeeded", "Failed"):
                # The containers are done but the worker is not (a last write is coming): a
                # terminal phase is written once, by the final write.
                phase = self._last_phase
            self._last_phase = phase
            return pod_status(
                self.init,
                self.main,
                phase=phase,
                start_time=self.start_time,
                conditions=self._conditions,
                reason=reason,
                message=message,
            )

    def _write_status(self, final: bool = False, attempts: int = STATUS_ATTEMPTS) -> None:
        if self.ctx.stopping.is_set():
            return  # the runner is going away: a restarted runner reports these Pods
        with self._write_lock:
            status = self._status(final)
            path = pod_path(self.namespace, self.name, "status")
            body = {"metadata": {"uid": self.uid}, "status": status}
            for attempt in range(attempts if final else 1):
                try:
                    self.ctx.kube.request("PATCH", path, body, content_type=STRATEGIC_PATCH)
                    return
                except KubeError as exc:
                    if exc.status in (404, 409):  # gone
                        return
                    if exc.status == 422:  # a new Pod with the same name (uid), or a bug here
                        log.warning("pod %s/%s: status refused: %s", self.namespace, self.name, exc)
                        return
                    log.warning(
                        "pod %s/%s: status update failed: %s", self.namespace, self.name, exc
                    )
                    if self.ctx.stopping.wait(0.5 * (attempt + 1)):
                        return
