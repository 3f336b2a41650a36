"""Firing launch-plan schedules (flyteadmin-behaviour.md §12), pure: which times are due, the
execution each one creates and its name. The operator's loop (operator/scheduler.py) does the I/O.

The grammar of cron strings and fixed rates is core/validation/schedules.py's (robfig/cron's
``ParseStandard``, as flyteadmin validates them). Times are UTC unless a ``TZ=`` prefix says
otherwise. As in flyteadmin's native scheduler:

* a cron schedule fires at each time its cron string selects; ``cron_schedule.offset`` is
  ignored (no flyteadmin scheduler reads it); the deprecated ``cron_expression`` is fired like
  ``cron_schedule.schedule`` (flyteadmin could not activate it at all, §15 #13);
* a fixed rate (and ``@every``) is a constant delay from the last fired time, or from the
  activation, cut to whole seconds;
* the execution name is flyteadmin's: ``"f"`` + 19 hex characters of the FNV-64 of
  ``project:domain:name:version:<unix seconds>``, so the same schedule time always gives the
  same name, here and in flyteadmin, and a duplicate create is an AlreadyExists.

Unlike flyteadmin, the kickoff-time input is set for fixed rates too (flyteadmin set it only for
cron schedules, so a fixed-rate launch plan whose kickoff input is required failed every time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterError, croniter
from flyteidl.admin import execution_pb2, schedule_pb2
from flyteidl.core import identifier_pb2, literals_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.core.validation.schedules import (
    CronError,
    CronSpec,
    cron_string,
    is_scheduled,
    next_fire_times,
    parse_cron,
)

_UNIT_SECONDS = {schedule_pb2.MINUTE: 60, schedule_pb2.HOUR: 3600, schedule_pb2.DAY: 86400}
_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1

__all__ = [
    "Due",
    "due_times",
    "execution_name",
    "execution_request",
    "is_scheduled",
    "kickoff_literal",
    "next_fire_time",
]


@dataclass(frozen=True)
class Due:
    times: tuple[datetime, ...]
    """Times to fire, oldest first, all in (after, now] and in UTC."""
    skipped: bool = False
    """True when older due times were left out because of the catch-up limit."""


def due_times(
    schedule: schedule_pb2.Schedule, after: datetime, now: datetime, limit: int = 0
) -> Due:
    """The schedule's times in ``(after, now]``; with ``limit`` > 0 only the latest ``limit``.

    ``after`` is the last fired time (or the activation); naive datetimes are taken as UTC.
    Raises ``ValueError`` for an unscheduled or invalid schedule.
    """
    after, now = _utc(after), _utc(now)
    if now <= after:
        return Due(())
    delay = _constant_delay(schedule)
    if delay is not None:
        return _fixed_times(delay, after, now, limit)
    cron = cron_string(schedule)
    if not cron:
        raise ValueError("the schedule has neither a cron string nor a fixed rate")
    return _cron_times(cron, after, now, limit)


def next_fire_time(schedule: schedule_pb2.Schedule, after: datetime) -> datetime:
    """The first time strictly after ``after`` (UTC); ``ValueError`` as ``due_times``."""
    (first,) = next_fire_times(schedule, _utc(after), 1)
    return first.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _constant_delay(schedule: schedule_pb2.Schedule) -> timedelta | None:
    """The delay of a fixed rate or of ``@every``; None for a cron schedule."""
    if schedule.HasField("rate"):
        rate = schedule.rate
        if rate.value <= 0 or rate.unit not in _UNIT_SECONDS:
            raise ValueError(f"invalid fixed rate: {rate.value} x unit {rate.unit}")
        return timedelta(seconds=rate.value * _UNIT_SECONDS[rate.unit])
    cron = cron_string(schedule)
    return _parse(cron).every if cron else None


def _fixed_times(delay: timedelta, after: datetime, now: datetime, limit: int) -> Due:
    anchor = after.replace(microsecond=0)
    last = (now - anchor) // delay  # how many delays fit: the k of the latest due time
    first = 1 if limit <= 0 else max(1, last - limit + 1)
    times = tuple(anchor + k * delay for k in range(first, last + 1))
    return Due(times, skipped=first > 1)


def _cron_times(cron: str, after: datetime, now: datetime, limit: int) -> Due:
    """Walk back from ``now`` (so a long downtime costs ``limit`` steps, not one per missed
    time) and stop at ``after``."""
    spec = _parse(cron)
    assert spec.expression is not None
    start = now.replace(microsecond=0) + timedelta(seconds=1)  # get_prev is strictly before
    if spec.location is not None:
        start = start.astimezone(spec.location)
    times: list[datetime] = []
    try:
        walk = croniter(spec.expression, start)
        while True:
            moment = walk.get_prev(datetime).astimezone(UTC)
            if moment <= after:
                return Due(tuple(reversed(times)))
            if 0 < limit <= len(times):
                return Due(tuple(reversed(times)), skipped=True)
            times.append(moment)
    except CroniterError as err:
        raise ValueError(f"cannot compute fire times of [{cron}]: {err}") from None


def _parse(cron: str) -> CronSpec:
    try:
        return parse_cron(cron)
    except CronError as err:
        raise ValueError(f"invalid cron expression [{cron}]: {err}") from None


# --- the execution of one scheduled time ------------------------------------------------------


def execution_name(launch_plan: identifier_pb2.Identifier, scheduled: datetime) -> str:
    """flyteadmin's deterministic name: 20 characters, lower-case hex after an ``f``.

    It is the first 19 hex digits of a UUID whose first 8 bytes are the little-endian FNV-1
    64-bit hash of ``project:domain:name:version:<unix seconds>`` (and the rest zero)."""
    key = (
        f"{launch_plan.project}:{launch_plan.domain}:{launch_plan.name}:{launch_plan.version}:"
        f"{int(_utc(scheduled).timestamp())}"
    )
    digest = _fnv1_64(key.encode())
    return "f" + (digest.to_bytes(8, "little").hex() + "000")[:19]


def _fnv1_64(data: bytes) -> int:
    value = _FNV64_OFFSET
    for byte in data:
        value = (value * _FNV64_PRIME) & _MASK64
        value ^= byte
    return value


def kickoff_literal(scheduled: datetime) -> literals_pb2.Literal:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(_utc(scheduled))
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(datetime=stamp))
    )


def execution_request(
    launch_plan: identifier_pb2.Identifier,
    schedule: schedule_pb2.Schedule,
    scheduled: datetime,
) -> execution_pb2.ExecutionCreateRequest:
    """The CreateExecution the scheduler sends for one time: the launch plan at the scheduled
    version, mode SCHEDULED, ``scheduled_at``, and only the kickoff input (the launch plan's
    defaults and fixed inputs supply the rest)."""
    ref = identifier_pb2.Identifier()
    ref.CopyFrom(launch_plan)
    ref.resource_type = identifier_pb2.LAUNCH_PLAN
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(_utc(scheduled))
    request = execution_pb2.ExecutionCreateRequest(
        project=launch_plan.project,
        domain=launch_plan.domain,
        name=execution_name(launch_plan, scheduled),
        spec=execution_pb2.ExecutionSpec(
            launch_plan=ref,
            metadata=execution_pb2.ExecutionMetadata(
                mode=execution_pb2.ExecutionMetadata.SCHEDULED, scheduled_at=stamp
            ),
        ),
    )
    if schedule.kickoff_time_input_arg:
        request.inputs.literals[schedule.kickoff_time_input_arg].CopyFrom(
            kickoff_literal(scheduled)
        )
    return request
