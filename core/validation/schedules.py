"""Launch plan schedules (flyteadmin-behaviour.md §4.1 step 10 and §12), pure.

flyteadmin parses cron strings with robfig/cron's ``ParseStandard`` and so accepts what it
accepts: five fields (minute hour day-of-month month day-of-week, with ``*``, ``?``, ranges,
steps, lists and jan-dec / sun-sat names; day-of-week is 0-6), the descriptors ``@yearly``
``@annually`` ``@monthly`` ``@weekly`` ``@daily`` ``@midnight`` ``@hourly``, ``@every <Go
duration>`` (a constant delay, whole seconds, at least 1s), and an optional ``TZ=<zone>`` or
``CRON_TZ=<zone>`` prefix. We check that grammar here, with robfig's messages, and hand the
normalised five fields to croniter for the fire times (croniter alone is more lenient: six
fields, ``L``, ``#``, ``7`` for Sunday). Unlike flyteadmin we also reject cron strings that can
never fire (``0 0 30 2 *``, an empty list) and an empty ``cron_schedule.schedule``: its
scheduler would fail on them at every tick instead.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from croniter import CroniterError, croniter
from flyteidl.admin import schedule_pb2
from flyteidl.core import interface_pb2, types_pb2

from flyteadmin.core.errors import AdminError, invalid_argument
from flyteadmin.core.validation.identifiers import proto_text

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (min, max, names) of minute, hour, day of month, month, day of week, as robfig bounds them.
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February can be 29
_UNIT_SECONDS = {
    schedule_pb2.MINUTE: 60,
    schedule_pb2.HOUR: 3600,
    schedule_pb2.DAY: 86400,
}
_ATOI = re.compile(r"[+-]?[0-9]+")


class CronError(ValueError):
    """A cron string robfig/cron would reject (or that never fires); robfig's wording."""


@dataclass(frozen=True)
class CronSpec:
    expression: str | None
    """Five croniter fields, or None for ``@every``."""
    every: timedelta | None
    location: tzinfo | None
    """The zone of a TZ= prefix; None evaluates in the zone of the time given."""


def is_scheduled(schedule: schedule_pb2.Schedule) -> bool:
    """flyteadmin's test: a non-empty cron_expression, or a rate, or a cron_schedule."""
    return bool(schedule.cron_expression) or schedule.WhichOneof("ScheduleExpression") in (
        "rate",
        "cron_schedule",
    )


def cron_string(schedule: schedule_pb2.Schedule) -> str | None:
    """The cron string of a cron schedule (deprecated ``cron_expression`` first), else None."""
    if schedule.cron_expression:
        return schedule.cron_expression
    if schedule.HasField("cron_schedule"):
        return schedule.cron_schedule.schedule
    return None


def validate_schedule(
    schedule: schedule_pb2.Schedule, expected_inputs: interface_pb2.ParameterMap
) -> None:
    """§4.1 step 10, in flyteadmin's order: unbound inputs, the kickoff argument, the schedule."""
    if not is_scheduled(schedule):
        return
    kickoff = schedule.kickoff_time_input_arg
    parameters = expected_inputs.parameters
    for name in sorted(parameters):
        if parameters[name].required and name != kickoff:
            raise invalid_argument(
                "Cannot create a launch plan with a schedule if there is an unbound required "
                f"input. [{name}] is required"
            )
    if kickoff:
        if kickoff not in parameters:
            raise invalid_argument(
                "Cannot create a schedule with a KickoffTimeInputArg that does not point to a "
                f"free input. [{kickoff}] is not free or does not exist."
            )
        var = parameters[kickoff].var
        if var.type.simple != types_pb2.DATETIME:
            shown = proto_text(var.type) if var.HasField("type") else "<nil>"
            raise invalid_argument(
                f"KickoffTimeInputArg must reference a datetime input. [{kickoff}] is a [{shown}]"
            )
    if schedule.HasField("rate"):
        _fixed_rate(schedule.rate)
    cron = cron_string(schedule)
    if cron is not None:
        try:
            parse_cron(cron)
        except CronError as err:
            raise invalid_argument(f"Invalid cron expression: {err}") from None


def _fixed_rate(rate: schedule_pb2.FixedRate) -> timedelta:
    if rate.value <= 0:
        raise invalid_argument("Invalid fixed rate: value must be greater than 0")
    if rate.unit not in _UNIT_SECONDS:
        raise invalid_argument(
            f"Invalid fixed rate: unsupported unit [{rate.unit}], expected MINUTE, HOUR or DAY"
        )
    return timedelta(seconds=rate.value * _UNIT_SECONDS[rate.unit])


def next_fire_times(schedule: schedule_pb2.Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, as flyteadmin's scheduler fires.

    Fixed rates and ``@every`` are constant delays from ``after`` cut to whole seconds (robfig's
    ``ConstantDelaySchedule``). A naive ``after`` is taken as UTC; results are in the zone of
    ``after``. Raises ``ValueError`` for an unscheduled or invalid schedule.
    """
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    cron = cron_string(schedule)
    if schedule.HasField("rate"):
        return _constant_delay(after, _fixed_rate_or_value_error(schedule.rate), count)
    if not cron:
        raise ValueError("the schedule has neither a cron string nor a fixed rate")
    spec = parse_cron(cron)
    if spec.every is not None:
        return _constant_delay(after, spec.every, count)
    assert spec.expression is not None
    start = after.astimezone(spec.location) if spec.location is not None else after
    try:
        times = croniter(spec.expression, start)
        return [times.get_next(datetime).astimezone(after.tzinfo) for _ in range(count)]
    except CroniterError as err:
        raise ValueError(f"cannot compute fire times of [{cron}]: {err}") from None


def _fixed_rate_or_value_error(rate: schedule_pb2.FixedRate) -> timedelta:
    try:
        return _fixed_rate(rate)
    except AdminError as err:  # not a request here: a stored schedule
        raise ValueError(str(err)) from None


def _constant_delay(after: datetime, delay: timedelta, count: int) -> list[datetime]:
    current = after.replace(microsecond=0)
    times = []
    for _ in range(count):
        current += delay
        times.append(current)
    return times


# --- robfig/cron's ParseStandard grammar ------------------------------------------------------


def parse_cron(spec: str) -> CronSpec:
    """Parse like robfig/cron ``ParseStandard``; raises ``CronError`` with its message."""
    if not spec:
        raise CronError("empty spec string")
    location: tzinfo | None = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        zone_end = spec.find(" ")
        name = spec[spec.index("=") + 1 : zone_end if zone_end >= 0 else len(spec)]
        location = _location(name)
        spec = spec[zone_end:].strip() if zone_end >= 0 else ""
        if not spec:
            raise CronError(f"missing schedule after time zone {name}")
    if spec.startswith("@"):
        if spec.startswith("@every "):
            return CronSpec(None, _every(spec), location)
        if spec not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    parsed = [_field(text, *bounds) for text, bounds in zip(fields, _BOUNDS, strict=True)]
    return CronSpec(_normalise(fields, parsed), None, location)


def _location(name: str) -> tzinfo | None:
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return None  # robfig: the zone of the time the schedule is evaluated from
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CronError(f"provided bad location {name}: unknown time zone {name}") from None


def _field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[set[int], bool]:
    """The values a field selects, and whether robfig counts it as ``*`` (for day matching)."""
    values: set[int] = set()
    star = False
    for expr in filter(None, text.split(",")):
        range_and_step = expr.split("/")
        low_high = range_and_step[0].split("-")
        if low_high[0] in ("*", "?"):
            start, end, expr_star = low, high, True
        else:
            start = _int_or_name(low_high[0], names)
            if len(low_high) > 2:
                raise CronError(f"too many hyphens: {expr}")
            end = _int_or_name(low_high[1], names) if len(low_high) == 2 else start
            expr_star = False
        step = 1
        if len(range_and_step) > 2:
            raise CronError(f"too many slashes: {expr}")
        if len(range_and_step) == 2:
            step = _atoi(range_and_step[1])
            if len(low_high) == 1:
                end = high  # "N/step" means "N-max/step"
            expr_star = expr_star and step <= 1
        if start < low:
            raise CronError(f"beginning of range ({start}) below minimum ({low}): {expr}")
        if end > high:
            raise CronError(f"end of range ({end}) above maximum ({high}): {expr}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
        if step == 0:
            raise CronError(f"step of range should be a positive number: {expr}")
        values.update(range(start, end + 1, step))
        star = star or expr_star
    if not values:
        raise CronError(f"no values selected by field: {text}")
    return values, star


def _int_or_name(text: str, names: dict[str, int]) -> int:
    return names[text.lower()] if text.lower() in names else _atoi(text)


def _atoi(text: str) -> int:
    if not _ATOI.fullmatch(text):
        raise CronError(f"failed to parse int from {text}: {_atoi_error(text, 'invalid syntax')}")
    number = int(text)
    if not -(1 << 63) <= number < 1 << 63:
        raise CronError(
            f"failed to parse int from {text}: {_atoi_error(text, 'value out of range')}"
        )
    if number < 0:
        raise CronError(f"negative number ({number}) not allowed: {text}")
    return number


def _atoi_error(text: str, reason: str) -> str:
    return f"strconv.Atoi: parsing {_go_quote(text)}: {reason}"


def _normalise(fields: list[str], parsed: list[tuple[set[int], bool]]) -> str:
    """croniter's spelling of the same schedule, with robfig's day-of-month/day-of-week rule:
    both restricted means either matches; otherwise both must."""
    (days, days_star), (months, _), (weekdays, weekdays_star) = parsed[2], parsed[3], parsed[4]
    if (
        weekdays_star
        and not days_star
        and all(d > _DAYS_IN_MONTH[m - 1] for m in months for d in days)
    ):
        raise CronError(f"day of month and month never coincide: {' '.join(fields)}")
    either = not days_star and not weekdays_star
    if either and (len(days) == 31 or len(weekdays) == 7):
        days_star = weekdays_star = True  # every day matches; croniter would read a full list as *
    texts = []
    for index, (values, star) in enumerate(parsed):
        star = days_star if index == 2 else weekdays_star if index == 4 else star
        texts.append("*" if star else ",".join(map(str, sorted(values))))
    return " ".join(texts)


# --- Go's time.ParseDuration, for @every ---------------------------------------------------

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5
    "μs": 1_000,  # U+03BC
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*)(\.([0-9]*))?([^0-9.]*)")


def _every(spec: str) -> timedelta:
    text = spec[len("@every ") :]
    try:
        nanos = _go_duration(text)
    except ValueError as err:
        raise CronError(f"failed to parse duration {spec}: {err}") from None
    seconds = max(nanos, 1_000_000_000) // 1_000_000_000  # robfig's Every: >= 1s, whole seconds
    return timedelta(seconds=seconds)


def _go_duration(text: str) -> int:
    """Nanoseconds, or ValueError with Go's message."""
    invalid = ValueError(f"time: invalid duration {_go_quote(text)}")
    rest, negative = text, False
    if rest[:1] in ("+", "-"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        match = _DURATION_PART.match(rest)
        assert match is not None
        whole, fraction, unit = match.group(1), match.group(3), match.group(4)
        if (not whole and not fraction) or len(whole) > 20:
            raise invalid
        if not unit:
            raise ValueError(f"time: missing unit in duration {_go_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {_go_quote(unit)} in duration {_go_quote(text)}")
        scale = _DURATION_UNITS[unit]
        value = int(whole or "0") * scale
        if fraction:
            value += int(int(fraction[:18]) * (scale / 10 ** len(fraction[:18])))
        total += value
        if total > 1 << 63:
            raise invalid
        rest = rest[match.end() :]
    if not negative and total > (1 << 63) - 1:
        raise invalid
    return -total if negative else total


def _go_quote(text: str) -> str:
    out: list[str] = []
    for char in text:
        if ord(char) >= 0x80 or ord(char) < 0x20:
            out.extend(f"\\x{byte:02x}" for byte in char.encode())
        else:
            out.append("\\" + char if char in '"\\' else char)
    return '"' + "".join(out) + '"'
