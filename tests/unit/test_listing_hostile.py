"""The list grammar under hostile input (issue 12 §1): the expression splitter gives exactly
what flyteadmin's regular expression gives, in linear time; LIKE matching never backtracks; a
request's filters and page are bounded."""

from __future__ import annotations

import random
import re

import pytest

from flyteadmin.core import listing
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.listing import (
    MAX_EXPRESSIONS,
    MAX_FILTERS_LENGTH,
    MAX_PAGE_SIZE,
    MAX_VALUES,
    Column,
    ColumnType,
    EntitySchema,
    build_filter,
    parse_filters,
    parse_list_request,
    split_expression,
)

# flyteadmin's pattern, as the parser used it before: the reference for the splitter.
REFERENCE = re.compile(r"(.+)\((.+),[\t\n\f\r ]?(.+)\)")

SCHEMA = EntitySchema(
    name="task",
    columns={
        "name": Column(ColumnType.STRING, lambda r: r["name"]),
        "state": Column(ColumnType.INT, lambda r: r["state"]),
        "created_at": Column(ColumnType.TIMESTAMP, lambda r: None),
        "duration": Column(ColumnType.DURATION, lambda r: None),
        "score": Column(ColumnType.FLOAT, lambda r: None),
    },
    tiebreak=lambda r: r["name"],
)


def _reference(text: str) -> tuple[str, str, str] | None:
    found = REFERENCE.search(text)
    return None if found is None else found.groups()


@pytest.mark.parametrize(
    "text",
    [
        "eq(name,foo)",
        "eq(name, foo)",
        "eq(name,  foo)",
        "eq(name, )",
        "eq(name,\t)",
        "eq(name,f(x))",
        "contains(name,a(b)",
        "eq(workflow.name,a,b)",
        "value_in(phase,A;B)",
        "eq(a,b)c)",
        "x(y(z,w),v)",
        "eq(name,foo",
        "eq(name)",
        "(a,b)",
        "e(,b)",
        "eq(name,\nfoo)",
        "eq(name,\n)",
        "junk\neq(name,foo)",
        "eq(na\nme,foo)",
        "a(b,c)\nd(e,f)",
        "",
    ],
)
def test_the_splitter_agrees_with_flyteadmins_expression(text):
    assert split_expression(text) == _reference(text)


def test_the_splitter_agrees_on_random_texts():
    rng = random.Random(7)
    alphabet = "(),,  \t\nab;%"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert split_expression(text) == _reference(text), repr(text)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 20_000 + ")" * 20_000,
        "eq(a,b" * 5_000,
        "(a," * 10_000,
        "," * 30_000 + ")",
        "(\n," * 10_000,
    ],
)
def test_the_splitter_is_linear_on_inputs_that_made_the_regex_backtrack(text):
    # Not a timing assertion: the reference regex needs minutes (or hours) for these; a
    # linear scan finishes however slow the machine is, within the suite's own timeout.
    split_expression(text)


# ---- LIKE --------------------------------------------------------------------------------


def _like_reference(pattern: str) -> re.Pattern[str]:
    parts, chars = [], iter(pattern)
    for c in chars:
        if c == "\\":
            parts.append(re.escape(next(chars, "\\")))
        else:
            parts.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
    return re.compile("".join(parts), re.DOTALL)


def test_like_agrees_with_a_regex_translation():
    rng = random.Random(11)
    for _ in range(20_000):
        pattern = "".join(rng.choice("ab%_\\") for _ in range(rng.randint(0, 7)))
        value = "".join(rng.choice("ab%_\\") for _ in range(rng.randint(0, 9)))
        want = _like_reference(pattern).fullmatch(value) is not None
        assert listing._like(pattern)(value) is want, (pattern, value)


def test_like_needs_no_backtracking():
    # A backtracking matcher takes exponential time on these; this one returns at once.
    assert not listing._like("a%" * 2_000 + "b")("a" * 5_000)
    assert not listing._like("%a%a%a%a%a%a%a%a%b")("a" * 40)
    assert listing._like("%a_%" * 500)("ab" * 600)


def test_contains_and_not_like_filters_match_like_sql():
    rows = [{"name": n, "state": 0} for n in ("a%b", "axb", "ab", "a_b")]
    f = build_filter(SCHEMA, "contains", "name", ["a\\%"])
    assert [r["name"] for r in rows if f.matches(r)] == ["a%b"]
    f = build_filter(SCHEMA, "not_like", "name", ["a_b"])
    assert [r["name"] for r in rows if f.matches(r)] == ["ab"]


# ---- bounds ------------------------------------------------------------------------------


def _error(call) -> AdminError:
    with pytest.raises(AdminError) as info:
        call()
    assert info.value.code == Code.INVALID_ARGUMENT
    return info.value


def test_filters_are_bounded_in_length_expressions_and_values():
    message = _error(lambda: parse_filters(SCHEMA, "eq(name,a)" + "x" * MAX_FILTERS_LENGTH)).message
    assert "at most 16384" in message
    many = "+".join(["eq(name,a)"] * (MAX_EXPRESSIONS + 1))
    assert f"at most {MAX_EXPRESSIONS}" in _error(lambda: parse_filters(SCHEMA, many)).message
    values = ";".join(["a"] * (MAX_VALUES + 1))
    text = f"value_in(name,{values})"
    assert f"at most {MAX_VALUES}" in _error(lambda: parse_filters(SCHEMA, text)).message
    assert len(parse_filters(SCHEMA, "+".join(["eq(name,a)"] * MAX_EXPRESSIONS))) == 20


@pytest.mark.parametrize(
    "value", ["1" * 5_000 + "x", "1" * 5_000, "1h" * 1_000 + "x", "1." * 3_000]
)
@pytest.mark.parametrize("column", ["state", "duration", "score", "created_at"])
def test_long_number_time_and_duration_values_are_refused(column, value):
    message = _error(lambda: build_filter(SCHEMA, "eq", column, [value])).message
    assert len(message) < 300  # quotes a short prefix of the value only


def test_messages_quote_a_short_prefix_of_the_input():
    huge = "q" * 100_000
    for text in (f"{huge}(name,a)", f"eq({huge},a)", f"eq(name;{huge},a)"):
        assert len(_error(lambda t=text: parse_filters(SCHEMA, t)).message) < 300
    for call in (
        lambda: parse_list_request(
            SCHEMA, filters="", sort_key=huge, ascending=True, token="", limit=1, rpc="ListTasks"
        ),
        lambda: parse_list_request(
            SCHEMA, filters="", sort_key=None, ascending=True, token=huge, limit=1, rpc="ListTasks"
        ),
    ):
        assert len(_error(call).message) < 300


def test_page_size_is_bounded():
    def ask(limit: int):
        return parse_list_request(
            SCHEMA, filters="", sort_key=None, ascending=True, token="", limit=limit, rpc="X"
        )

    assert ask(MAX_PAGE_SIZE).limit == MAX_PAGE_SIZE
    message = _error(lambda: ask(MAX_PAGE_SIZE + 1)).message
    assert message == f"limit {MAX_PAGE_SIZE + 1} is more than the maximum page size 10000"
    assert _error(lambda: ask(2**32 - 1)).code == Code.INVALID_ARGUMENT
