"""The list engine behind every List RPC: parse a request into a typed query, evaluate it.

flyteadmin turns ``filters``/``sort_by``/``token``/``limit`` into SQL. We serve lists from an
in-memory cache, so the same request becomes a ``ListQuery`` (``parse_list_request``, pure) that
``evaluate`` (pure) runs over plain Python records. The whole grammar and every message lives
here (spec §1.4). Each entity describes its columns once, in an ``EntitySchema``.

Where SQL and Python differ, we pick (and callers should know):

* A record value of ``None`` (SQL NULL) never satisfies a filter, not even ``ne``/``value_not_in``.
* Sorting puts ``None`` first when ascending and last when descending (Postgres does the
  opposite). Ties are broken by the schema's ``tiebreak`` key, ascending, so pages are stable.
* Without ``sort_by`` flyteadmin had no ORDER BY (DB order); we use ``schema.default_sort``.
* Filter values are converted to the column's type when parsing, so ``eq(state,abc)`` on an INT
  column is InvalidArgument here (flyteadmin: a database error, code Unknown).
* ``contains``/``not_like`` are SQL LIKE: ``%`` and ``_`` are wildcards (also inside
  ``contains``, as in flyteadmin), ``\\`` escapes, case-sensitive, text columns only.
* Messages name entities by prefix ("'launch_plan' entity ...", "'execution.foo' ..."), where
  flyteadmin printed its table aliases ('l', 'e'). A `;` list given to a single-value function is
  "invalid single value filter expression: <name>" (flyteadmin's text; it sent it to the DB).
* As in flyteadmin, `+` always separates expressions: a `+05:00` offset cannot be written (use
  Z or a negative offset), and a `+` that became a space reads as part of a function name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import heapq
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

from flyteadmin.core.errors import invalid_argument, invalid_value, quoted

R = TypeVar("R")
A = TypeVar("A")
Getter = Callable[[Any], Any]
Predicate = Callable[[Any], bool]


class ColumnType(enum.Enum):
    STRING = "a string"
    INT = "an integer"
    FLOAT = "a number"
    TIMESTAMP = "an RFC 3339 timestamp or a date (2024-01-01)"  # getters return aware UTC datetimes
    DURATION = "seconds or a duration like 1h30m"  # getters return timedelta
    ENUM_NAME = "an enum name"  # compared as a string, e.g. phase "SUCCEEDED"
    BOOL = "a boolean"


_TEXT_TYPES = frozenset({ColumnType.STRING, ColumnType.ENUM_NAME})


@dataclass(frozen=True, slots=True)
class Column:
    type: ColumnType
    get: Getter  # record -> value or None


@dataclass(frozen=True, slots=True)
class Join:
    schema: EntitySchema
    # record -> joined record or None; with many=True an iterable of joined records, and a filter
    # holds when any of them matches (e.g. execution tags).
    get: Getter
    many: bool = False


class SortSpec(NamedTuple):
    key: str  # a column of the primary entity
    ascending: bool


@dataclass(frozen=True, eq=False)
class EntitySchema:
    name: str  # entity prefix naming this entity in filters ("execution", "project", ...)
    columns: Mapping[str, Column]  # filterable and sortable columns (spec §1.6)
    tiebreak: Getter  # record -> unique, comparable key (e.g. the identifier tuple)
    default_sort: SortSpec | None = None  # used without sort_by; None: tiebreak order only
    # Filter field -> column name, e.g. execution "project" -> "execution_project".
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    joins: Mapping[str, Join] = dataclasses.field(default_factory=dict)  # entity prefix -> join
    # True when every column is a pure function of the record: the values are then kept in
    # the record's ``memo`` (store.Stored), so repeated lists do not recompute them. Columns
    # that look at other collections (e.g. a launch plan's active state) must leave it False.
    memoize: bool = False

    def getter(self, column: str) -> Getter:
        get = self.columns[column].get
        return _memoized(get) if self.memoize else get

    def __post_init__(self) -> None:
        # Schema mistakes are programming errors: fail at import, not on a request.
        bad = [a for a, c in self.aliases.items() if c not in self.columns]
        if bad:
            raise ValueError(f"{self.name}: aliases {bad} name no column")
        if self.default_sort and self.default_sort.key not in self.columns:
            raise ValueError(f"{self.name}: default sort {self.default_sort.key!r} is no column")
        if self.name in self.joins:
            raise ValueError(f"{self.name}: an entity cannot join itself")


def _memoized(get: Getter, key: Any = None) -> Getter:
    """``get``, remembering each record's value in its ``memo`` under ``key`` (default: the
    getter itself, so one getter means one value whichever schema uses it)."""
    key = get if key is None else key

    def cached(r: Any) -> Any:
        memo = getattr(r, "memo", None)
        if memo is None:
            return get(r)
        try:
            return memo[key]
        except KeyError:
            value = memo[key] = get(r)
            return value

    return cached


@dataclass(frozen=True, slots=True)
class Filter:
    entity: str  # the prefix the field was resolved against (the primary entity's name if none)
    field: str  # column name, after aliasing
    function: str  # "eq", "value_in", ...
    values: tuple[Any, ...]  # converted to the column's type
    matches: Predicate = dataclasses.field(compare=False, repr=False)  # primary record -> bool


@dataclass(frozen=True, slots=True)
class ListQuery:
    schema: EntitySchema
    filters: tuple[Filter, ...]  # ANDed
    sort: SortSpec | None  # None: tiebreak order only
    offset: int
    limit: int  # 0 only when zero_limit_means_all: no limit

    def with_filters(self, *extra: Filter) -> ListQuery:
        """E.g. ListExecutions' "hide archived unless a state filter was given"."""
        return dataclasses.replace(self, filters=self.filters + extra)


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    items: list[R]
    next_token: str  # "" when there is no next page


# Prefixes flyteadmin recognises as entities (§1.4). A field with any other dotted prefix is
# taken as a plain column name of the primary entity (and is then an invalid filter).
ENTITY_PREFIXES = frozenset({
    "task", "workflow", "launch_plan", "execution", "node_execution", "task_execution",
    "entities", "named_entity_metadata", "project", "signal", "admin_tag",
    "execution_admin_tag", "execution_tag",
})  # fmt: skip

_EXPRESSION_SEPARATOR = "+"
_VALUE_SEPARATOR = ";"
# Bounds on one request's filters, so that parsing and matching stay cheap whatever is sent
# (flyteadmin has none; it hands the string to its regular expression and the database).
MAX_FILTERS_LENGTH = 16_384  # characters of the whole `filters` string
MAX_EXPRESSIONS = 20  # `+`-separated expressions
MAX_VALUES = 1_000  # `;`-separated values of one expression
MAX_SCALAR_VALUE_LENGTH = 64  # a number, time or duration value (text values: the total only)
# The most rows one page may ask for. flyteadmin has no maximum (and no default); its clients
# ask for 100 or fewer (flyteconsole 25 and 100, flytekit and flytectl 100).
MAX_PAGE_SIZE = 10_000


# ---- values -----------------------------------------------------------------------------------

# Every pattern below is unambiguous (no two ways to match one text), so a failed match costs
# linear time, never backtracking.
_INT = re.compile(r"[+-]?[0-9]+")
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_FLOAT = re.compile(rf"[+-]?{_NUMBER}(?:[eE][+-]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
_GO_DURATION_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_GO_DURATION = re.compile(rf"[+-]?(?:{_GO_DURATION_PART.pattern})+")
_MICROSECONDS = {"ns": 1e-3, "us": 1, "µs": 1, "μs": 1, "ms": 1e3, "s": 1e6, "m": 6e7, "h": 3.6e9}
_BOOLS = dict.fromkeys(("true", "t", "yes", "y", "on", "1"), True) | dict.fromkeys(
    ("false", "f", "no", "n", "off", "0"), False
)  # Postgres' spellings


def _to_timestamp(raw: str) -> datetime:
    if not _TIMESTAMP.fullmatch(raw):
        raise ValueError(raw)
    parsed = datetime.fromisoformat(raw.upper())  # truncates below microseconds
    # No offset: UTC, which is what the DB session used.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _to_duration(raw: str) -> timedelta:
    # Like flyteadmin: a bare number is seconds, anything else a Go duration string.
    if _FLOAT.fullmatch(raw):
        seconds = float(raw)
        if not math.isfinite(seconds):
            raise ValueError(raw)
        return timedelta(seconds=seconds)
    if not _GO_DURATION.fullmatch(raw):
        raise ValueError(raw)
    micros = sum(float(n) * _MICROSECONDS[u] for n, u in _GO_DURATION_PART.findall(raw))
    return timedelta(microseconds=-micros if raw.startswith("-") else micros)


def _to_int(raw: str) -> int:
    if not _INT.fullmatch(raw):
        raise ValueError(raw)
    return int(raw)


def _to_float(raw: str) -> float:
    if not _FLOAT.fullmatch(raw) or not math.isfinite(value := float(raw)):
        raise ValueError(raw)
    return value


def _to_bool(raw: str) -> bool:
    return _BOOLS[raw.lower()]


_CONVERTERS: dict[ColumnType, Callable[[str], Any]] = {
    ColumnType.STRING: str,
    ColumnType.ENUM_NAME: str,
    ColumnType.INT: _to_int,
    ColumnType.FLOAT: _to_float,
    ColumnType.TIMESTAMP: _to_timestamp,
    ColumnType.DURATION: _to_duration,
    ColumnType.BOOL: _to_bool,
}


# ---- functions --------------------------------------------------------------------------------


def _like(pattern: str) -> Callable[[str], bool]:
    """SQL LIKE (Postgres defaults): % any run, _ one character, backslash escapes.

    Matched without backtracking: the pattern is cut at its ``%`` into fixed-width segments;
    the first must match at the start, the last at the end, and each one between at its
    leftmost place after the previous one (leftmost is always safe: it leaves the most room
    for the rest). Each segment costs at most one scan of the value."""
    segments = _like_segments(pattern)
    if len(segments) == 1:
        (only,) = segments
        return lambda v: len(v) == only.width and only.at(v, 0)
    first, middle, last = segments[0], segments[1:-1], segments[-1]
    if len(middle) == 1 and not first.width and not last.width and middle[0].literal:
        inner = middle[0].text
        return lambda v: inner in v  # the common `contains` case: a plain substring
    needed = sum(segment.width for segment in segments)

    def matches(v: str) -> bool:
        if len(v) < needed or not first.at(v, 0):
            return False
        tail = len(v) - last.width
        if not last.at(v, tail):
            return False
        position = first.width
        for segment in middle:
            found = segment.find(v, position, tail)
            if found < 0:
                return False
            position = found + segment.width
        return True

    return matches


class _Segment:
    """A run of a LIKE pattern between two ``%``: characters, None for ``_``."""

    def __init__(self, chars: list[str | None]) -> None:
        self.width = len(chars)
        self.literal = None not in chars
        self.text = "".join(c or "" for c in chars)
        # Fixed width, no quantifiers: a search cannot backtrack beyond the segment's width.
        self.regex = (
            None
            if self.literal
            else re.compile("".join("." if c is None else re.escape(c) for c in chars), re.S)
        )

    def at(self, value: str, position: int) -> bool:
        if position < 0:
            return False
        if self.literal:
            return value.startswith(self.text, position)
        return self.regex.match(value, position, position + self.width) is not None  # type: ignore[union-attr]

    def find(self, value: str, start: int, end: int) -> int:
        if self.literal:
            return value.find(self.text, start, end)
        found = self.regex.search(value, start, end)  # type: ignore[union-attr]
        return -1 if found is None else found.start()


def _like_segments(pattern: str) -> list[_Segment]:
    segments: list[_Segment] = []
    current: list[str | None] = []
    chars = iter(pattern)
    for c in chars:
        if c == "%":
            segments.append(_Segment(current))
            current = []
        elif c == "_":
            current.append(None)
        elif c == "\\":
            current.append(next(chars, "\\"))
        else:
            current.append(c)
    segments.append(_Segment(current))
    return segments


def _not_like(pattern: str) -> Callable[[str], bool]:
    like = _like(pattern)
    return lambda v: not like(v)


def _single(make: Callable[[Any], Callable[[Any], bool]]) -> Callable[[tuple[Any, ...]], Any]:
    return lambda values: make(values[0])


@dataclass(frozen=True, slots=True)
class _Function:
    label: str  # flyteadmin's name for it in error messages
    repeated: bool  # takes a `;` list (any length >= 1)
    text_only: bool  # LIKE: STRING / ENUM_NAME columns only
    test: Callable[[tuple[Any, ...]], Callable[[Any], bool]]  # values -> test of a non-None value


_FUNCTIONS: dict[str, _Function] = {
    "eq": _Function("equal", False, False, _single(lambda t: lambda v: v == t)),
    "ne": _Function("not equal", False, False, _single(lambda t: lambda v: v != t)),
    "gt": _Function("greater than", False, False, _single(lambda t: lambda v: v > t)),
    "gte": _Function("greater than or equal", False, False, _single(lambda t: lambda v: v >= t)),
    "lt": _Function("less than", False, False, _single(lambda t: lambda v: v < t)),
    "lte": _Function("less than or equal", False, False, _single(lambda t: lambda v: v <= t)),
    "contains": _Function("contains", False, True, _single(lambda t: _like(f"%{t}%"))),
    "not_like": _Function("not like", False, True, _single(_not_like)),
    "value_in": _Function("value in", True, False, lambda ts: frozenset(ts).__contains__),
    "value_not_in": _Function(
        "value not in", True, False, lambda ts: (lambda s: lambda v: v not in s)(frozenset(ts))
    ),
}


# ---- parsing ----------------------------------------------------------------------------------


def _resolve(schema: EntitySchema, field: str) -> tuple[str, EntitySchema, Join | None, str]:
    """(entity label, the entity's schema, its join or None, field without prefix)."""
    prefix, dot, rest = field.partition(".")
    known = prefix in ENTITY_PREFIXES or prefix in schema.joins or prefix == schema.name
    if not dot or not known:
        return schema.name, schema, None, field
    if prefix == schema.name:
        return prefix, schema, None, rest
    join = schema.joins.get(prefix)
    if join is None:
        raise invalid_argument(f"'{quoted(prefix)}' entity is not allowed in filters")
    return prefix, join.schema, join, rest


def build_filter(schema: EntitySchema, function: str, field: str, values: Sequence[str]) -> Filter:
    """One filter expression, checked and with its values converted; raises AdminError."""
    entity, target, join, name = _resolve(schema, field)
    column_name = target.aliases.get(name, name)
    column = target.columns.get(column_name)
    if column is None:
        raise invalid_argument(f"'{entity}.{quoted(name)}' is invalid filter")
    fn = _FUNCTIONS.get(function)
    if fn is None:
        raise invalid_argument(f"unrecognized filter function: {quoted(function)}")
    if not fn.repeated and len(values) != 1:
        raise invalid_argument(f"invalid single value filter expression: {fn.label}")
    if fn.text_only and column.type not in _TEXT_TYPES:
        raise invalid_argument(f"filter function {function} needs a text field: '{entity}.{name}'")
    convert = _CONVERTERS[column.type]
    converted = []
    for raw in values:
        try:
            if len(raw) > MAX_SCALAR_VALUE_LENGTH and column.type not in _TEXT_TYPES:
                raise ValueError(raw)  # no number, time or duration is that long
            converted.append(convert(raw))
        except (ValueError, KeyError, OverflowError):
            raise invalid_argument(
                f"invalid value '{quoted(raw)}' for filter '{entity}.{name}': "
                f"expected {column.type.value}"
            ) from None
    on_record = _on_record(target, column_name, fn, tuple(converted))
    matches: Predicate = on_record
    if join is not None and join.many:
        jget = join.get
        matches = lambda r: any(on_record(j) for j in (jget(r) or ()))  # noqa: E731
    elif join is not None:
        jget = join.get
        matches = lambda r: (j := jget(r)) is not None and on_record(j)  # noqa: E731
    return Filter(entity, column_name, function, tuple(converted), matches)


def _on_record(
    target: EntitySchema, column: str, fn: _Function, values: tuple[Any, ...]
) -> Predicate:
    test, get = fn.test(values), target.getter(column)
    return lambda r: (v := get(r)) is not None and test(v)


def joined_matches(schema: EntitySchema, f: Filter) -> Predicate:
    """A filter on a joined entity (``f.entity`` is one of ``schema.joins``) as a test of that
    entity's own records: e.g. which launch plans ``eq(launch_plan.name,x)`` of ListExecutions
    accepts (history queries turn the answer into a membership test on the joined ids)."""
    target = schema.joins[f.entity].schema
    return _on_record(target, f.field, _FUNCTIONS[f.function], f.values)


def eq_filter(schema: EntitySchema, field: str, value: str) -> Filter:
    """The implicit identifier filters (project/domain/name from the request id)."""
    return build_filter(schema, "eq", field, [value])


def parse_filters(schema: EntitySchema, filters: str) -> tuple[Filter, ...]:
    """flyteadmin's `filters` grammar; "" means none. Linear in the length of ``filters``."""
    if not filters:
        return ()
    if len(filters) > MAX_FILTERS_LENGTH:
        raise invalid_argument(
            f"filters is too long: {len(filters)} characters, at most {MAX_FILTERS_LENGTH}"
        )
    expressions = filters.split(_EXPRESSION_SEPARATOR)
    if len(expressions) > MAX_EXPRESSIONS:
        raise invalid_argument(
            f"too many filter expressions: {len(expressions)}, at most {MAX_EXPRESSIONS}"
        )
    parsed = []
    for expression in expressions:
        match = split_expression(expression)
        if match is None:
            raise invalid_value("filters")
        function, field, value = match
        values = value.split(_VALUE_SEPARATOR)
        if len(values) > MAX_VALUES:
            raise invalid_argument(
                f"too many values in filter {quoted(function)}: {len(values)}, at most {MAX_VALUES}"
            )
        parsed.append(build_filter(schema, function, field, values))
    return tuple(parsed)


# Go's \s (ASCII whitespace); `.` matches anything but a newline.
_SPACE = frozenset("\t\n\f\r ")


def split_expression(text: str) -> tuple[str, str, str] | None:
    """(function, field, value) as flyteadmin's ``(.+)\\((.+),\\s?(.+)\\)`` finds them:
    unanchored, leftmost, every group greedy (Go's leftmost-first rules, which a backtracking
    engine also follows), found with a few scans instead of a regular expression that takes
    cubic time on inputs like ``((((...))))``.

    The match starts at the beginning of the first line that holds one (a line cannot be
    crossed by ``.``, only by ``\\s`` consuming a newline right after the comma). Within that
    line the greedy choices are: the last comma that still leaves a non-empty value and a
    closing parenthesis after it (the comma may end the line when the value is on the next
    line), then the last opening parenthesis at least two characters before that comma, then
    one whitespace character after the comma if the value stays non-empty, and the value up
    to the last closing parenthesis."""
    start, size = 0, len(text)
    while start <= size:
        end = text.find("\n", start)
        end = size if end < 0 else end
        found = _split_line(text, start, end)
        if found is not None or end == size:
            return found
        start = end + 1
    return None


def _rfind(text: str, char: str, start: int, end: int) -> int:
    """``str.rfind`` in ``text[start:end]``, with no wrap-around for a negative ``end``."""
    return text.rfind(char, start, end) if end > start else -1


def _split_line(text: str, start: int, end: int) -> tuple[str, str, str] | None:
    close = text.rfind(")", start, end)
    # A comma that ends the line, with the value on the next line (\s took the newline).
    next_close = -1
    if end < len(text) and end - 1 >= start and text[end - 1] == ",":
        next_end = text.find("\n", end + 1)
        next_end = len(text) if next_end < 0 else next_end
        next_close = text.rfind(")", end + 1, next_end)
    if next_close >= end + 2:
        comma = end - 1
        value = text[end + 1 : next_close]
    else:
        if close < 0:
            return None
        comma = _rfind(text, ",", start, close - 1)  # leaves at least one value character
        if comma < 0:
            return None
        after = comma + 1
        skip = text[after] in _SPACE and close >= after + 2
        value = text[after + skip : close]
    opening = _rfind(text, "(", start + 1, comma - 1)  # non-empty function and field
    if opening < 0:
        return None
    return text[start:opening], text[opening + 1 : comma], value


_MAX_OFFSET = 2**63 - 1  # Go's strconv.Atoi fails beyond int64


def parse_token(token: str, rpc: str) -> int:
    """A page token is a decimal row offset; "" is 0."""
    if not token:
        return 0
    if not _INT.fullmatch(token) or not 0 <= int(token) <= _MAX_OFFSET:
        raise invalid_argument(f"invalid pagination token {quoted(token)} for {rpc}")
    return int(token)


def check_limit(limit: int, zero_limit_means_all: bool = False) -> None:
    """A page size: more than 0 (or 0 for "all" where that is allowed) and at most
    ``MAX_PAGE_SIZE``."""
    if limit < 0 or (limit == 0 and not zero_limit_means_all):
        raise invalid_value("limit")
    if limit > MAX_PAGE_SIZE:
        raise invalid_argument(f"limit {limit} is more than the maximum page size {MAX_PAGE_SIZE}")


def parse_list_request(
    schema: EntitySchema,
    *,
    filters: str,
    sort_key: str | None,
    ascending: bool,
    token: str,
    limit: int,
    rpc: str,
    zero_limit_means_all: bool = False,
    implicit: Sequence[Filter] = (),
) -> ListQuery:
    """Check a list request in flyteadmin's order (limit, filters, sort, token); pure.

    ``sort_key`` is None when the request has no ``sort_by``; ``ascending`` is
    ``sort_by.direction == ASCENDING`` (the proto default, 0, is DESCENDING).
    """
    check_limit(limit, zero_limit_means_all)
    parsed = tuple(implicit) + parse_filters(schema, filters)
    if sort_key is None:
        sort = schema.default_sort
    elif sort_key in schema.columns:
        sort = SortSpec(sort_key, ascending)
    else:
        raise invalid_argument(f"invalid sort key '{quoted(sort_key)}'")
    return ListQuery(schema, parsed, sort, parse_token(token, rpc), limit)


# ---- evaluation -------------------------------------------------------------------------------


# Column types whose values map to numbers, so "descending" can be "ascending on the negation".
_NEGATE: dict[ColumnType, Callable[[Any], float]] = {
    ColumnType.INT: lambda v: -v,
    ColumnType.FLOAT: lambda v: -v,
    ColumnType.BOOL: lambda v: -int(v),
    ColumnType.TIMESTAMP: lambda v: -v.timestamp(),
    ColumnType.DURATION: lambda v: -v.total_seconds(),
}


def narrow(
    query: ListQuery, counts: Mapping[str, Callable[[Any], int]]
) -> tuple[Filter, int] | None:
    """The query's most selective indexed filter: among its ``eq`` and ``value_in`` filters on
    a column of the primary entity that ``counts`` knows (``value -> rows in the index``), the
    one matching fewest rows, with that number; None if there is none. The caller reads the
    rows of that filter's values from its index; every filter still runs over them, so an
    index only has to give a superset."""
    best: tuple[Filter, int] | None = None
    for f in query.filters:
        count = counts.get(f.field)
        if count is None or f.entity != query.schema.name:
            continue
        if f.function not in ("eq", "value_in"):
            continue
        size = sum(count(value) for value in set(f.values))
        if best is None or size < best[1]:
            best = (f, size)
    return best


def _ordered(query: ListQuery, rows: list[R], wanted: int) -> list[R]:
    """``rows`` in the query's order: the sort column (None first when ascending, last when
    descending), ties by the ascending tiebreak. Only the first ``wanted`` rows are exact when
    ``wanted`` is given (a partial selection is much cheaper than a full sort of a big list)."""
    schema, sort = query.schema, query.sort
    tiebreak = _memoized(schema.tiebreak) if schema.memoize else schema.tiebreak
    if sort is None:
        if wanted and wanted < len(rows) // 4:
            return heapq.nsmallest(wanted, rows, key=tiebreak)
        return sorted(rows, key=tiebreak)
    get = schema.getter(sort.key)
    present: list[R] = []
    absent: list[R] = []
    for r in rows:
        (absent if get(r) is None else present).append(r)
    negate = None if sort.ascending else _NEGATE.get(schema.columns[sort.key].type)
    if sort.ascending or negate is not None:
        head = sorted(absent, key=tiebreak) if sort.ascending else []
        if sort.ascending:
            key = lambda r: (get(r), tiebreak(r))  # noqa: E731
        else:
            flip = negate  # not None here: bound for the lambda, which mypy does not narrow
            assert flip is not None
            key = lambda r: (flip(get(r)), tiebreak(r))  # noqa: E731
        if schema.memoize:
            key = _memoized(key, (schema.tiebreak, schema.columns[sort.key].get, sort.ascending))
        remaining = wanted - len(head) if wanted else 0
        if wanted and 0 <= remaining < len(present) // 4:
            body = heapq.nsmallest(remaining, present, key=key)
        else:
            body = sorted(present, key=key)
        return head + body if sort.ascending else body + sorted(absent, key=tiebreak)
    # Descending on text: sort by the tiebreak, then stably by the value in reverse.
    present.sort(key=tiebreak)
    present.sort(key=get, reverse=True)
    return present + sorted(absent, key=tiebreak)


def evaluate(query: ListQuery, records: Iterable[R]) -> Page[R]:
    """Filter, sort, and cut one page out of ``records``."""
    rows: Iterable[R] = records
    for f in query.filters:
        rows = filter(f.matches, rows)
    wanted = query.offset + query.limit if query.limit else 0
    return cut(query, _ordered(query, list(rows), wanted))


# Lists over more rows than this are evaluated on a worker thread: a few thousand rows cost
# tens of milliseconds of Python, which the event loop must not spend while others wait. The
# thread gives the loop the GIL back every few milliseconds (sys.getswitchinterval).
OFF_LOOP_ROWS = 1_000
_WORKERS = ThreadPoolExecutor(2, thread_name_prefix="lists")


async def evaluate_async(query: ListQuery, records: Sequence[R]) -> Page[R]:
    """``evaluate``, on a worker thread when ``records`` are many. The records are a snapshot
    (the store's lists are copies) and every value in them is immutable."""
    if len(records) < OFF_LOOP_ROWS:
        return evaluate(query, records)
    return await asyncio.get_running_loop().run_in_executor(_WORKERS, evaluate, query, records)


def scan_in_order(query: ListQuery, rows_in_order: Iterable[R]) -> Page[R]:
    """``evaluate`` for rows that already come in the query's order (sort column as asked,
    ties by ascending tiebreak, e.g. from a sorted index): filters them and stops as soon as
    the page is complete, instead of sorting everything."""
    wanted = query.offset + query.limit if query.limit else 0
    matches: list[R] = []
    for r in rows_in_order:
        if all(f.matches(r) for f in query.filters):
            matches.append(r)
            if wanted and len(matches) >= wanted:
                break
    return cut(query, matches)


class PageMemo(Generic[A]):
    """A list RPC's answers, kept while the collection they come from is unchanged
    (``Collection.changes``), keyed by the request's bytes: clients and consoles ask for the
    same page of a kind that rarely changes (ListProjects) over and over. Used on the event
    loop only; ``put`` refuses an answer made from a state that has changed since its ``get``."""

    def __init__(self, changes: Callable[[], int], max_entries: int = 256) -> None:
        self._changes, self._max = changes, max_entries
        self._at = -1
        self._answers: dict[bytes, A] = {}

    def get(self, key: bytes) -> tuple[A | None, int]:
        """The kept answer, if any, and the state to ``put`` a new one with."""
        at = self._changes()
        if at != self._at:
            self._answers.clear()
            self._at = at
        return self._answers.get(key), at

    def put(self, key: bytes, at: int, answer: A) -> None:
        if at != self._at or at != self._changes():
            return  # made from a state that is gone
        if len(self._answers) >= self._max:
            self._answers.clear()  # many distinct requests (filters, tokens): start over
        self._answers[key] = answer


def cut(query: ListQuery, ordered: list[R]) -> Page[R]:
    """The page of ``ordered``, rows that already match the query's filters, in its order."""
    start = query.offset
    items = ordered[start : start + query.limit] if query.limit else ordered[start:]
    # flyteadmin's rule: a token whenever the page is exactly full, so a full last page is
    # followed by an empty one. With ListProjects' "limit 0 = all" flyteadmin also returned
    # token "0" for an empty result; a client paging until the token is empty would loop
    # forever on it, so we return no token there (docs/decisions.md).
    full = query.limit > 0 and len(items) == query.limit
    next_token = str(start + len(items)) if full else ""
    return Page(items, next_token)


__all__ = [
    "ENTITY_PREFIXES",
    "Column",
    "ColumnType",
    "EntitySchema",
    "Filter",
    "Join",
    "ListQuery",
    "Page",
    "SortSpec",
    "build_filter",
    "cut",
    "check_limit",
    "eq_filter",
    "evaluate",
    "evaluate_async",
    "joined_matches",
    "narrow",
    "parse_filters",
    "parse_list_request",
    "parse_token",
    "scan_in_order",
    "split_expression",
]
