"""ListExecutions' grammar (§1.4, §1.6): the execution columns, their flyteadmin names, and the
joins on launch plan, workflow, task and tags."""

from __future__ import annotations

import datetime as dt

from flyteadmin.core.listing import Column, ColumnType, EntitySchema, ListQuery, SortSpec


def _time(stamp) -> dt.datetime | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=dt.UTC)


def _phase(r) -> str:
    from flyteidl.core import execution_pb2

    return execution_pb2.WorkflowExecution.Phase.Name(r.value.phase)


def _duration(r):
    closure = r.value.execution.closure
    return closure.duration.ToTimedelta() if closure.HasField("duration") else None


SCHEMA = EntitySchema(
    name="execution",
    columns={
        "execution_project": Column(ColumnType.STRING, lambda r: r.value.id.project),
        "execution_domain": Column(ColumnType.STRING, lambda r: r.value.id.domain),
        "execution_name": Column(ColumnType.STRING, lambda r: r.value.id.name),
        "phase": Column(ColumnType.ENUM_NAME, _phase),
        "state": Column(ColumnType.INT, lambda r: r.value.state),
        "mode": Column(ColumnType.INT, lambda r: r.value.execution.spec.metadata.mode),
        "user": Column(ColumnType.STRING, lambda r: r.value.execution.spec.metadata.principal),
        "execution_created_at": Column(ColumnType.TIMESTAMP, lambda r: r.created_at),
        "created_at": Column(ColumnType.TIMESTAMP, lambda r: r.created_at),
        "execution_updated_at": Column(
            ColumnType.TIMESTAMP, lambda r: _time(r.value.execution.closure.updated_at)
        ),
        "updated_at": Column(
            ColumnType.TIMESTAMP, lambda r: _time(r.value.execution.closure.updated_at)
        ),
        "started_at": Column(
            ColumnType.TIMESTAMP, lambda r: _time(r.value.execution.closure.started_at)
        ),
        "duration": Column(ColumnType.DURATION, _duration),
        "launch_entity": Column(
            ColumnType.STRING, lambda r: "task" if r.value.task_id is not None else "launch_plan"
        ),
        "error_code": Column(ColumnType.STRING, lambda r: r.value.execution.closure.error.code),
    },
    aliases={
        "project": "execution_project",
        "domain": "execution_domain",
        "name": "execution_name",
    },
    tiebreak=lambda r: (r.value.id.project, r.value.id.domain, r.value.id.name),
    default_sort=SortSpec("execution_created_at", ascending=False),
)


def state_filter_given(query: ListQuery) -> bool:
    return any(f.entity == "execution" and f.field == "state" for f in query.filters)
