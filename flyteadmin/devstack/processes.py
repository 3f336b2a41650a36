"""Child processes of the dev stack and the tests: started with logs, always stopped.

Each child gets PR_SET_PDEATHSIG, so the kernel kills it if this process dies without running
its clean-up (SIGKILL of pytest, a crashed dev command); `stop` handles the orderly case.

The death signal is set by a tiny exec wrapper (``dying_with_parent``), not a ``preexec_fn``:
Python code between fork and exec, in a child of a process whose gRPC threads are busy, can abort
in gRPC's fork handlers (seen as children dying with SIGABRT before they ran), and without a
``preexec_fn`` the child is started with vfork, which runs no fork handlers at all.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


# argv: signal, expected parent pid, command... (a parent gone before the prctl: exit)
_DEATH_WRAPPER = (
    "import ctypes,os,sys;"
    f"ctypes.CDLL(None).prctl({_PR_SET_PDEATHSIG},int(sys.argv[1]));"
    "os.getppid()==int(sys.argv[2]) or os._exit(1);"
    "os.execvp(sys.argv[3],sys.argv[3:])"
)


def dying_with_parent(argv: Sequence[str], sig: int = signal.SIGKILL) -> list[str]:
    """``argv`` wrapped so that the kernel sends ``sig`` when the thread that starts it ends
    (so when this process dies, even by SIGKILL). Start it with ``start_new_session=True`` so
    the child leads its own process group and ``stop`` reaches its children too."""
    wrapper = [sys.executable, "-I", "-S", "-c", _DEATH_WRAPPER]
    return [*wrapper, str(int(sig)), str(os.getpid()), *argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (sockets held open together, so no port repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int) -> bool:
    """Whether a server can listen on ``port``: connections of a stopped one lingering in
    TIME_WAIT do not count (the Kubernetes binaries listen with SO_REUSEADDR, as here)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Child:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def exit_description(self) -> str:
        code = self.popen.poll()
        if code is None:
            return "running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace: float = 10.0) -> None:
        stop_all([self], grace)


def stop_all(children: Sequence[Child], grace: float = 10.0) -> None:
    """SIGTERM to every child (in the given order) at once, then SIGKILL to whatever still runs
    after ``grace`` seconds: a wedged child (stopped, stuck in a dead dependency) costs the
    whole stop ``grace`` seconds once, not once per child."""
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.signal(signal.SIGKILL)
            child.popen.wait()


@dataclass
class ProcessGroup:
    """The children one stack started, stopped in reverse order. Starting a child under a name
    the group already has (a restart) replaces it in place."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                dying_with_parent(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        child = Child(name, popen, log_path)
        for i, old in enumerate(self.children):
            if old.name == name:
                self.children[i] = child
                break
        else:
            self.children.append(child)
        return child

    def stop(self, grace: float = 10.0) -> None:
        stop_all(self.children[::-1], grace)
        self.children.clear()


@dataclass
class Service:
    """A child process the stack can start again the same way (same argv, ports and data):
    what ``supervisor.Supervisor`` restarts. ``prepare`` runs before every start (e.g. the blob
    store's recovery of interrupted writes); ``ready`` is polled after it."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] | None
    ready: Callable[[], bool]
    group: ProcessGroup
    prepare: Callable[[], None] | None = None
    timeout: float = 60.0
    child: Child | None = None
    after_start: Callable[[], None] | None = None
    """Runs once the process is ready, after every start."""

    def start(self, abort: Callable[[], bool] | None = None) -> Child:
        """Start (or restart) the process and wait until it is ready; raise if it is not."""
        if self.prepare is not None:
            self.prepare()
        child = self.group.start(self.name, self.argv, self.env)
        self.child = child
        try:
            wait_until(
                self.ready, timeout=self.timeout, what=f"{self.name} ready", child=child,
                abort=abort,
            )  # fmt: skip
            if self.after_start is not None:
                self.after_start()
        except BaseException:
            child.stop()
            raise
        return child

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


class Aborted(RuntimeError):
    """A wait given up because the caller is stopping."""


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    child: Child | None = None,
    abort: Callable[[], bool] | None = None,
) -> None:
    """Poll ``check`` until it is true; fail early if ``child`` died or ``abort()`` is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(f"{child.name} exited while waiting for {what}:\n{child.log_tail()}")
        if abort is not None and abort():
            raise Aborted(f"stopped waiting for {what}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
            pass
        time.sleep(0.1)
    tail = child.log_tail() if child else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def http_ok(url: str, ssl_context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=ssl_context) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False
