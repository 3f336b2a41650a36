"""The list engine's fast paths give exactly what a full sort would: partial selection (top-k),
memoized columns, and narrowing by an index."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flyteadmin.core.listing import (
    Column,
    ColumnType,
    EntitySchema,
    ListQuery,
    SortSpec,
    build_filter,
    evaluate,
    narrow,
    scan_in_order,
)
from flyteadmin.core.store import _SortedIndex, in_sorted_order


@dataclass
class Row:
    name: str
    text: str | None
    number: int | None
    when: datetime | None
    took: timedelta | None
    flag: bool | None
    memo: dict[Any, Any] = field(default_factory=dict)


def _schema(memoize: bool) -> EntitySchema:
    return EntitySchema(
        name="row",
        columns={
            "name": Column(ColumnType.STRING, lambda r: r.name),
            "text": Column(ColumnType.STRING, lambda r: r.text),
            "number": Column(ColumnType.INT, lambda r: r.number),
            "when": Column(ColumnType.TIMESTAMP, lambda r: r.when),
            "took": Column(ColumnType.DURATION, lambda r: r.took),
            "flag": Column(ColumnType.BOOL, lambda r: r.flag),
        },
        tiebreak=lambda r: r.name,
        memoize=memoize,
    )


def _rows(seed: int, n: int) -> list[Row]:
    rnd = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)

    def maybe(value):
        return None if rnd.random() < 0.15 else value

    return [
        Row(
            name=f"r{i:05d}",
            text=maybe(rnd.choice("abcde")),
            number=maybe(rnd.randint(-3, 3)),
            when=maybe(base + timedelta(seconds=rnd.randint(0, 20))),
            took=maybe(timedelta(seconds=rnd.randint(0, 5))),
            flag=maybe(rnd.random() < 0.5),
        )
        for i in range(n)
    ]


def _reference(rows: list[Row], key: str | None, ascending: bool) -> list[str]:
    """The plain definition: ties by name; None first ascending, last descending."""
    by_name = sorted(rows, key=lambda r: r.name)
    if key is None:
        return [r.name for r in by_name]
    present = [r for r in by_name if getattr(r, key) is not None]
    absent = [r for r in by_name if getattr(r, key) is None]
    present.sort(key=lambda r: getattr(r, key), reverse=not ascending)
    ordered = absent + present if ascending else present + absent
    return [r.name for r in ordered]


@pytest.mark.parametrize("memoize", [False, True])
@pytest.mark.parametrize("key", [None, "text", "number", "when", "took", "flag"])
@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize(("offset", "limit"), [(0, 3), (0, 10), (7, 5), (0, 0), (40, 50)])
def test_pages_match_a_full_sort(memoize, key, ascending, offset, limit):
    schema = _schema(memoize)
    rows = _rows(seed=zlib.crc32(repr((key, ascending, offset, limit)).encode()), n=120)
    sort = None if key is None else SortSpec(key, ascending)
    query = ListQuery(schema, (), sort, offset, limit)
    expected = _reference(rows, key, ascending)
    expected = expected[offset : offset + limit] if limit else expected[offset:]
    assert [r.name for r in evaluate(query, rows).items] == expected
    # A second run (memoized values now present) gives the same page.
    assert [r.name for r in evaluate(query, rows).items] == expected


def test_memoized_columns_are_computed_once_per_row():
    calls = []
    schema = EntitySchema(
        name="row",
        columns={"number": Column(ColumnType.INT, lambda r: calls.append(r.name) or r.number)},
        tiebreak=lambda r: r.name,
        memoize=True,
    )
    rows = [r for r in _rows(seed=1, n=30) if r.number is not None]
    query = ListQuery(schema, (build_filter(schema, "gte", "number", ["0"]),), None, 0, 5)
    evaluate(query, rows)
    evaluate(query, rows)
    assert sorted(calls) == sorted(r.name for r in rows)


def test_narrow_picks_the_most_selective_indexed_filter():
    schema = _schema(memoize=False)
    rows = _rows(seed=2, n=200)
    by_text: dict[Any, list[Row]] = {}
    by_flag: dict[Any, list[Row]] = {}
    for r in rows:
        by_text.setdefault(r.text, []).append(r)
        by_flag.setdefault(r.flag, []).append(r)
    counts = {
        "text": lambda v: len(by_text.get(v, [])),
        "flag": lambda v: len(by_flag.get(v, [])),
    }
    flag = build_filter(schema, "eq", "flag", ["true"])
    text = build_filter(schema, "value_in", "text", ["a", "b", "a"])
    number = build_filter(schema, "gte", "number", ["0"])
    query = ListQuery(schema, (flag, text, number), SortSpec("name", True), 0, 0)
    sizes = {flag: len(by_flag[True]), text: len(by_text["a"]) + len(by_text["b"])}
    chosen, size = narrow(query, counts)
    assert size == min(sizes.values()) and sizes[chosen] == size
    # No indexed filter: no plan.
    assert narrow(ListQuery(schema, (number,), None, 0, 0), counts) is None


@pytest.mark.parametrize("key", ["when", "number"])
@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize(("offset", "limit"), [(0, 5), (3, 7), (0, 0), (100, 10)])
def test_a_scan_in_order_gives_the_pages_of_a_full_sort(key, ascending, offset, limit):
    """Rows from a sorted index (sort value, then name; descending runs keep ascending names)
    through ``scan_in_order`` equal ``evaluate`` over the same rows."""
    schema = _schema(memoize=True)
    rows = _rows(seed=zlib.crc32(repr((key, ascending, offset, limit)).encode()), n=150)
    index = _SortedIndex(lambda r: ("p", (_order_value(getattr(r, key)), r.name)))
    for r in rows:
        index.put(r.name, r)
    by_name = {r.name: r for r in rows}
    in_order = [by_name[n] for n in in_sorted_order(index.snapshot("p"), not ascending)]
    not_e = build_filter(schema, "ne", "text", ["e"])
    query = ListQuery(schema, (not_e,), SortSpec(key, ascending), offset, limit)
    expected = evaluate(query, rows)
    got = scan_in_order(query, in_order)
    assert [r.name for r in got.items] == [r.name for r in expected.items]
    assert got.next_token == expected.next_token


def _order_value(value):
    """None first, as the list engine orders it."""
    if value is None:
        return (0, 0)
    return (1, value.timestamp() if isinstance(value, datetime) else value)


def test_the_sorted_index_follows_changes_and_removals():
    index = _SortedIndex(lambda v: (v[0], (v[1], v[2])))
    index.put("a", ("p", 2, "a"))
    index.put("b", ("p", 1, "b"))
    index.put("c", ("q", 1, "c"))
    index.put("d", ("p", 2, "d"))
    assert names(index, "p", descending=False) == ["b", "a", "d"]
    assert names(index, "p", descending=True) == ["a", "d", "b"]  # ties keep ascending names
    index.put("b", ("p", 3, "b"))  # its sort value changed
    index.remove("a")
    assert names(index, "p", descending=True) == ["b", "d"]
    index.put("d", ("q", 0, "d"))  # moved to another partition
    assert names(index, "p", descending=False) == ["b"]
    assert names(index, "q", descending=False) == ["d", "c"]
    index.clear()
    assert names(index, "p", descending=False) == []


def names(index: _SortedIndex, partition: str, descending: bool) -> list[str]:
    return list(in_sorted_order(index.snapshot(partition), descending))
