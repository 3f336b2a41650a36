"""ListExecutions' grammar (§1.4, §1.6): the execution columns, their flyteadmin names, and the
joins on launch plan, workflow, task and tags."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from flyteidl.core import execution_pb2

from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.listing import Column, ColumnType, EntitySchema, Join, ListQuery, SortSpec
from flyteadmin.core.store import Stored
from flyteadmin.core.timestamps import stamp_datetime

if TYPE_CHECKING:  # the registration services import this module's SCHEMA
    from flyteadmin.core.registration.entities import VersionedEntities


def phase_name(phase: int) -> str:
    return execution_pb2.WorkflowExecution.Phase.Name(phase)


def _phase(r: Stored[ExecutionRecord]) -> str:
    return phase_name(r.value.phase)


def _created(r: Stored[ExecutionRecord]) -> dt.datetime | None:
    """The admin clock at CreateExecution (microseconds; the object's creationTimestamp has
    whole seconds only, so it would order a burst of executions arbitrarily)."""
    return stamp_datetime(r.value.execution.closure.created_at)


# The sort keys served by the "pd-created" sorted index (ordered scans in ListExecutions).
CREATED_COLUMNS = frozenset({"execution_created_at", "created_at"})


def created_order(
    value: ExecutionRecord,
) -> tuple[tuple[str, str], tuple[tuple[int, int], str]]:
    """Sorted-index entry of an execution: its project-domain, then (creation time, name) --
    the order of ``_created`` with the schema's tiebreak (the name, within one project-domain).
    An unset time sorts first, as None does in ``listing``."""
    stamp = value.execution.closure.created_at
    ident = value.id
    return (ident.project, ident.domain), ((stamp.seconds, stamp.nanos), ident.name)


def _duration(r: Stored[ExecutionRecord]) -> dt.timedelta | None:
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
        "execution_created_at": Column(ColumnType.TIMESTAMP, _created),
        "created_at": Column(ColumnType.TIMESTAMP, _created),
        "execution_updated_at": Column(
            ColumnType.TIMESTAMP, lambda r: stamp_datetime(r.value.execution.closure.updated_at)
        ),
        "updated_at": Column(
            ColumnType.TIMESTAMP, lambda r: stamp_datetime(r.value.execution.closure.updated_at)
        ),
        "started_at": Column(
            ColumnType.TIMESTAMP, lambda r: stamp_datetime(r.value.execution.closure.started_at)
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
    memoize=True,
)


class Tag(NamedTuple):
    """A row of flyteadmin's ``execution_tags`` table."""

    key: str
    value: str


def execution_tags(record: Stored[ExecutionRecord]) -> list[Tag]:
    """Each label becomes (key, value) and each deprecated ``spec.tags`` entry (tag, "") (§5.4).
    The labels are the execution's resolved ones (request, launch plan, matchable attributes,
    project), where flyteadmin took only the request's (decisions.md)."""
    spec = record.value.execution.spec
    tags = [Tag(k, v) for k, v in sorted(spec.labels.values.items())]
    return tags + [Tag(t, "") for t in spec.tags]


TAG_SCHEMA = EntitySchema(
    name="execution_tag",
    columns={
        "key": Column(ColumnType.STRING, lambda t: t.key),
        "value": Column(ColumnType.STRING, lambda t: t.value),
    },
    aliases={"name": "key"},  # admin_tag.name is execution_tags.key (§1.4)
    tiebreak=lambda t: t,
)


def _matching(find: Callable[[Any], Any], key: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A registered record of exactly this id (find() goes by object name), or None."""

    def get(ident: Any) -> Any:
        if ident is None:
            return None
        found = find(ident)
        wanted = (ident.project, ident.domain, ident.name, ident.version)
        return found if found is not None and key(found) == wanted else None

    return get


def execution_schema(
    launch_plans: VersionedEntities[Any],
    workflows: VersionedEntities[Any],
    tasks: VersionedEntities[Any],
) -> EntitySchema:
    """SCHEMA with flyteadmin's joins (§1.4): launch_plan, workflow and task (the registered
    records the execution was created from) and the tags, as ``admin_tag`` and
    ``execution_tag``. The tags join is on the whole execution id, not the name only
    (decisions.md)."""
    record_key = lambda r: tuple(r.value.key)  # noqa: E731
    launch_plan = _matching(launch_plans.find, record_key)
    workflow = _matching(workflows.find, record_key)
    task = _matching(tasks.find, record_key)
    tags = Join(TAG_SCHEMA, execution_tags, many=True)
    return dataclasses.replace(
        SCHEMA,
        joins={
            "launch_plan": Join(launch_plans.schema, lambda r: launch_plan(r.value.launch_plan_id)),
            "workflow": Join(workflows.schema, lambda r: workflow(r.value.workflow_id)),
            "task": Join(tasks.schema, lambda r: task(r.value.task_id)),
            "admin_tag": tags,
            "execution_tag": tags,
        },
    )


def state_filter_given(query: ListQuery) -> bool:
    return any(f.entity == "execution" and f.field == "state" for f in query.filters)
