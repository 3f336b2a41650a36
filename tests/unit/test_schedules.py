"""Schedule times, names and requests (core/schedules.py), and the scheduler's status codec."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flyteidl.admin import execution_pb2, schedule_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core.config import ScheduleSettings, Settings, load_settings
from flyteadmin.core.crmap.named_entities import named_entity_object_name
from flyteadmin.core.crmap.schedule_state import ScheduleState, ScheduleStateCodec
from flyteadmin.core.schedules import (
    Due,
    due_times,
    execution_name,
    execution_request,
    kickoff_literal,
    next_fire_time,
)
from flyteadmin.operator.context import OperatorContext
from flyteadmin.operator.scheduler import run_scheduler

MINUTE, HOUR, DAY = schedule_pb2.MINUTE, schedule_pb2.HOUR, schedule_pb2.DAY
LP = identifier_pb2.Identifier(
    resource_type=identifier_pb2.LAUNCH_PLAN,
    project="flytesnacks",
    domain="development",
    name="lp",
    version="v1",
)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def cron(text: str, offset: str = "", kickoff: str = "") -> schedule_pb2.Schedule:
    return schedule_pb2.Schedule(
        cron_schedule=schedule_pb2.CronSchedule(schedule=text, offset=offset),
        kickoff_time_input_arg=kickoff,
    )


def rate(value: int, unit: int = MINUTE, kickoff: str = "") -> schedule_pb2.Schedule:
    return schedule_pb2.Schedule(
        rate=schedule_pb2.FixedRate(value=value, unit=unit), kickoff_time_input_arg=kickoff
    )


def minutes(start: datetime, *offsets: int) -> tuple[datetime, ...]:
    return tuple(start + timedelta(minutes=m) for m in offsets)


T0 = at(2024, 1, 1, 10)

DUE = [
    # 5-field cron: times in (after, now], `now` itself included, `after` not
    (cron("*/15 * * * *"), T0, at(2024, 1, 1, 11), minutes(T0, 15, 30, 45, 60)),
    (cron("*/15 * * * *"), T0, at(2024, 1, 1, 10, 44, 59), minutes(T0, 15, 30)),
    (cron("*/15 * * * *"), at(2024, 1, 1, 10, 15), at(2024, 1, 1, 10, 30), minutes(T0, 30)),
    (cron("0 9 * * mon-fri"), at(2024, 1, 5, 10), at(2024, 1, 9, 8), (at(2024, 1, 8, 9),)),
    (cron("0 0 1 jan,jul *"), at(2024, 1, 1), at(2025, 1, 1), (at(2024, 7, 1), at(2025, 1, 1))),
    # descriptors
    (cron("@hourly"), T0, at(2024, 1, 1, 12, 30), (at(2024, 1, 1, 11), at(2024, 1, 1, 12))),
    (cron("@daily"), T0, at(2024, 1, 3), (at(2024, 1, 2), at(2024, 1, 3))),
    (cron("@midnight"), T0, at(2024, 1, 2, 1), (at(2024, 1, 2),)),
    (cron("@weekly"), T0, at(2024, 1, 15), (at(2024, 1, 7), at(2024, 1, 14))),
    (cron("@monthly"), T0, at(2024, 3, 1), (at(2024, 2, 1), at(2024, 3, 1))),
    (cron("@yearly"), T0, at(2025, 6, 1), (at(2025, 1, 1),)),
    # a time zone prefix: 09:00 in New York is 14:00 UTC in winter
    (cron("TZ=America/New_York 0 9 * * *"), T0, at(2024, 1, 2, 13), (at(2024, 1, 1, 14),)),
    # the deprecated cron_expression fires like cron_schedule.schedule
    (
        schedule_pb2.Schedule(cron_expression="0 */6 * * *"),
        T0,
        at(2024, 1, 1, 18),
        minutes(T0, 120, 480),
    ),
    # the offset is ignored, as flyteadmin's schedulers ignore it
    (cron("*/30 * * * *", offset="PT5M"), T0, at(2024, 1, 1, 11), minutes(T0, 30, 60)),
    (cron("*/30 * * * *", offset="P1D"), T0, at(2024, 1, 1, 11), minutes(T0, 30, 60)),
    # fixed rates and @every: constant delays from `after`, cut to whole seconds
    (rate(5), T0, at(2024, 1, 1, 10, 16), minutes(T0, 5, 10, 15)),
    (
        rate(5),
        at(2024, 1, 1, 10, 0, 30, 500000),
        at(2024, 1, 1, 10, 16),
        (at(2024, 1, 1, 10, 5, 30), at(2024, 1, 1, 10, 10, 30), at(2024, 1, 1, 10, 15, 30)),
    ),
    (rate(2, HOUR), T0, at(2024, 1, 1, 15), minutes(T0, 120, 240)),
    (rate(1, DAY), T0, at(2024, 1, 3, 10), (at(2024, 1, 2, 10), at(2024, 1, 3, 10))),
    (cron("@every 90m"), T0, at(2024, 1, 1, 13), minutes(T0, 90, 180)),
    (cron("@every 1m"), T0, at(2024, 1, 1, 10, 2, 59), minutes(T0, 1, 2)),
    # nothing due
    (cron("@hourly"), T0, at(2024, 1, 1, 10, 59), ()),
    (rate(5), T0, T0, ()),
    (rate(5), T0, T0 - timedelta(hours=1), ()),
]


@pytest.mark.parametrize("schedule, after, now, expected", DUE)
def test_due_times(schedule, after, now, expected):
    assert due_times(schedule, after, now) == Due(expected)


def test_naive_and_zoned_times_are_instants_and_results_are_utc():
    tokyo = timezone(timedelta(hours=9))
    got = due_times(
        cron("@hourly"), datetime(2024, 1, 1, 19, tzinfo=tokyo), datetime(2024, 1, 1, 12)
    )
    assert got.times == (at(2024, 1, 1, 11), at(2024, 1, 1, 12))
    assert all(t.tzinfo == UTC for t in got.times)


LIMITS = [
    # (schedule, now, limit, expected times, skipped): after is always T0
    (cron("* * * * *"), at(2024, 1, 1, 12), 3, minutes(T0, 118, 119, 120), True),
    (cron("* * * * *"), at(2024, 1, 1, 10, 3), 3, minutes(T0, 1, 2, 3), False),
    (cron("* * * * *"), at(2024, 1, 1, 10, 4), 3, minutes(T0, 2, 3, 4), True),
    (cron("@daily"), at(2024, 3, 1), 2, (at(2024, 2, 29), at(2024, 3, 1)), True),
    (rate(10), at(2024, 1, 2, 10), 2, minutes(T0, 1430, 1440), True),
    (rate(10), at(2024, 1, 1, 10, 20), 2, minutes(T0, 10, 20), False),
    (rate(10), at(2024, 1, 1, 10, 20), 1, minutes(T0, 20), True),
]


@pytest.mark.parametrize("schedule, now, limit, expected, skipped", LIMITS)
def test_the_catch_up_limit_keeps_the_latest_times(schedule, now, limit, expected, skipped):
    assert due_times(schedule, T0, now, limit) == Due(expected, skipped)


@pytest.mark.parametrize("schedule", [cron("* * * * *"), rate(1)])
def test_no_limit_fires_every_missed_time(schedule):
    got = due_times(schedule, T0, T0 + timedelta(days=1), 0)
    assert len(got.times) == 1440 and not got.skipped
    assert got.times[0] == T0 + timedelta(minutes=1) and got.times[-1] == T0 + timedelta(days=1)


def test_a_long_downtime_with_a_limit_costs_only_the_limit():
    got = due_times(cron("* * * * *"), at(2000, 1, 1), at(2024, 1, 1), 2)
    assert got == Due((at(2023, 12, 31, 23, 59), at(2024, 1, 1)), skipped=True)


@pytest.mark.parametrize(
    "schedule, after, expected",
    [
        (cron("*/15 * * * *"), T0, at(2024, 1, 1, 10, 15)),
        (cron("@daily"), at(2024, 1, 1, 0, 0, 1), at(2024, 1, 2)),
        (rate(5), at(2024, 1, 1, 10, 0, 30, 9), at(2024, 1, 1, 10, 5, 30)),
    ],
)
def test_next_fire_time(schedule, after, expected):
    assert next_fire_time(schedule, after) == expected


@pytest.mark.parametrize(
    "schedule", [schedule_pb2.Schedule(), cron("nonsense"), cron(""), rate(0), cron("0 0 30 2 *")]
)
def test_what_cannot_fire_is_a_value_error(schedule):
    with pytest.raises(ValueError):
        due_times(schedule, T0, T0 + timedelta(days=1))


# --- names and requests -----------------------------------------------------------------------


def test_names_are_flyteadmins():
    # Computed with flyteadmin's scheduler/identifier code (Go hash/fnv + google/uuid).
    assert execution_name(LP, at(2024, 1, 1)) == "fad1a5a42b0b4bca9000"
    assert execution_name(LP, at(2024, 1, 1, 0, 5)) == "fb2a75142b0a2b2a9000"


def test_names_are_stable_valid_and_distinct():
    tokyo = timezone(timedelta(hours=9))
    same_instant = datetime(2024, 1, 1, 9, tzinfo=tokyo)
    assert execution_name(LP, same_instant) == execution_name(LP, at(2024, 1, 1))
    assert execution_name(LP, datetime(2024, 1, 1)) == execution_name(LP, at(2024, 1, 1))
    names = {execution_name(LP, T0 + timedelta(minutes=m)) for m in range(20000)}
    assert len(names) == 20000
    assert all(len(n) == 20 and re.fullmatch(r"[a-z][a-z0-9-]*", n) for n in names)
    others = [
        identifier_pb2.Identifier(project="p2", domain=LP.domain, name=LP.name, version="v1"),
        identifier_pb2.Identifier(project=LP.project, domain="staging", name="lp", version="v1"),
        identifier_pb2.Identifier(project=LP.project, domain=LP.domain, name="lp2", version="v1"),
        identifier_pb2.Identifier(project=LP.project, domain=LP.domain, name="lp", version="v2"),
    ]
    assert len({execution_name(i, T0) for i in [LP, *others]}) == 5


def test_the_request_names_the_version_sets_the_mode_and_the_kickoff_input():
    ref = identifier_pb2.Identifier()
    ref.CopyFrom(LP)
    ref.ClearField("resource_type")
    request = execution_request(ref, cron("@hourly", kickoff="kickoff"), at(2024, 1, 1, 11))
    assert request.project == LP.project and request.domain == LP.domain
    assert request.name == execution_name(LP, at(2024, 1, 1, 11))
    assert request.spec.launch_plan == LP  # resource type LAUNCH_PLAN, the scheduled version
    assert request.spec.metadata.mode == execution_pb2.ExecutionMetadata.SCHEDULED
    assert request.spec.metadata.scheduled_at.ToDatetime(UTC) == at(2024, 1, 1, 11)
    assert list(request.inputs.literals) == ["kickoff"]
    stamp = request.inputs.literals["kickoff"].scalar.primitive.datetime
    assert stamp.ToDatetime(UTC) == at(2024, 1, 1, 11)
    assert request.inputs.literals["kickoff"] == kickoff_literal(at(2024, 1, 1, 11))


def test_fixed_rates_get_the_kickoff_input_too_and_no_arg_means_no_inputs():
    with_arg = execution_request(LP, rate(5, kickoff="when"), T0)
    assert with_arg.inputs.literals["when"].scalar.primitive.datetime.ToDatetime(UTC) == T0
    assert not execution_request(LP, rate(5), T0).inputs.literals
    assert not execution_request(LP, cron("@daily"), T0).inputs.literals


# --- the status codec ----------------------------------------------------------------------------

BODY = {
    "metadata": {"name": "ignored", "labels": {"flyteadmin.io/name": "lp"}},
    "spec": {
        "resourceType": "LAUNCH_PLAN",
        "project": "flytesnacks",
        "domain": "development",
        "name": "lp",
        "description": "kept as is",
        "state": "NAMED_ENTITY_ACTIVE",
        "activeVersion": "v1",
    },
}


def test_the_codec_reads_the_pointer_and_an_empty_status():
    state = ScheduleStateCodec().decode(BODY)
    assert (state.active_version, state.version, state.since, state.fired_up_to) == (
        "v1",
        "",
        None,
        None,
    )
    assert state.is_launch_plan
    assert ScheduleStateCodec().name(state) == named_entity_object_name(
        identifier_pb2.LAUNCH_PLAN, "flytesnacks", "development", "lp"
    )


def test_the_codec_changes_only_the_status():
    codec = ScheduleStateCodec()
    state = codec.decode(BODY)
    moved = ScheduleState(**{**state.__dict__, "version": "v1", "since": T0, "fired_up_to": T0})
    body = codec.encode(moved)
    assert body["spec"] == BODY["spec"] and body["metadata"]["labels"] == BODY["metadata"]["labels"]
    assert body["status"] == {
        "schedule": {
            "version": "v1",
            "since": "2024-01-01T10:00:00Z",
            "firedUpTo": "2024-01-01T10:00:00Z",
        }
    }
    back = codec.decode({**BODY, "status": body["status"]})
    assert (back.version, back.since, back.fired_up_to) == ("v1", T0, T0)
    assert codec.encode(state)["status"] == {"schedule": {"version": ""}}


@pytest.mark.parametrize(
    "text",
    [
        "*/7 * * * *",
        "0 0 13 * fri",
        "30 2 * * *",
        "TZ=Europe/Berlin 30 2 * * *",  # across the March change to summer time
        "TZ=America/New_York 0 */5 * * sun",
        "@every 37m",
    ],
)
def test_walking_back_agrees_with_walking_forward(text):
    after, now = at(2024, 3, 20), at(2024, 4, 12)
    forward, moment = [], after
    while (moment := next_fire_time(cron(text), moment)) <= now:
        forward.append(moment)
    assert due_times(cron(text), after, now).times == tuple(forward)


# --- settings and the operator entry ----------------------------------------------------------


def test_settings_are_read_from_the_config_tree():
    loaded = load_settings(
        env={"FLYTEADMIN__SCHEDULES__MAX_CATCH_UP": "0", "FLYTEADMIN__SCHEDULES__TICK_SECONDS": "2"}
    )
    assert dataclasses.asdict(loaded.schedules) == {
        "enabled": True,
        "tick_seconds": 2.0,
        "max_catch_up": 0,
        "principal": "flyte-scheduler",
    }


def test_the_loop_does_nothing_when_schedules_are_disabled():
    disabled = Settings(schedules=ScheduleSettings(enabled=False))
    # No backend at all: returning at once is the only way this can pass.
    ctx = OperatorContext(settings=disabled, api=None, backend=None)  # type: ignore[arg-type]
    assert asyncio.run(run_scheduler(ctx)) is None
