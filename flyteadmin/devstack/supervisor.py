"""Supervision of the dev stack's child processes: restart with backoff, or fail the stack.

``flyteadmin dev`` hands every child it starts (etcd, kube-apiserver, kube-controller-manager,
the blob store, flytepropeller, the pod runner) to one ``Supervisor`` as a ``Service``. The
supervisor polls them. When one exits it says so and starts it again the same way (same ports,
same data) after a backoff: 1 s, doubling with each exit in the last ``window`` seconds, at
most 30 s. A child that exits more than ``max_restarts`` times within ``window`` seconds, or one
watched with ``restart=False``, sets ``failed`` with a message; the stack then stops with a
non-zero exit. docs/testbed.md gives the policy per component.

The death signal of a child (PR_SET_PDEATHSIG, ``processes``) follows the thread that forked it,
so a child the supervisor restarted dies with the supervisor's thread: ``halt`` stops restarts
first, the stack stops its children, and only then does the thread end (``join``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from flyteadmin.devstack.processes import Service

LOG_LINES = 6  # of a dead child's log, quoted when it exits


@dataclass
class _Watched:
    service: Service
    restart: bool
    label: str
    """Put before the service's name in what is said (e.g. a data-plane cluster's name)."""
    exits: deque[float] = field(default_factory=deque)
    """Monotonic times of its exits within the window."""


class Supervisor:
    def __init__(
        self,
        log: Callable[[str], None],
        *,
        max_restarts: int = 5,
        window: float = 300.0,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        poll: float = 0.5,
    ) -> None:
        self.log = log
        self.max_restarts = max_restarts
        self.window = window
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.poll = poll
        self.failed = threading.Event()
        self.failure = ""
        self._halted = threading.Event()
        self._watched: list[_Watched] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def watch(self, service: Service, *, restart: bool = True, label: str = "") -> None:
        """Supervise a started service (restart it when it exits, or fail the stack)."""
        with self._lock:
            self._watched.append(_Watched(service, restart, label))

    def start(self) -> None:
        self._thread.start()

    def halt(self) -> None:
        """No more restarts (call before stopping the children)."""
        self._halted.set()

    def join(self, timeout: float = 10.0) -> None:
        self._halted.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._halted.wait(self.poll):
            with self._lock:
                watched = list(self._watched)
            for entry in watched:
                if self._halted.is_set() or self.failed.is_set():
                    return
                if not entry.service.alive():
                    self._handle_exit(entry)

    def _fail(self, message: str) -> None:
        self.failure = message
        self.failed.set()

    def _handle_exit(self, entry: _Watched) -> None:
        service = entry.service
        name = f"{entry.label}{service.name}"
        child = service.child
        how = child.exit_description() if child is not None else "not started"
        ends = ""
        if child is not None:
            # Killed by a signal, it wrote nothing about why; exiting, its last lines may say.
            killed = (child.popen.returncode or 0) < 0
            tail = "" if killed else f" ends:\n{child.log_tail(LOG_LINES)}"
            ends = f" Its log: {child.log_path}{tail}"
        if not entry.restart:
            self._fail(f"{name} exited ({how}); the stack cannot run without it.{ends}")
            return
        now = time.monotonic()
        entry.exits.append(now)
        while entry.exits and entry.exits[0] < now - self.window:
            entry.exits.popleft()
        count = len(entry.exits)
        if count > self.max_restarts:
            self._fail(
                f"{name} exited {count} times within {self.window:.0f}s ({how}); giving up.{ends}"
            )
            return
        delay = min(self.max_delay, self.first_delay * 2 ** (count - 1))
        self.log(f"{name} exited ({how}); restarting it in {delay:.0f}s.{ends}")
        if self._halted.wait(delay):
            return
        try:
            service.start(abort=self._halted.is_set)
        except Exception as exc:  # noqa: BLE001 - counted as one more exit on the next poll
            if not self._halted.is_set():
                self.log(f"{name} did not come back: {exc}")
            return
        self.log(f"{name} restarted")
