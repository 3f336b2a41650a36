"""A Pod's status from its containers' states, by the kubelet's rules (pure functions).

The runner keeps one ``Container`` per init and regular container and writes the result of
``pod_status`` through the ``pods/status`` subresource. The phase follows the kubelet's
``getPhase``: Pending while init containers or a never-started container remain, Running while
any container runs (or will be restarted), Succeeded when all exited 0, Failed otherwise.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from flyteadmin.devstack.podrunner.podenv import HOST_IP, POD_IP

WAITING, RUNNING, TERMINATED = "waiting", "running", "terminated"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    """What the runner knows of one container; the worker mutates it under its lock."""

    name: str
    image: str = ""
    state: str = WAITING
    reason: str = "PodInitializing"
    message: str = ""
    pid: int | None = None
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    restart_count: int = 0
    last_terminated: dict[str, Any] | None = None

    def succeeded(self) -> bool:
        return self.state == TERMINATED and self.exit_code == 0

    def terminated(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exitCode": self.exit_code if self.exit_code is not None else 0,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.message:
            out["message"] = self.message
        if self.pid is not None:
            out["containerID"] = container_id(self.pid)
        return out

    def to_status(self) -> dict[str, Any]:
        if self.state == RUNNING:
            state: dict[str, Any] = {"running": {"startedAt": self.started_at}}
        elif self.state == TERMINATED:
            state = {"terminated": self.terminated()}
        else:
            waiting: dict[str, Any] = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            state = {"waiting": waiting}
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.state == RUNNING,
            "started": self.state == RUNNING,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.pid is not None:
            out["containerID"] = container_id(self.pid)
        return out


def container_id(pid: int) -> str:
    # "<runtime>://<id>" like the kubelet's; the id is the process group's leader.
    return f"local://{pid}"


def pod_phase(init: list[Container], main: list[Container], restart_policy: str) -> str:
    """The kubelet's phase rules (``getPhase``), for restart policies Never/OnFailure/Always."""
    for c in init:
        if c.state == TERMINATED and c.exit_code != 0 and restart_policy == "Never":
            return "Failed"
    if not all(c.succeeded() for c in init):
        return "Pending"
    running = sum(c.state == RUNNING for c in main)
    # A waiting container that already ran once is restarting: the kubelet counts it stopped.
    waiting = sum(c.state == WAITING and c.last_terminated is None for c in main)
    stopped = len(main) - running - waiting
    succeeded = sum(c.succeeded() for c in main)
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    if restart_policy == "Never":
        return "Failed"
    return "Running"  # OnFailure: the failed ones are being restarted


@dataclass
class Conditions:
    """Pod conditions with their lastTransitionTime kept across updates."""

    since: dict[str, tuple[str, str]] = field(default_factory=dict)

    def render(self, wanted: list[tuple[str, str, str, str]], now: str) -> list[dict[str, Any]]:
        out = []
        for kind, status, reason, message in wanted:
            previous = self.since.get(kind)
            if previous is None or previous[0] != status:
                self.since[kind] = (status, now)
            # None (not absent) for an empty reason or message: a strategic merge patch keeps a
            # field the patch leaves out, so a stale message would outlive its condition.
            out.append(
                {
                    "type": kind,
                    "status": status,
                    "lastTransitionTime": self.since[kind][1],
                    "reason": reason or None,
                    "message": message or None,
                }
            )
        return out


def _names(containers: list[Container]) -> str:
    return "[" + " ".join(c.name for c in containers) + "]"


def wanted_conditions(
    init: list[Container], main: list[Container], phase: str
) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) for PodScheduled, Initialized, ContainersReady, Ready."""
    done = phase in ("Succeeded", "Failed")
    incomplete = [c for c in init if not c.succeeded()]
    if incomplete and not done:
        initialized = (
            "False",
            "ContainersNotInitialized",
            f"containers with incomplete status: {_names(incomplete)}",
        )
    else:
        initialized = ("True", "PodCompleted" if done and init else "", "")
    unready = [c for c in main if c.state != RUNNING]
    if done:
        ready = ("False", "PodCompleted", "")
    elif unready:
        ready = (
            "False",
            "ContainersNotReady",
            f"containers with unready status: {_names(unready)}",
        )
    else:
        ready = ("True", "", "")
    return [
        ("PodScheduled", "True", "", ""),
        ("Initialized", *initialized),
        ("ContainersReady", *ready),
        ("Ready", *ready),
    ]


def pod_status(
    init: list[Container],
    main: list[Container],
    *,
    phase: str,
    start_time: str,
    conditions: Conditions,
    reason: str | None = None,
    message: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """The ``status`` to write (a strategic merge patch: lists are complete, keys by name/type)."""
    now = now or now_rfc3339()
    return {
        "phase": phase,
        "conditions": conditions.render(wanted_conditions(init, main, phase), now),
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": POD_IP,
        "podIPs": [{"ip": POD_IP}],
        "startTime": start_time,
        "initContainerStatuses": [c.to_status() for c in init],
        "containerStatuses": [c.to_status() for c in main],
        "reason": reason,
        "message": message,
    }
