"""Launch plan schedules (flyteadmin-behaviour.md §4.1 step 10, §12): exact outcomes per row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from flyteidl.admin import schedule_pb2
from flyteidl.core import interface_pb2, types_pb2

from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.validation.schedules import (
    cron_string,
    next_fire_times,
    parse_cron,
    validate_schedule,
)

MINUTE, HOUR, DAY = schedule_pb2.MINUTE, schedule_pb2.HOUR, schedule_pb2.DAY


def cron(text: str, kickoff: str = "") -> schedule_pb2.Schedule:
    return schedule_pb2.Schedule(
        cron_schedule=schedule_pb2.CronSchedule(schedule=text), kickoff_time_input_arg=kickoff
    )


def rate(value: int, unit: int = MINUTE, kickoff: str = "") -> schedule_pb2.Schedule:
    return schedule_pb2.Schedule(
        rate=schedule_pb2.FixedRate(value=value, unit=unit), kickoff_time_input_arg=kickoff
    )


def param(simple: int | None = types_pb2.DATETIME, *, required: bool = False):
    var = interface_pb2.Variable(
        type=types_pb2.LiteralType(simple=simple) if simple is not None else None
    )
    if required:
        return interface_pb2.Parameter(var=var, required=True)
    return interface_pb2.Parameter(var=var, default=None)


def inputs(**parameters: interface_pb2.Parameter) -> interface_pb2.ParameterMap:
    return interface_pb2.ParameterMap(parameters=parameters)


def bad(message: str) -> tuple[Code, str]:
    return Code.INVALID_ARGUMENT, message


def invalid_cron(reason: str) -> tuple[Code, str]:
    return bad(f"Invalid cron expression: {reason}")


def outcome(schedule, expected_inputs) -> tuple[Code, str] | None:
    try:
        validate_schedule(schedule, expected_inputs)
    except AdminError as err:
        return err.code, err.message
    return None


UNBOUND = "Cannot create a launch plan with a schedule if there is an unbound required input."


@pytest.mark.parametrize(
    "schedule, expected_inputs, error",
    [
        # not scheduled: nothing is checked
        (schedule_pb2.Schedule(), inputs(x=param(required=True)), None),
        (schedule_pb2.Schedule(cron_expression=""), inputs(x=param(required=True)), None),
        (schedule_pb2.Schedule(kickoff_time_input_arg="nope"), inputs(), None),
        # unbound required inputs (sorted, the kickoff argument excepted)
        (
            cron("@daily"),
            inputs(b=param(required=True), a=param(required=True)),
            bad(f"{UNBOUND} [a] is required"),
        ),
        (rate(1), inputs(x=param(required=True)), bad(f"{UNBOUND} [x] is required")),
        (cron("@daily", "t"), inputs(t=param(required=True), x=param()), None),
        (
            cron("@daily", "t"),
            inputs(t=param(required=True), x=param(required=True)),
            bad(f"{UNBOUND} [x] is required"),
        ),
        # the kickoff argument: a free input of simple type DATETIME
        (
            cron("@daily", "t"),
            inputs(x=param()),
            bad(
                "Cannot create a schedule with a KickoffTimeInputArg that does not point to a free "
                "input. [t] is not free or does not exist."
            ),
        ),
        (
            rate(5, HOUR, "t"),
            inputs(t=param(types_pb2.INTEGER)),
            bad("KickoffTimeInputArg must reference a datetime input. [t] is a [simple:INTEGER]"),
        ),
        (
            cron("@daily", "t"),
            inputs(t=param(None)),
            bad("KickoffTimeInputArg must reference a datetime input. [t] is a [<nil>]"),
        ),
        (rate(5, HOUR, "t"), inputs(t=param()), None),
        # fixed rates
        (rate(1, MINUTE), inputs(), None),
        (rate(2, DAY), inputs(), None),
        (rate(0, HOUR), inputs(), bad("Invalid fixed rate: value must be greater than 0")),
        (
            rate(1, 7),
            inputs(),
            bad("Invalid fixed rate: unsupported unit [7], expected MINUTE, HOUR or DAY"),
        ),
        # cron strings, both spellings
        (cron("*/5 * * * *"), inputs(), None),
        (schedule_pb2.Schedule(cron_expression="0 9 * * mon-fri"), inputs(), None),
        (
            schedule_pb2.Schedule(cron_expression="0 9 * *"),
            inputs(),
            invalid_cron("expected exactly 5 fields, found 4: [0 9 * *]"),
        ),
        (cron(""), inputs(), invalid_cron("empty spec string")),
        (cron("0 0 * * 7"), inputs(), invalid_cron("end of range (7) above maximum (6): 7")),
        # the first failing rule wins
        (
            cron("nonsense", "t"),
            inputs(x=param(required=True), t=param(types_pb2.STRING)),
            bad(f"{UNBOUND} [x] is required"),
        ),
        (
            cron("nonsense", "t"),
            inputs(t=param(types_pb2.STRING)),
            bad("KickoffTimeInputArg must reference a datetime input. [t] is a [simple:STRING]"),
        ),
    ],
)
def test_validate_schedule(schedule, expected_inputs, error):
    assert outcome(schedule, expected_inputs) == error


@pytest.mark.parametrize(
    "text, error",
    [
        ("* * * * *", None),
        ("0 0 1,15 * *", None),
        ("5/15 * * * *", None),
        ("0-59/10 0-23 1-31 1-12 0-6", None),
        ("? ? ? ? ?", None),
        ("0 0 * JAN-Dec Sun,sat", None),
        ("*-5 * * * *", None),  # robfig ignores what follows a star
        ("0  9\t* *  *", None),
        ("0 0 29 2 *", None),  # leap years
        ("0 0 31 2 mon", None),  # day-of-month or day-of-week: Mondays in February
        *((d, None) for d in ("@yearly", "@annually", "@monthly", "@weekly", "@daily")),
        *((d, None) for d in ("@midnight", "@hourly")),
        ("@every 1h", None),
        ("@every 1h30m", None),
        ("@every 1.5h", None),
        ("@every 500ms", None),
        ("@every -1s", None),
        ("@every 0", None),
        ("TZ=America/New_York 0 9 * * *", None),
        ("CRON_TZ=UTC @daily", None),
        ("TZ=Local @every 1m", None),
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("0 * * * * *", "expected exactly 5 fields, found 6: [0 * * * * *]"),
        ("@DAILY", "unrecognized descriptor: @DAILY"),
        ("@every", "unrecognized descriptor: @every"),
        ("@every ", 'failed to parse duration @every : time: invalid duration ""'),
        ("@every 1", 'failed to parse duration @every 1: time: missing unit in duration "1"'),
        (
            "@every 1d",
            'failed to parse duration @every 1d: time: unknown unit "d" in duration "1d"',
        ),
        ("@every .h", 'failed to parse duration @every .h: time: invalid duration ".h"'),
        ("@every h", 'failed to parse duration @every h: time: invalid duration "h"'),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * 13 *", "end of range (13) above maximum (12): 13"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("*/2/3 * * * *", "too many slashes: */2/3"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("L * * * *", 'failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax'),
        ("*/ * * * *", 'failed to parse int from : strconv.Atoi: parsing "": invalid syntax'),
        (
            "0 0 * * 1#2",
            'failed to parse int from 1#2: strconv.Atoi: parsing "1#2": invalid syntax',
        ),
        ("+1 * * * *", None),
        ("0 0 1 * sun-7", "end of range (7) above maximum (6): sun-7"),
        (
            "TZ=Mars/Olympus 0 0 * * *",
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus",
        ),
        ("TZ=UTC", "missing schedule after time zone UTC"),
        # schedules that can never fire (robfig accepts them; its scheduler then fails)
        ("0 0 30 2 *", "day of month and month never coincide: 0 0 30 2 *"),
        ("0 0 31 4,6 *", "day of month and month never coincide: 0 0 31 4,6 *"),
        (", * * * *", "no values selected by field: ,"),
    ],
)
def test_cron_strings(text, error):
    assert outcome(cron(text), inputs()) == (None if error is None else invalid_cron(error))


@pytest.mark.parametrize(
    "schedule, text",
    [
        (schedule_pb2.Schedule(), None),
        (rate(1), None),
        (schedule_pb2.Schedule(cron_expression="@daily"), "@daily"),
        (cron("@hourly"), "@hourly"),
        (cron(""), ""),
    ],
)
def test_cron_string(schedule, text):
    assert cron_string(schedule) == text


AFTER = datetime(2024, 1, 1, 0, 0, 30, 123456, tzinfo=UTC)


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


@pytest.mark.parametrize(
    "schedule, after, expected",
    [
        (
            cron("*/20 * * * *"),
            AFTER,
            [at(2024, 1, 1, 0, 20), at(2024, 1, 1, 0, 40), at(2024, 1, 1, 1)],
        ),
        (cron("@daily"), at(2024, 1, 1), [at(2024, 1, 2), at(2024, 1, 3), at(2024, 1, 4)]),
        (cron("@weekly"), AFTER, [at(2024, 1, 7), at(2024, 1, 14), at(2024, 1, 21)]),
        (cron("0 0 29 2 *"), AFTER, [at(2024, 2, 29), at(2028, 2, 29), at(2032, 2, 29)]),
        # both day fields restricted: either matches (Jan 1 2024 is a Monday)
        (cron("0 0 13 * fri"), AFTER, [at(2024, 1, 5), at(2024, 1, 12), at(2024, 1, 13)]),
        # a full day-of-week list still means "either": every day
        (cron("0 0 13 * 0-6"), AFTER, [at(2024, 1, 2), at(2024, 1, 3), at(2024, 1, 4)]),
        (
            cron("TZ=America/New_York 0 9 * * *"),
            AFTER,
            [at(2024, 1, 1, 14), at(2024, 1, 2, 14), at(2024, 1, 3, 14)],
        ),
        # constant delays from `after` cut to whole seconds
        (
            cron("@every 90m"),
            AFTER,
            [at(2024, 1, 1, 1, 30, 30), at(2024, 1, 1, 3, 0, 30), at(2024, 1, 1, 4, 30, 30)],
        ),
        (
            cron("@every 100ms"),
            AFTER,
            [at(2024, 1, 1, 0, 0, 31), at(2024, 1, 1, 0, 0, 32), at(2024, 1, 1, 0, 0, 33)],
        ),
        (
            rate(2, DAY),
            AFTER,
            [AFTER.replace(microsecond=0) + timedelta(days=2 * i) for i in (1, 2, 3)],
        ),
        (
            rate(1, HOUR),
            datetime(2024, 1, 1),
            [at(2024, 1, 1, 1), at(2024, 1, 1, 2), at(2024, 1, 1, 3)],
        ),
        (
            schedule_pb2.Schedule(cron_expression="0 12 * * *"),
            AFTER,
            [at(2024, 1, 1, 12), at(2024, 1, 2, 12), at(2024, 1, 3, 12)],
        ),
    ],
)
def test_next_fire_times(schedule, after, expected):
    assert next_fire_times(schedule, after, 3) == expected


def test_next_fire_times_keep_the_zone_of_after():
    tokyo = timezone(timedelta(hours=9))
    (first,) = next_fire_times(cron("0 0 * * *"), datetime(2024, 1, 1, 12, tzinfo=tokyo), 1)
    assert first == datetime(2024, 1, 2, 0, tzinfo=tokyo) and first.utcoffset() == timedelta(
        hours=9
    )
    (utc_first,) = next_fire_times(
        cron("TZ=UTC 0 0 * * *"), datetime(2024, 1, 1, 12, tzinfo=tokyo), 1
    )
    assert utc_first == at(2024, 1, 2) and utc_first.utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize("schedule", [schedule_pb2.Schedule(), cron("nonsense"), rate(0), cron("")])
def test_next_fire_times_rejects_what_cannot_fire(schedule):
    with pytest.raises(ValueError):
        next_fire_times(schedule, AFTER, 1)


def test_parse_cron_normalises_for_croniter():
    assert parse_cron("? 0/6 1-3 jan * ").expression == "* 0,6,12,18 1,2,3 1 *"
    assert parse_cron("@every 2h").every == timedelta(hours=2)
    assert parse_cron("0 0 1 * 0-6").expression == "0 0 * * *"
