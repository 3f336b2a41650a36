"""The grammar-to-SQL translation agrees with the in-memory list engine.

A few hundred random executions go into a Parquet file (the history row format); many random
ListExecutions requests (every function, every column type, tags and the launch plan /
workflow / task joins, tricky LIKE patterns, sorts both ways, offsets) are parsed once and
answered twice: by ``listing.evaluate`` over the records in memory, and by DuckDB running
``sql.where`` + ``sql.order_by`` over the file. Same rows, same order, every time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2

from flyteadmin.core import listing
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import AdminError
from flyteadmin.core.executions.listing import execution_schema
from flyteadmin.core.history import parquet, rows, sql
from flyteadmin.core.registration import tasks as task_registration
from flyteadmin.core.registration import workflows as workflow_registration
from flyteadmin.core.registration.entities import entity_schema, id_columns
from flyteadmin.core.store import Stored
from tests import history_samples as samples

RT = identifier_pb2.ResourceType
WF = core_execution.WorkflowExecution.Phase
T0 = dt.datetime(2026, 2, 27, 23, 0, tzinfo=dt.UTC)
PROJECTS = (("flytesnacks", "development"), ("flytesnacks", "production"), ("ml", "development"))
LAUNCH_PLANS = ("etl.daily", "train.wf", "Ünïcode_lp", "report%weekly")
VERSIONS = ("v1", "v2", "v_3")
TEXT = ["a", "b", "é", "%", "_", "\\", "-", ".", "x", "ab", "A"]
QUERIES = 600
# Connecting takes ~0.2 s; queries on one connection take milliseconds.
CONNECTION = duckdb.connect(config={"threads": 1})


def registered(rng: random.Random, rt: int, message_type, registered_share: float) -> list:
    out = []
    for project, domain in PROJECTS:
        for name in LAUNCH_PLANS:
            for version in VERSIONS:
                if rng.random() > registered_share:
                    continue  # an execution of an unregistered version joins nothing
                ident = samples.ident(rt, project, domain, name, version)
                created = T0 - dt.timedelta(days=rng.randrange(30))
                value = Registered(message_type(id=ident), digest=rng.choice(["d1", "d2"]))
                out.append(Stored(f"{name}-{version}", 1, "", created, value))
    return out


def random_execution(rng: random.Random, i: int):
    project, domain = rng.choice(PROJECTS)
    created = rng.choice(
        [None, T0, T0 + dt.timedelta(microseconds=1)]
        + [T0 + dt.timedelta(minutes=rng.randrange(-3000, 3000)) for _ in range(6)]
    )
    shape = samples.Shape(
        project=project,
        domain=domain,
        name=f"e{i:04d}{rng.choice(['', 'a', 'é', '_', '%'])}",
        created_at=created,
        phase=rng.choice(list(WF.values())),
        launch_plan=rng.choice(LAUNCH_PLANS),
        version=rng.choice(VERSIONS),
        principal=rng.choice(["alice", "bob", "ünï", "a_b", "a%b", "a\\b", ""]),
        mode=rng.randrange(4),
        failed=rng.random() < 0.2,
        single_task=rng.random() < 0.3,
        labels=tuple(
            rng.sample(
                [("team", "ml"), ("team", "data"), ("env", "é"), ("k_1", "")], rng.randrange(3)
            )
        ),
        tags=tuple(rng.sample(["nightly", "adhoc", "a%"], rng.randrange(3))),
        archived=rng.random() < 0.2,
        duration=rng.choice(
            [None, dt.timedelta(seconds=rng.randrange(0, 5000), microseconds=rng.randrange(10**6))]
        ),
    )
    record = samples.execution(shape)
    if rng.random() < 0.1:  # never started
        record.execution.closure.ClearField("started_at")
    return Stored(f"x{i}", 1, "", T0, record)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    rng = random.Random(20261205)
    launch_plans = samples.Registry(
        entity_schema("launch_plan", id_columns()),
        registered(rng, RT.LAUNCH_PLAN, launch_plan_pb2.LaunchPlan, 0.7),
    )
    workflows = samples.Registry(
        workflow_registration.SCHEMA, registered(rng, RT.WORKFLOW, workflow_pb2.Workflow, 0.8)
    )
    tasks = samples.Registry(task_registration.SCHEMA, registered(rng, RT.TASK, task_pb2.Task, 0.8))
    schema = execution_schema(launch_plans, workflows, tasks)
    records = [random_execution(rng, i) for i in range(300)]
    path = tmp_path_factory.mktemp("sql") / "executions.parquet"
    data = parquet.sorted_rows(rows.EXECUTIONS, rows.EXECUTIONS.arrow(records, T0))
    parquet.write_file(rows.EXECUTIONS, data, path, parquet.FileOptions(row_group_rows=64))
    registries = {"launch_plan": launch_plans, "workflow": workflows, "task": tasks}
    return schema, records, path, samples.resolver(schema, registries)


def text_value(rng: random.Random, seen: list[str]) -> str:
    if seen and rng.random() < 0.5:
        value = rng.choice(seen)
        if value and rng.random() < 0.5:  # a piece of it
            a = rng.randrange(len(value))
            value = value[a : a + rng.randrange(1, 4)]
        return value or "a"
    return "".join(rng.choice(TEXT) for _ in range(rng.randrange(1, 4)))


def time_value(rng: random.Random) -> str:
    moment = T0 + dt.timedelta(minutes=rng.randrange(-3000, 3000), microseconds=rng.choice([0, 1]))
    return rng.choice(
        [
            moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            moment.strftime("%Y-%m-%d"),
            moment.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat(),
            T0.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ]
    )


def value_for(rng: random.Random, column_type: listing.ColumnType, seen: list[str]) -> str:
    match column_type:
        case listing.ColumnType.INT:
            return str(rng.choice([0, 1, 2, 3, -1, 2**63, -(2**64), 10**40]))
        case listing.ColumnType.TIMESTAMP:
            return time_value(rng)
        case listing.ColumnType.DURATION:
            return rng.choice(["0", "2500.5", "1h", "30m15s", "4000s", "-1s", "999999999999s"])
        case listing.ColumnType.ENUM_NAME:
            return rng.choice([*WF.keys(), "SUCC", "R"])
        case _:
            return text_value(rng, seen)


def random_filter(rng: random.Random, schema: listing.EntitySchema, seen) -> str:
    entity = rng.choice(["", "", "", "execution.", "admin_tag.", "execution_tag.", "launch_plan.",
                         "workflow.", "task."])  # fmt: skip
    target = schema if entity in ("", "execution.") else schema.joins[entity[:-1]].schema
    names = [*target.columns, *target.aliases]
    field = rng.choice(names)
    column = target.columns[target.aliases.get(field, field)]
    functions = ["eq", "ne", "gt", "gte", "lt", "lte", "value_in", "value_not_in"]
    if column.type in (listing.ColumnType.STRING, listing.ColumnType.ENUM_NAME):
        functions += ["contains", "contains", "not_like", "not_like"]
    function = rng.choice(functions)
    count = rng.randrange(1, 4) if function.startswith("value_") else 1
    values = [value_for(rng, column.type, seen.get(field, [])) for _ in range(count)]
    return f"{function}({entity}{field},{';'.join(values)})"


def queries(
    schema: listing.EntitySchema, records: list[Stored]
) -> Iterator[tuple[str, listing.ListQuery]]:
    rng = random.Random(7)
    seen: dict[str, list[str]] = {}
    for column in ("name", "user", "error_code", "phase", "key", "value", "execution_name"):
        seen[column] = []
    for r in records:
        seen["name"].append(r.value.id.name)
        seen["user"].append(r.value.execution.spec.metadata.principal)
        seen["key"] += list(r.value.execution.spec.labels.values)
        seen["value"] += list(r.value.execution.spec.labels.values.values())
    seen["execution_name"] = seen["name"]
    produced = 0
    while produced < QUERIES:
        filters = "+".join(random_filter(rng, schema, seen) for _ in range(rng.randrange(0, 4)))
        sort_key = rng.choice([None, *schema.columns])
        try:
            query = listing.parse_list_request(
                schema,
                filters=filters,
                sort_key=sort_key,
                ascending=rng.random() < 0.5,
                token=str(rng.choice([0, 0, 3, 50])),
                limit=rng.choice([1, 5, 20, 100]),
                rpc="ListExecutions",
            )
        except AdminError:
            continue  # an invalid request is the parser's business, tested elsewhere
        produced += 1
        yield filters, query


def sql_names(path: Path, query: listing.ListQuery, resolve) -> list[tuple[str, str, str]]:
    clause = sql.where(query, resolve)
    statement = (
        'SELECT "execution_project", "execution_domain", "execution_name" '
        f"FROM read_parquet(?) WHERE {clause.sql} ORDER BY {sql.order_by(query)} LIMIT ?"
    )
    params = [str(path), *clause.params, query.offset + query.limit]
    return [tuple(r) for r in CONNECTION.execute(statement, params).fetchall()]


def test_random_queries_agree_with_the_list_engine(world):
    schema, records, path, resolve = world
    matched = 0
    for filters, query in queries(schema, records):
        expected_query = dataclasses.replace(query, offset=0, limit=query.offset + query.limit)
        expected = [
            (r.value.id.project, r.value.id.domain, r.value.id.name)
            for r in listing.evaluate(expected_query, records).items
        ]
        got = sql_names(path, query, resolve)
        assert got == expected, (filters, query.sort)
        matched += bool(expected)
    assert matched > QUERIES // 3  # the queries are not all empty


@pytest.mark.parametrize(
    "pattern, value, matches",
    [
        ("a%", "abc", True),
        ("a\\%", "a%", True),
        ("a\\%", "abc", False),
        ("a_c", "abc", True),
        ("a_c", "aéc", True),
        ("a\\_c", "abc", False),
        ("a\\", "a\\", True),  # a trailing backslash is a literal one
        ("a\\\\", "a\\", True),
        ("%\n%", "x\ny", True),
        ("\\a", "a", True),
    ],
)
def test_like_patterns_mean_the_same(pattern: str, value: str, matches: bool):
    (got,) = CONNECTION.execute(
        "SELECT ? LIKE ? ESCAPE '\\'", [value, sql.like_pattern(pattern)]
    ).fetchone()
    assert got is matches
    assert listing._like(pattern)(value) is matches
