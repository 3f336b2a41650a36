"""The generic list engine: grammar, errors, typed values, sorting and paging (spec §1.4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest

from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.listing import (
    Column,
    ColumnType,
    EntitySchema,
    Join,
    ListQuery,
    SortSpec,
    build_filter,
    eq_filter,
    evaluate,
    parse_filters,
    parse_list_request,
)

# ---- a toy schema: executions joined to a workflow and to many tags --------------------------


@dataclass
class Wf:
    name: str
    version: str


@dataclass
class Tag:
    key: str


@dataclass
class Ex:
    name: str
    phase: str = "SUCCEEDED"
    state: int | None = 0
    score: float = 0.0
    created: datetime | None = None
    duration: timedelta | None = None
    archived: bool = False
    wf: Wf | None = None
    tags: list[Tag] = field(default_factory=list)
    project: str = "p"
    domain: str = "d"


WORKFLOW = EntitySchema(
    name="workflow",
    columns={
        "name": Column(ColumnType.STRING, lambda w: w.name),
        "version": Column(ColumnType.STRING, lambda w: w.version),
    },
    tiebreak=lambda w: (w.name, w.version),
)
TAG = EntitySchema(
    name="admin_tag",
    columns={"key": Column(ColumnType.STRING, lambda t: t.key)},
    aliases={"name": "key"},
    tiebreak=lambda t: t.key,
)
EXECUTION = EntitySchema(
    name="execution",
    columns={
        "execution_project": Column(ColumnType.STRING, lambda e: e.project),
        "execution_domain": Column(ColumnType.STRING, lambda e: e.domain),
        "execution_name": Column(ColumnType.STRING, lambda e: e.name),
        "phase": Column(ColumnType.ENUM_NAME, lambda e: e.phase),
        "state": Column(ColumnType.INT, lambda e: e.state),
        "score": Column(ColumnType.FLOAT, lambda e: e.score),
        "execution_created_at": Column(ColumnType.TIMESTAMP, lambda e: e.created),
        "duration": Column(ColumnType.DURATION, lambda e: e.duration),
        "archived": Column(ColumnType.BOOL, lambda e: e.archived),
    },
    aliases={
        "project": "execution_project",
        "domain": "execution_domain",
        "name": "execution_name",
    },
    joins={
        "workflow": Join(WORKFLOW, lambda e: e.wf),
        "admin_tag": Join(TAG, lambda e: e.tags, many=True),
    },
    tiebreak=lambda e: (e.project, e.domain, e.name),
    default_sort=SortSpec("execution_created_at", False),
)


def day(n: int) -> datetime:
    return datetime(2024, 1, n, tzinfo=UTC)


RECORDS = [
    Ex("alpha", "SUCCEEDED", 0, 0.5, day(1), timedelta(seconds=30), False, Wf("wf_a", "v1"),
       [Tag("gold")]),
    Ex("beta", "RUNNING", 1, 1.5, day(2), timedelta(hours=1, minutes=30), True, Wf("wfxa", "v2")),
    Ex("gamma", "QUEUED", None, 2.5, day(3), None, False, None, [Tag("gold"), Tag("blue")]),
    Ex("a_b", "FAILED", 2, -1.0, None, timedelta(milliseconds=300), False, Wf("other", "v1")),
    Ex("a%b", "SUCCEEDED", 0, 0.0, day(4), timedelta(seconds=1.5), True, None, [Tag("Blue")]),
]  # fmt: skip


def query(filters: str = "", **kwargs: object) -> ListQuery:
    args: dict[str, object] = dict(
        filters=filters, sort_key=None, ascending=False, token="", limit=100, rpc="ListExecutions"
    )
    args.update(kwargs)
    return parse_list_request(EXECUTION, **args)  # type: ignore[arg-type]


def names(q: ListQuery, records: list[Ex] = RECORDS) -> list[str]:
    return [e.name for e in evaluate(q, records).items]


def selected(filters: str) -> set[str]:
    return set(names(query(filters)))


def error_of(**kwargs: object) -> AdminError:
    with pytest.raises(AdminError) as caught:
        query(**kwargs)  # type: ignore[arg-type]
    return caught.value


# ---- functions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters, expected",
    [
        ("eq(phase,SUCCEEDED)", {"alpha", "a%b"}),
        ("eq(phase,succeeded)", set()),  # case-sensitive, like the DB
        ("ne(phase,SUCCEEDED)", {"beta", "gamma", "a_b"}),
        ("gt(state,0)", {"beta", "a_b"}),
        ("gte(state,1)", {"beta", "a_b"}),
        ("lt(state,1)", {"alpha", "a%b"}),
        ("lte(state,1)", {"alpha", "beta", "a%b"}),
        ("contains(name,et)", {"beta"}),
        ("contains(name,a_)", {"alpha", "gamma", "a_b", "a%b"}),  # `_` is a LIKE wildcard
        ("contains(name,a\\_)", {"a_b"}),  # backslash escapes it
        ("contains(name,A)", set()),  # case-sensitive
        ("not_like(name,a%)", {"beta", "gamma"}),
        ("not_like(name,a_b)", {"alpha", "beta", "gamma"}),  # a_b and a%b match `a_b`
        ("not_like(name,gamma)", {"alpha", "beta", "a_b", "a%b"}),  # no wildcard: equality
        ("value_in(phase,RUNNING;QUEUED)", {"beta", "gamma"}),
        ("value_in(phase,RUNNING)", {"beta"}),  # one value is fine
        ("value_not_in(phase,RUNNING;QUEUED)", {"alpha", "a_b", "a%b"}),
        ("value_in(state,0;2)", {"alpha", "a_b", "a%b"}),  # typed list
        ("eq(phase, SUCCEEDED)", {"alpha", "a%b"}),  # one space after the comma
        ("eq(phase,SUCCEEDED)+eq(archived,true)", {"a%b"}),  # `+` ANDs
        ("gt(score,0.5)+lt(score,2)+ne(name,x)", {"beta"}),
        ("eq(archived,f)", {"alpha", "gamma", "a_b"}),
    ],
)
def test_functions(filters: str, expected: set[str]) -> None:
    assert selected(filters) == expected


@pytest.mark.parametrize(
    "filters, expected",
    [
        # SQL NULL never matches: not even ne / value_not_in / lte.
        ("ne(state,1)", {"alpha", "a_b", "a%b"}),
        ("value_not_in(state,1)", {"alpha", "a_b", "a%b"}),
        ("lte(execution_created_at,2030-01-01)", {"alpha", "beta", "gamma", "a%b"}),
        ("gte(duration,0)", {"alpha", "beta", "a_b", "a%b"}),
    ],
)
def test_none_never_matches(filters: str, expected: set[str]) -> None:
    assert selected(filters) == expected


@pytest.mark.parametrize(
    "filters, expected",
    [
        ("eq(name,beta)", {"beta"}),  # alias -> execution_name
        ("eq(execution_name,beta)", {"beta"}),  # the column itself
        ("eq(execution.name,beta)", {"beta"}),  # own prefix is the primary entity
        ("eq(project,p)+eq(domain,d)", {"alpha", "beta", "gamma", "a_b", "a%b"}),
        ("eq(workflow.version,v1)", {"alpha", "a_b"}),  # join; None joins never match
        ("ne(workflow.version,v1)", {"beta"}),
        ("contains(workflow.name,wf_)", {"alpha", "beta"}),
        ("eq(admin_tag.name,gold)", {"alpha", "gamma"}),  # many-join + alias name -> key
        ("eq(admin_tag.key,blue)", {"gamma"}),
        ("eq(admin_tag.name,gold)+eq(admin_tag.name,blue)", {"gamma"}),  # each filter: any tag
        ("ne(admin_tag.name,gold)", {"gamma", "a%b"}),
    ],
)
def test_aliases_and_joins(filters: str, expected: set[str]) -> None:
    assert selected(filters) == expected


def test_filter_records_entity_and_canonical_field() -> None:
    (f,) = parse_filters(EXECUTION, "value_in(admin_tag.name,a;b)")
    assert (f.entity, f.field, f.function, f.values) == ("admin_tag", "key", "value_in", ("a", "b"))
    (g,) = parse_filters(EXECUTION, "eq(name,x)")
    assert (g.entity, g.field) == ("execution", "execution_name")


# ---- typed values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters, value",
    [
        ("eq(state,1)", 1),
        ("eq(state,-3)", -3),
        ("eq(score,1e3)", 1000.0),
        ("eq(score,.5)", 0.5),
        ("eq(archived,TRUE)", True),
        ("eq(archived,0)", False),
        ("eq(phase,007)", "007"),  # enum names and strings stay strings
        ("eq(execution_created_at,2024-01-01)", day(1)),
        ("eq(execution_created_at,2024-01-01T00:00:00Z)", day(1)),
        ("eq(execution_created_at,2023-12-31T21:30:00-02:30)", day(1)),
        (  # nanoseconds are truncated to microseconds
            "eq(execution_created_at,2024-01-01T00:00:00.123456789Z)",
            day(1).replace(microsecond=123456),
        ),
        ("eq(execution_created_at,2024-01-01 00:00:00)", day(1)),  # no offset: UTC
        ("eq(duration,90)", timedelta(seconds=90)),  # float seconds
        ("eq(duration,1.5)", timedelta(seconds=1.5)),
        ("eq(duration,1h30m)", timedelta(hours=1, minutes=30)),
        ("eq(duration,1.5s)", timedelta(seconds=1.5)),
        ("eq(duration,300ms)", timedelta(milliseconds=300)),
        ("eq(duration,2m3.5s)", timedelta(minutes=2, seconds=3.5)),
        ("eq(duration,-1h)", timedelta(hours=-1)),
        ("eq(duration,10us)", timedelta(microseconds=10)),
        ("eq(duration,1500ns)", timedelta(microseconds=2)),  # microsecond resolution, rounded
        ("eq(duration,0)", timedelta()),
    ],
)
def test_values_are_converted_at_parse_time(filters: str, value: object) -> None:
    (f,) = parse_filters(EXECUTION, filters)
    assert f.values == (value,)
    assert type(f.values[0]) is type(value)


def test_timestamp_values_are_utc() -> None:
    (f,) = parse_filters(EXECUTION, "gt(execution_created_at,2023-12-31T19:00:00-05:00)")
    assert f.values[0].tzinfo == UTC and f.values[0] == day(1)
    assert f.values[0] == datetime(2023, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    "filters, expected",
    [
        ("gte(execution_created_at,2024-01-02)", {"beta", "gamma", "a%b"}),
        ("lt(execution_created_at,2024-01-02T00:00:00Z)", {"alpha"}),
        ("gt(duration,1h)", {"beta"}),
        ("gte(duration,1h30m)", {"beta"}),
        ("lt(duration,1.5)", {"a_b"}),
        ("lte(duration,1.5s)", {"a_b", "a%b"}),
        ("eq(duration,300ms)", {"a_b"}),
        ("gt(duration,29.5)+lt(duration,31)", {"alpha"}),
    ],
)
def test_typed_comparisons(filters: str, expected: set[str]) -> None:
    assert selected(filters) == expected


# ---- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters, message",
    [
        ("eq(phase)", "invalid value for filters"),
        ("phase=SUCCEEDED", "invalid value for filters"),
        ("eq(phase,)", "invalid value for filters"),
        ("eq(phase,x)+", "invalid value for filters"),
        ("+eq(phase,x)", "invalid value for filters"),
        ("eq(phase,x)++eq(phase,y)", "invalid value for filters"),
        # `+` separates expressions everywhere, so a `+hh:mm` offset cannot be used (use Z or -).
        ("gt(execution_created_at,2024-01-01T05:00:00+05:00)", "invalid value for filters"),
        ("is(phase,x)", "unrecognized filter function: is"),
        ("EQ(phase,x)", "unrecognized filter function: EQ"),
        # A bare `+` over HTTP decodes to a space: the greedy pattern then reads the first
        # expression as part of the function name (flyteadmin does the same).
        ("eq(phase,x) eq(name,y)", "unrecognized filter function: eq(phase,x) eq"),
        ("eq(phase,A;B)", "invalid single value filter expression: equal"),
        ("ne(phase,A;B)", "invalid single value filter expression: not equal"),
        ("gte(state,1;2)", "invalid single value filter expression: greater than or equal"),
        ("contains(name,a;b)", "invalid single value filter expression: contains"),
        ("not_like(name,a;)", "invalid single value filter expression: not like"),
        ("eq(launch_plan.name,x)", "'launch_plan' entity is not allowed in filters"),
        ("eq(task.name,x)", "'task' entity is not allowed in filters"),
        (
            "eq(admin_tag.name,x)+eq(node_execution.phase,x)",
            "'node_execution' entity is not allowed in filters",
        ),
        ("eq(foo,x)", "'execution.foo' is invalid filter"),
        ("eq(execution.foo,x)", "'execution.foo' is invalid filter"),
        ("eq(workflow.phase,x)", "'workflow.phase' is invalid filter"),
        ("eq(unknown.name,x)", "'execution.unknown.name' is invalid filter"),  # not an entity
        ("eq(phase,x)+eq(version,1)", "'execution.version' is invalid filter"),
        ("eq(state,abc)", "invalid value 'abc' for filter 'execution.state': expected an integer"),
        (
            "value_in(state,1;x)",
            "invalid value 'x' for filter 'execution.state': expected an integer",
        ),
        ("eq(state,1.0)", "invalid value '1.0' for filter 'execution.state': expected an integer"),
        ("eq(score,nan)", "invalid value 'nan' for filter 'execution.score': expected a number"),
        (
            "eq(archived,maybe)",
            "invalid value 'maybe' for filter 'execution.archived': expected a boolean",
        ),
        (
            "gt(execution_created_at,yesterday)",
            "invalid value 'yesterday' for filter 'execution.execution_created_at': "
            "expected an RFC 3339 timestamp or a date (2024-01-01)",
        ),
        (
            "gt(execution_created_at,2024-13-01)",
            "invalid value '2024-13-01' for filter 'execution.execution_created_at': "
            "expected an RFC 3339 timestamp or a date (2024-01-01)",
        ),
        (
            "gt(duration,1d)",
            "invalid value '1d' for filter 'execution.duration': "
            "expected seconds or a duration like 1h30m",
        ),
        ("contains(state,1)", "filter function contains needs a text field: 'execution.state'"),
        (
            "not_like(duration,1%)",
            "filter function not_like needs a text field: 'execution.duration'",
        ),
    ],
)
def test_filter_errors(filters: str, message: str) -> None:
    err = error_of(filters=filters)
    assert (err.code, err.message) == (Code.INVALID_ARGUMENT, message)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sort_key": "name"}, "invalid sort key 'name'"),  # aliases are for filters only
        ({"sort_key": ""}, "invalid sort key ''"),
        ({"sort_key": "workflow.name"}, "invalid sort key 'workflow.name'"),
        ({"limit": 0}, "invalid value for limit"),
        ({"limit": -1}, "invalid value for limit"),
        ({"token": "-1"}, "invalid pagination token -1 for ListExecutions"),
        ({"token": "abc"}, "invalid pagination token abc for ListExecutions"),
        ({"token": "1.0"}, "invalid pagination token 1.0 for ListExecutions"),
        ({"token": " 1"}, "invalid pagination token  1 for ListExecutions"),
        ({"token": "1_0"}, "invalid pagination token 1_0 for ListExecutions"),
        ({"token": str(2**63)}, f"invalid pagination token {2**63} for ListExecutions"),
        ({"token": "x", "rpc": "ListTasks"}, "invalid pagination token x for ListTasks"),
        # flyteadmin's order: limit, filters, sort, token.
        ({"limit": 0, "filters": "bad", "token": "x"}, "invalid value for limit"),
        ({"filters": "bad", "sort_key": "x", "token": "x"}, "invalid value for filters"),
        ({"sort_key": "x", "token": "x"}, "invalid sort key 'x'"),
    ],
)
def test_request_errors(kwargs: dict[str, object], message: str) -> None:
    err = error_of(**kwargs)
    assert (err.code, err.message) == (Code.INVALID_ARGUMENT, message)


# ---- sorting ----------------------------------------------------------------------------------

TIED = [Ex("b", score=1.0), Ex("c", score=2.0), Ex("a", score=1.0), Ex("d", score=None)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sort_key, ascending, records, expected",
    [
        ("execution_name", True, RECORDS, ["a%b", "a_b", "alpha", "beta", "gamma"]),
        ("execution_name", False, RECORDS, ["gamma", "beta", "alpha", "a_b", "a%b"]),
        ("state", True, RECORDS, ["gamma", "a%b", "alpha", "beta", "a_b"]),  # None first
        ("state", False, RECORDS, ["a_b", "beta", "a%b", "alpha", "gamma"]),  # None last
        ("duration", True, RECORDS, ["gamma", "a_b", "a%b", "alpha", "beta"]),
        ("execution_created_at", True, RECORDS, ["a_b", "alpha", "beta", "gamma", "a%b"]),
        # Ties are broken by the tiebreak key, ascending, in both directions.
        ("score", True, TIED, ["d", "a", "b", "c"]),
        ("score", False, TIED, ["c", "a", "b", "d"]),
        # No sort_by: the schema default (created desc, None last), not the input order.
        (None, True, RECORDS, ["a%b", "gamma", "beta", "alpha", "a_b"]),
    ],
)
def test_sort(
    sort_key: str | None, ascending: bool, records: list[Ex], expected: list[str]
) -> None:
    assert names(query(sort_key=sort_key, ascending=ascending), records) == expected


def test_sort_is_independent_of_input_order() -> None:
    q = query(sort_key="score", ascending=True)
    assert names(q, TIED) == names(q, list(reversed(TIED))) == ["d", "a", "b", "c"]


def test_no_default_sort_uses_tiebreak_order() -> None:
    bare = EntitySchema(
        name="workflow", columns=WORKFLOW.columns, tiebreak=lambda w: (w.name, w.version)
    )
    q = parse_list_request(
        bare, filters="", sort_key=None, ascending=False, token="", limit=10, rpc="ListWorkflows"
    )
    wfs = [Wf("b", "1"), Wf("a", "2"), Wf("a", "1")]
    assert evaluate(q, wfs).items == [Wf("a", "1"), Wf("a", "2"), Wf("b", "1")]


# ---- paging -----------------------------------------------------------------------------------

SIX = [Ex(f"e{i}") for i in range(6)]


@pytest.mark.parametrize(
    "token, limit, expected, next_token",
    [
        ("", 4, ["e0", "e1", "e2", "e3"], "4"),
        ("4", 4, ["e4", "e5"], ""),  # short page: done
        ("0", 3, ["e0", "e1", "e2"], "3"),
        ("3", 3, ["e3", "e4", "e5"], "6"),  # exactly full last page: one more token...
        ("6", 3, [], ""),  # ...then an empty page
        ("+2", 2, ["e2", "e3"], "4"),  # Go's Atoi takes a sign
        ("-0", 1, ["e0"], "1"),
        ("100", 5, [], ""),
    ],
)
def test_paging(token: str, limit: int, expected: list[str], next_token: str) -> None:
    page = evaluate(query(token=token, limit=limit, sort_key="execution_name", ascending=True), SIX)
    assert ([e.name for e in page.items], page.next_token) == (expected, next_token)


@pytest.mark.parametrize(
    "records, token, expected_count, next_token",
    [
        (SIX, "", 6, ""),
        (SIX, "2", 4, ""),
        ([], "", 0, ""),  # flyteadmin answered token "0" here; fixed (docs/decisions.md)
    ],
)
def test_zero_limit_means_all(
    records: list[Ex], token: str, expected_count: int, next_token: str
) -> None:
    q = query(limit=0, zero_limit_means_all=True, token=token)
    page = evaluate(q, records)
    assert (len(page.items), page.next_token) == (expected_count, next_token)


def test_paging_applies_after_filter_and_sort() -> None:
    q = query("ne(phase,QUEUED)", sort_key="execution_name", ascending=False, token="1", limit=2)
    page = evaluate(q, RECORDS)
    assert ([e.name for e in page.items], page.next_token) == (["alpha", "a_b"], "3")


# ---- implicit filters -------------------------------------------------------------------------


def test_implicit_filters_come_first_and_are_anded() -> None:
    records = [Ex("x", project="p1"), Ex("y", project="p2"), Ex("z", project="p1", phase="FAILED")]
    q = query("eq(phase,SUCCEEDED)", implicit=[eq_filter(EXECUTION, "project", "p1")])
    assert [f.field for f in q.filters] == ["execution_project", "phase"]
    assert names(q, records) == ["x"]


def test_with_filters_adds_a_default() -> None:
    q = query().with_filters(build_filter(EXECUTION, "ne", "archived", ["true"]))
    assert set(names(q)) == {"alpha", "gamma", "a_b"}
    assert query().filters == ()


def test_eq_filter_checks_and_converts() -> None:
    assert eq_filter(EXECUTION, "state", "2").values == (2,)
    with pytest.raises(AdminError, match="'execution.nope' is invalid filter"):
        eq_filter(EXECUTION, "nope", "x")


def test_empty_filters_select_everything() -> None:
    assert parse_filters(EXECUTION, "") == ()
    assert len(names(query(""))) == len(RECORDS)


# ---- schema checks and speed ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"aliases": {"n": "missing"}}, "aliases"),
        ({"default_sort": SortSpec("missing", True)}, "default sort"),
        ({"joins": {"workflow": Join(WORKFLOW, lambda w: w)}}, "join itself"),
    ],
)
def test_schema_mistakes_fail_early(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EntitySchema(name="workflow", columns=WORKFLOW.columns, tiebreak=lambda w: w, **kwargs)  # type: ignore[arg-type]


def test_ten_thousand_records_filter_and_sort() -> None:
    records = [
        Ex(f"e{i:05d}", phase=("SUCCEEDED", "FAILED", "RUNNING")[i % 3], state=i % 2,
           created=day(1) + timedelta(seconds=(i * 7919) % 10_000))
        for i in range(10_000)
    ]  # fmt: skip
    q = query(
        "value_in(phase,SUCCEEDED;FAILED)+eq(state,0)+gte(execution_created_at,2024-01-01)",
        sort_key="execution_created_at",
        limit=100,
    )
    page = evaluate(q, records)  # speed is measured by bench/, not asserted here
    assert len(page.items) == 100 and page.next_token == "100"
    assert all(e.state == 0 and e.phase != "RUNNING" for e in page.items)
    assert [e.created for e in page.items] == sorted((e.created for e in page.items), reverse=True)


def test_page_memo_keeps_answers_only_while_the_state_is_unchanged():
    from flyteadmin.core.listing import PageMemo

    state = [0]
    memo: PageMemo[str] = PageMemo(lambda: state[0], max_entries=2)
    assert memo.get(b"a") == (None, 0)
    memo.put(b"a", 0, "answer a")
    assert memo.get(b"a") == ("answer a", 0)
    assert memo.get(b"b") == (None, 0)  # keyed by the request
    state[0] = 1  # the collection changed
    assert memo.get(b"a") == (None, 1)
    # An answer made from a state that changed before it was put is not kept.
    _, at = memo.get(b"c")
    state[0] = 2
    memo.put(b"c", at, "stale")
    assert memo.get(b"c") == (None, 2)
    # Bounded: past max_entries it starts over rather than growing.
    for key in (b"x", b"y", b"z"):
        memo.put(key, 2, key.decode())
    assert memo.get(b"z") == ("z", 2) and memo.get(b"x") == (None, 2)
