"""Launch-plan schedules: a loop that fires each scheduled time of every active launch plan once.

Level-triggered, like the rest of the operator: every tick reads the active versions and how far
each has fired from NamedEntity objects (core/crmap/schedule_state.py), creates the executions
that are due through the core, and records the new watermark. Exactly once, without locks:

* an execution's name is derived from the launch plan version and the scheduled time
  (core/schedules.py), so a second create of the same time (another replica, a restart between
  the create and the watermark write) is an ALREADY_EXISTS, which counts as fired;
* the watermark (``status.schedule.firedUpTo`` of the launch plan's NamedEntity object) only moves
  forward, by optimistic-concurrency updates of the status subresource, so a restart resumes
  where the last instance stopped, and catches up on the missed times (at most
  ``schedules.max_catch_up``, the latest ones);
* a version seen active for the first time starts at that moment (``since``), not at the epoch;
  a deactivated launch plan is skipped and its watermark cleared, so a re-activation starts anew.

The clock is injectable (``Clock``), so tests drive time by hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from flyteidl.admin import project_pb2, schedule_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core import metrics, schedules
from flyteadmin.core.backend import Backend
from flyteadmin.core.config import ScheduleSettings
from flyteadmin.core.crmap.schedule_state import ScheduleState, ScheduleStateCodec
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.store import Collection, NotFound, Stored
from flyteadmin.operator.context import OperatorContext

log = logging.getLogger(__name__)

# A create refused for one of these reasons would be refused again: the time is skipped (and
# logged) rather than retried at every tick. Anything else (the apiserver or the blob store
# unavailable, a conflict) is retried at the next tick.
_PERMANENT = {
    Code.INVALID_ARGUMENT,
    Code.NOT_FOUND,
    Code.FAILED_PRECONDITION,
    Code.PERMISSION_DENIED,
    Code.OUT_OF_RANGE,
}


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Unchanged(Exception):
    """Aborts a status update: the stored object needs no change (or moved on)."""


class Scheduler:
    """Fires the schedules of active launch plans; ``start``, then ``run`` (or ``tick``)."""

    def __init__(
        self, backend: Backend, settings: ScheduleSettings, clock: Clock | None = None
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.clock = clock or SystemClock()
        k8s = backend.settings.kubernetes
        # Our own view of the NamedEntity objects, with the status the core's codec leaves out.
        self.states: Collection[ScheduleState] = Collection(
            backend.api, k8s.namespace, ScheduleStateCodec(), backend.http
        )
        self._sync_timeout = k8s.cache_sync_timeout_seconds

    async def start(self) -> None:
        self.states.start()
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.states.wait_synced, self._sync_timeout):
            raise TimeoutError(f"the namedentities cache did not sync in {self._sync_timeout}s")

    def stop(self) -> None:
        self.states.stop()

    async def run(self) -> None:
        """Tick forever: every ``tick_seconds``, or sooner when a fire time is due sooner."""
        while True:
            wake: datetime | None = None
            try:
                wake = await self.tick()
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad tick
                log.exception("schedule tick failed")
            delay = self.settings.tick_seconds
            if wake is not None:
                delay = min(delay, max(0.0, (wake - self.clock.now()).total_seconds()))
            await self.clock.sleep(delay)

    async def tick(self) -> datetime | None:
        """Fire everything due now; return the earliest next fire time (None: none known)."""
        now = self.clock.now()
        wake: datetime | None = None
        for stored in self.states.values():
            if not stored.value.is_launch_plan:
                continue
            try:
                upcoming = await self._schedule(stored, now)
            except Exception:  # noqa: BLE001 - one launch plan must not stop the others
                log.exception("schedule of launch plan %s failed", _describe(stored.value))
                continue
            if upcoming is not None and (wake is None or upcoming < wake):
                wake = upcoming
        return wake

    # ----------------------------------------------------------------------------- one plan

    async def _schedule(self, stored: Stored[ScheduleState], now: datetime) -> datetime | None:
        state = stored.value
        if not state.active_version:
            await self._forget(stored)
            return None
        lp_id = identifier_pb2.Identifier(
            resource_type=identifier_pb2.LAUNCH_PLAN,
            project=state.project,
            domain=state.domain,
            name=state.name,
            version=state.active_version,
        )
        record = self.backend.launch_plans.exact(lp_id)
        if record is None:
            return None  # not in this replica's cache yet
        schedule = record.value.message.spec.entity_metadata.schedule
        if not schedules.is_scheduled(schedule):
            await self._forget(stored)
            return None
        if state.version != state.active_version or state.since is None:
            activated = await self._activated(stored.name, state.active_version, now)
            if activated is None:
                return None
            state = activated
        after = state.fired_up_to or state.since
        assert after is not None
        due = schedules.due_times(schedule, after, now, self.settings.max_catch_up)
        if due.skipped:
            log.warning(
                "launch plan %s missed more than %d scheduled times; skipping those before %s",
                _describe(state),
                self.settings.max_catch_up,
                due.times[0].isoformat(),
            )
        fired_up_to, complete = after, True
        for moment in due.times:
            if not await self._fire(lp_id, schedule, moment):
                complete = False  # retried at the next tick, not at once
                break
            fired_up_to = moment
        if fired_up_to != after:
            await self._update(stored.name, _advanced(state.active_version, fired_up_to))
        return schedules.next_fire_time(schedule, fired_up_to) if complete else None

    async def _forget(self, stored: Stored[ScheduleState]) -> None:
        """Drop the record of a version no longer active (deactivated, or replaced by one
        without a schedule), so that its re-activation starts anew."""
        if stored.value.version and stored.value.version != stored.value.active_version:
            await self._update(stored.name, _cleared)

    async def _activated(self, name: str, version: str, now: datetime) -> ScheduleState | None:
        """Record that ``version`` is active from ``now`` on; another replica may have done so
        already, then its record stands. None if the pointer moved meanwhile."""
        since = now.astimezone(UTC).replace(microsecond=0)

        def change(current: ScheduleState) -> ScheduleState:
            if current.active_version != version or (
                current.version == version and current.since is not None
            ):
                raise _Unchanged
            log.info("launch plan %s@%s is scheduled from %s", _describe(current), version, since)
            return replace(current, version=version, since=since, fired_up_to=None)

        stored = await self._update(name, change)
        state = stored.value if stored is not None else None
        if state is None or state.version != version or state.active_version != version:
            return None
        return state

    async def _fire(
        self, lp_id: identifier_pb2.Identifier, schedule: schedule_pb2.Schedule, moment: datetime
    ) -> bool:
        """Create the execution of one scheduled time; True when that time is done with."""
        request = schedules.execution_request(lp_id, schedule, moment)
        what = f"{_describe_id(lp_id)} at {moment.isoformat()} ({request.name})"
        try:
            await self.backend.executions.create(request, principal=self.settings.principal)
        except AdminError as err:
            if err.code == Code.ALREADY_EXISTS:
                log.debug("scheduled execution of %s already exists: %s", what, err.message)
                metrics.schedule_fired("exists")
                return True
            if any(isinstance(d, project_pb2.InactiveProject) for d in err.details):
                log.info("skipped scheduled execution of %s: the project is archived", what)
                metrics.schedule_fired("skipped")
                return True
            if err.code in _PERMANENT:
                log.error("skipped scheduled execution of %s: %s", what, err.message)
                metrics.schedule_fired("skipped")
                return True
            log.warning("scheduled execution of %s failed, will retry: %s", what, err.message)
            metrics.schedule_fired("retry")
            return False
        except Exception:  # noqa: BLE001 - retried at the next tick
            log.exception("scheduled execution of %s failed, will retry", what)
            metrics.schedule_fired("retry")
            return False
        log.info("fired scheduled execution of %s", what)
        metrics.schedule_fired("created", (self.clock.now() - moment).total_seconds())
        return True

    async def _update(
        self, name: str, change: Callable[[ScheduleState], ScheduleState]
    ) -> Stored[ScheduleState] | None:
        """Write the status through the store (retrying conflicts); the stored object after."""
        try:
            return await self.states.mutate(name, change)
        except _Unchanged:
            return self.states.get(name)
        except NotFound:
            return None


def _cleared(current: ScheduleState) -> ScheduleState:
    if not current.version or current.version == current.active_version:
        raise _Unchanged
    return replace(current, version="", since=None, fired_up_to=None)


def _advanced(version: str, moment: datetime) -> Callable[[ScheduleState], ScheduleState]:
    def change(current: ScheduleState) -> ScheduleState:
        if current.version != version or (
            current.fired_up_to is not None and current.fired_up_to >= moment
        ):
            raise _Unchanged  # re-activated meanwhile, or another replica got further
        return replace(current, fired_up_to=moment)

    return change


def _describe(state: ScheduleState) -> str:
    return f"{state.project}/{state.domain}/{state.name}"


def _describe_id(ident: identifier_pb2.Identifier) -> str:
    return f"{ident.project}/{ident.domain}/{ident.name}@{ident.version}"


async def run_scheduler(ctx: OperatorContext, clock: Clock | None = None) -> None:
    """The operator's schedule loop (one entry of ``run_operator``'s loops); a no-op when
    ``schedules.enabled`` is false."""
    settings: ScheduleSettings = ctx.settings.schedules
    if not settings.enabled:
        return
    scheduler = Scheduler(ctx.backend, settings, clock)
    await scheduler.start()
    try:
        await scheduler.run()
    finally:
        scheduler.stop()
