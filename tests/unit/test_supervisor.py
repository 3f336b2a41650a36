"""The dev stack's supervision of child processes, on small real processes (`sh`)."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from flyteadmin.devstack.processes import ProcessGroup, Service, stop_all
from flyteadmin.devstack.supervisor import Supervisor
from tests.waiting import eventually


def sh(tmp_path: Path, name: str, script: str) -> Service:
    group = ProcessGroup(tmp_path / "logs")
    return Service(name, ["sh", "-c", script], None, lambda: True, group, timeout=5)


@contextlib.contextmanager
def supervising(service: Service, said: list[str], restart: bool = True, **kw):
    """``service`` started and watched by a fast supervisor; everything stopped afterwards."""
    supervisor = Supervisor(said.append, first_delay=0.05, max_delay=0.2, poll=0.05, **kw)
    service.start()
    supervisor.watch(service, restart=restart)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.halt()
        service.group.stop()
        supervisor.join()


def test_a_dead_child_is_restarted_the_same_way_and_the_restart_is_said(tmp_path):
    count = tmp_path / "starts"
    service = sh(tmp_path, "worker", f"echo started >> {count}; exec sleep 60")
    said: list[str] = []
    with supervising(service, said) as supervisor:
        first = service.child
        eventually(lambda: count.exists(), "the first start")
        first.signal(signal.SIGKILL)
        eventually(lambda: "worker restarted" in said, "the restart", timeout=10)
        assert service.child is not first and service.alive()
        eventually(lambda: count.read_text().splitlines() == ["started", "started"], "2 starts")
        assert said[0].startswith("worker exited (killed by SIGKILL); restarting it in 0s")
        assert not supervisor.failed.is_set()
        assert service.group.children == [service.child]  # the restart replaced it in place


def test_a_child_that_keeps_dying_fails_the_stack_with_its_log(tmp_path):
    service = sh(tmp_path, "crasher", "sleep 0.2; echo 'cannot bind port 1'; exit 3")
    said: list[str] = []
    with supervising(service, said, max_restarts=2) as supervisor:
        assert supervisor.failed.wait(10)
        assert supervisor.failure.startswith("crasher exited 3 times within 300s (exit code 3)")
        assert "cannot bind port 1" in supervisor.failure
        assert sum("restarting it" in line for line in said) == 2


def test_a_child_watched_without_restarts_fails_the_stack_at_once(tmp_path):
    service = sh(tmp_path, "essential", "exec sleep 60")
    said: list[str] = []
    with supervising(service, said, restart=False) as supervisor:
        service.child.signal(signal.SIGTERM)
        assert supervisor.failed.wait(10)
        assert supervisor.failure.startswith("essential exited (killed by SIGTERM)")
        assert said == []


def test_halted_supervision_restarts_nothing(tmp_path):
    service = sh(tmp_path, "worker", "exec sleep 60")
    said: list[str] = []
    with supervising(service, said) as supervisor:
        supervisor.halt()
        service.group.stop()
        assert not service.alive()
    assert said == []


def test_stopping_wedged_children_kills_them_after_the_grace_period(tmp_path):
    # A stopped child that handles SIGTERM (as etcd does) never gets to run its handler.
    group = ProcessGroup(tmp_path / "logs")
    script = "trap 'exit 0' TERM; echo trapping; while :; do sleep 0.1; done"
    children = [group.start(f"c{i}", ["sh", "-c", script]) for i in range(3)]
    eventually(lambda: all("trapping" in c.log_tail() for c in children), "the traps")
    for child in children:
        child.signal(signal.SIGSTOP)
    stop_all(children, grace=0.5)
    assert all(not c.alive() for c in children)
    assert [c.exit_description() for c in children] == ["killed by SIGKILL"] * 3
