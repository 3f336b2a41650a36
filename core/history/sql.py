"""ListExecutions' filter grammar (core/listing.py) as DuckDB SQL over the executions files.

``listing.evaluate`` is the reference: for the same records, ``WHERE`` + ``ORDER BY`` here give
the same rows in the same order (tests/unit/test_history_sql.py checks it on random queries).
Every value is a bound parameter. How the listing's rules map:

* NULL never satisfies a filter: SQL's three-valued logic already says so for every function
  here (``NULL <> x``, ``NULL NOT IN (...)`` and ``NOT (NULL LIKE p)`` are all NULL).
* ``contains``/``not_like`` are LIKE with ``%``/``_`` wildcards and backslash escapes; DuckDB has
  no default escape character and rejects a pattern ending in one, so the pattern is re-spelled
  with ``ESCAPE '\\'`` (a trailing backslash is a literal backslash, as in the listing).
* Sorting: NULLS FIRST ascending, NULLS LAST descending, then the tiebreak (project, domain,
  name) ascending. Strings compare by code point in both (DuckDB's binary collation on UTF-8).
* DURATION columns hold microseconds; INT filter values beyond BIGINT are clamped to just
  outside its range (every comparison with a BIGINT column keeps its answer).
* Joins: tags are a list column of the row ("any tag matches": EXISTS over its elements);
  ``launch_plan.``, ``workflow.`` and ``task.`` filters are resolved by the caller into the ids
  of registered entities that match, and become a membership test on the row's id columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flyteadmin.core.history.rows import EXECUTIONS, micros
from flyteadmin.core.listing import ColumnType, Filter, ListQuery

EntityId = tuple[str, str, str, str]  # (project, domain, name, version)
ResolveJoin = Callable[[Filter], Iterable[EntityId]]

ESCAPE = "\\"
_INT64 = (-(2**63), 2**63 - 1)
_COMPARISONS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_ID_LIST = "STRUCT(p VARCHAR, d VARCHAR, n VARCHAR, v VARCHAR)[]"

# Joined entities stored in the row: list-of-struct columns, with the joined schema's columns.
_INLINE_JOINS = {"admin_tag": "tags", "execution_tag": "tags"}
# Joined registered entities: the row's id column holding the id the join compares.
_ID_JOINS = {"launch_plan": "launch_plan_id", "workflow": "workflow_id", "task": "task_id"}
_TIEBREAK = ("execution_project", "execution_domain", "execution_name")


def quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def like_pattern(pattern: str) -> str:
    """A listing LIKE pattern spelled for ``LIKE ? ESCAPE '\\'``: the same wildcards, every
    literal ``%``, ``_`` or backslash escaped (including a trailing lone backslash)."""
    out: list[str] = []
    chars = iter(pattern)
    for c in chars:
        literal = next(chars, ESCAPE) if c == ESCAPE else None
        if literal is None and c in "%_":
            out.append(c)
        else:
            text = c if literal is None else literal
            out.append(ESCAPE + text if text in "%_\\" else text)
    return "".join(out)


def _clamp(value: int) -> int:
    low, high = _INT64
    return min(max(value, low - 1), high + 1)


_PARAM: dict[ColumnType, Callable[[Any], Any]] = {
    ColumnType.INT: _clamp,
    ColumnType.DURATION: lambda v: _clamp(micros(v)) if isinstance(v, timedelta) else v,
}


@dataclass
class Clause:
    """SQL text with its ``?`` parameters, in order."""

    sql: str = "TRUE"
    params: list[Any] = field(default_factory=list)


def _predicate(column_sql: str, column_type: ColumnType, f: Filter) -> Clause:
    convert = _PARAM.get(column_type, lambda v: v)
    values = [convert(v) for v in f.values]
    if f.function in _COMPARISONS:
        return Clause(f"{column_sql} {_COMPARISONS[f.function]} ?", values)
    if f.function in ("value_in", "value_not_in"):
        negate = "NOT " if f.function == "value_not_in" else ""
        marks = ", ".join("?" * len(values))
        return Clause(f"{column_sql} {negate}IN ({marks})", values)
    if f.function == "contains":
        return Clause(f"{column_sql} LIKE ? ESCAPE '\\'", [like_pattern(f"%{values[0]}%")])
    if f.function == "not_like":
        return Clause(f"NOT ({column_sql} LIKE ? ESCAPE '\\')", [like_pattern(values[0])])
    raise ValueError(f"no SQL for filter function {f.function!r}")


def _filter(query: ListQuery, f: Filter, resolve_join: ResolveJoin) -> Clause:
    schema = query.schema
    if f.entity == schema.name:
        column = EXECUTIONS.listing_columns()[f.field]
        return _predicate(quoted(column.name), schema.columns[f.field].type, f)
    join = schema.joins[f.entity]
    if f.entity in _INLINE_JOINS:
        inner = _predicate(f"_e.{quoted(f.field)}", join.schema.columns[f.field].type, f)
        source = quoted(_INLINE_JOINS[f.entity])
        return Clause(f"EXISTS (SELECT 1 FROM unnest({source}) AS _j(_e) WHERE {inner.sql})",
                      inner.params)  # fmt: skip
    ids = [dict(zip("pdnv", i, strict=True)) for i in resolve_join(f)]
    id_column = quoted(_ID_JOINS[f.entity])
    fields = ", ".join(f"{id_column}.{quoted(k)}" for k in ("project", "domain", "name", "version"))
    return Clause(f"({fields}) IN (SELECT unnest(?::{_ID_LIST}, recursive := true))", [ids])


def where(query: ListQuery, resolve_join: ResolveJoin) -> Clause:
    """The query's filters, ANDed."""
    clauses = [_filter(query, f, resolve_join) for f in query.filters]
    if not clauses:
        return Clause()
    return Clause(
        " AND ".join(f"({c.sql})" for c in clauses), [p for c in clauses for p in c.params]
    )


def order_by(query: ListQuery) -> str:
    """The query's order: the sort column (NULLS FIRST ascending, LAST descending), then the
    tiebreak ascending."""
    keys = [f"{quoted(c)} ASC" for c in _TIEBREAK]
    if query.sort is not None:
        column = quoted(EXECUTIONS.listing_columns()[query.sort.key].name)
        direction = "ASC NULLS FIRST" if query.sort.ascending else "DESC NULLS LAST"
        keys.insert(0, f"{column} {direction}")
    return ", ".join(keys)
