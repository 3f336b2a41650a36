"""The operator follows the core's execution cache (operator/handlers.py ``follow_executions``):
what it reconciles, one at a time per execution, and what it leaves alone. The cache is a real
``Collection`` that is never started; changes reach it as the watch thread applies them."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from types import SimpleNamespace

import pytest
from flyteidl.admin import execution_pb2
from flyteidl.core import identifier_pb2
from kubernetes import client

from flyteadmin.core.crmap.executions import ExecutionCodec, ExecutionRecord
from flyteadmin.core.executions.launch import Phase
from flyteadmin.core.store import Collection, Stored
from flyteadmin.operator.handlers import follow_executions, following

_versions = iter(range(1, 1_000_000))


def _stored(name: str, phase: int) -> Stored[ExecutionRecord]:
    execution = execution_pb2.Execution()
    execution.id.name = name
    execution.closure.phase = phase
    record = ExecutionRecord(execution, identifier_pb2.Identifier(), identifier_pb2.Identifier())
    return Stored(name, next(_versions), "", dt.datetime.now(dt.UTC), record)


class _Launcher:
    """Records each reconcile; the first ones of ``hold`` wait until released."""

    def __init__(self, hold: set[str] = frozenset(), fail: set[str] = frozenset()) -> None:
        self.calls: list[tuple[str, int]] = []
        self.running: set[str] = set()
        self.overlapped = False
        self.hold, self.fail = set(hold), set(fail)
        self.release = asyncio.Event()

    async def reconcile(self, record: ExecutionRecord) -> None:
        name = record.execution.id.name
        self.overlapped |= name in self.running
        self.running.add(name)
        try:
            self.calls.append((name, record.phase))
            if name in self.hold:
                self.hold.discard(name)
                await self.release.wait()
            if name in self.fail:
                raise RuntimeError("the blob store is away")
        finally:
            self.running.discard(name)


@pytest.fixture
def executions() -> Collection[ExecutionRecord]:
    return Collection(client.ApiClient(), "ns", ExecutionCodec(), http=None)  # type: ignore[arg-type]


def _from_watch_thread(executions: Collection[ExecutionRecord], *changes: tuple[str, Stored]):
    def apply() -> None:
        for event, stored in changes:
            executions._apply(event, stored)

    thread = threading.Thread(target=apply)
    thread.start()
    thread.join()


async def _settle(launcher: _Launcher, calls: int) -> None:
    for _ in range(200):
        if len(launcher.calls) >= calls and not launcher.running:
            await asyncio.sleep(0.05)  # and nothing more comes
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {calls} reconciles, got {launcher.calls}")


def _follow(executions, launcher) -> asyncio.Task[None]:
    ctx = SimpleNamespace(shared={"launcher": launcher})
    return asyncio.create_task(follow_executions(ctx, executions))  # type: ignore[arg-type]


def test_new_and_aborting_executions_are_reconciled_at_start_and_on_change(executions):
    executions._apply("ADDED", _stored("new", Phase.UNDEFINED))
    executions._apply("ADDED", _stored("running", Phase.RUNNING))
    executions._apply("ADDED", _stored("stopping", Phase.ABORTING))

    async def scenario() -> list[tuple[str, int]]:
        launcher = _Launcher()
        follower = _follow(executions, launcher)
        await _settle(launcher, 2)
        _from_watch_thread(
            executions,
            ("ADDED", _stored("later", Phase.UNDEFINED)),
            ("MODIFIED", _stored("running", Phase.ABORTING)),  # TerminateExecution
            ("MODIFIED", _stored("new", Phase.QUEUED)),  # propeller's progress: nothing to do
            ("DELETED", _stored("stopping", Phase.ABORTING)),
        )
        await _settle(launcher, 4)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        return launcher.calls

    calls = asyncio.run(scenario())
    assert sorted(calls[:2]) == [("new", Phase.UNDEFINED), ("stopping", Phase.ABORTING)]
    assert sorted(calls[2:]) == [("later", Phase.UNDEFINED), ("running", Phase.ABORTING)]


def test_a_change_during_a_reconcile_is_reconciled_once_after_it_from_the_newest_value(
    executions,
):
    async def scenario() -> _Launcher:
        launcher = _Launcher(hold={"x"})
        follower = _follow(executions, launcher)
        _from_watch_thread(executions, ("ADDED", _stored("x", Phase.UNDEFINED)))
        for _ in range(100):  # the first reconcile is running, held
            if launcher.running:
                break
            await asyncio.sleep(0.01)
        # Three changes while it runs: one more reconcile, of the last of them.
        _from_watch_thread(
            executions,
            ("MODIFIED", _stored("x", Phase.UNDEFINED)),
            ("MODIFIED", _stored("x", Phase.UNDEFINED)),
            ("MODIFIED", _stored("x", Phase.ABORTING)),
        )
        await asyncio.sleep(0.1)
        assert launcher.calls == [("x", Phase.UNDEFINED)]  # nothing ran beside the held one
        launcher.release.set()
        await _settle(launcher, 2)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        return launcher

    launcher = asyncio.run(scenario())
    assert launcher.calls == [("x", Phase.UNDEFINED), ("x", Phase.ABORTING)]
    assert not launcher.overlapped


def test_a_failed_reconcile_is_logged_and_the_next_change_is_reconciled(executions, caplog):
    async def scenario() -> list[tuple[str, int]]:
        launcher = _Launcher(fail={"x"})
        follower = _follow(executions, launcher)
        _from_watch_thread(executions, ("ADDED", _stored("x", Phase.UNDEFINED)))
        await _settle(launcher, 1)
        launcher.fail.clear()
        _from_watch_thread(executions, ("MODIFIED", _stored("x", Phase.UNDEFINED)))
        await _settle(launcher, 2)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        return launcher.calls

    assert asyncio.run(scenario()) == [("x", Phase.UNDEFINED), ("x", Phase.UNDEFINED)]
    assert "execution x: the blob store is away (retried at the next resync)" in caplog.text


def test_a_stopped_follower_is_called_for_nothing_not_even_what_was_already_handed_over(
    executions,
):
    """A follower stops when the operator shuts down; a change the watch thread handed over
    just before must not start work behind the follower's cleanup (a launch, a notification)."""

    async def scenario() -> tuple[list[str], list[str]]:
        seen: list[str] = []
        with following(executions, seen.append, lambda record: True):
            _from_watch_thread(executions, ("ADDED", _stored("handed-over", Phase.UNDEFINED)))
        # Left before the loop ran the hand-over.
        assert executions._listeners == []  # the watch thread hands nothing over any more
        _from_watch_thread(executions, ("ADDED", _stored("after", Phase.UNDEFINED)))
        await asyncio.sleep(0.05)
        after_stop = list(seen)
        still: list[str] = []
        with following(executions, still.append, lambda record: True):  # one that stays
            _from_watch_thread(executions, ("ADDED", _stored("later", Phase.UNDEFINED)))
            await asyncio.sleep(0.05)
        return after_stop, still

    after_stop, still = asyncio.run(scenario())
    assert after_stop == []
    assert sorted(still) == ["after", "handed-over", "later"]
