"""List grammar of node and task executions (§1.4): their columns (project/domain/name renamed
to execution_*) and joins (node -> execution; task -> task, node_execution, execution)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2

from flyteadmin.core.crmap.node_executions import NodeExecutionRecord
from flyteadmin.core.crmap.task_executions import TaskExecutionRecord
from flyteadmin.core.executions.listing import SCHEMA as EXECUTION_SCHEMA
from flyteadmin.core.listing import Column, ColumnType, EntitySchema, Join, SortSpec
from flyteadmin.core.registration.tasks import SCHEMA as TASK_SCHEMA
from flyteadmin.core.store import Stored
from flyteadmin.core.timestamps import stamp_datetime

Lookup = Callable[[Any], Any]  # a stored record -> the joined stored record or None
_ALIASES = {"project": "execution_project", "domain": "execution_domain", "name": "execution_name"}


def _duration(closure: Any) -> timedelta | None:
    return closure.duration.ToTimedelta() if closure.HasField("duration") else None


def _common(
    entity: Callable[[Any], Any], phase_name: Callable[[int], str], prefix: str
) -> dict[str, Column]:
    """Columns both kinds have; ``entity(r)`` is the NodeExecution / TaskExecution message."""

    def closure(r: Any) -> Any:
        return entity(r).closure

    def execution_id(r: Any) -> identifier_pb2.WorkflowExecutionIdentifier:
        ident = entity(r).id
        found: identifier_pb2.WorkflowExecutionIdentifier = (
            ident.execution_id
            if hasattr(ident, "execution_id")
            else (ident.node_execution_id.execution_id)
        )
        return found

    created = Column(ColumnType.TIMESTAMP, lambda r: stamp_datetime(closure(r).created_at))
    updated = Column(ColumnType.TIMESTAMP, lambda r: stamp_datetime(closure(r).updated_at))
    return {
        "execution_project": Column(ColumnType.STRING, lambda r: execution_id(r).project),
        "execution_domain": Column(ColumnType.STRING, lambda r: execution_id(r).domain),
        "execution_name": Column(ColumnType.STRING, lambda r: execution_id(r).name),
        "phase": Column(ColumnType.ENUM_NAME, lambda r: phase_name(closure(r).phase)),
        "started_at": Column(ColumnType.TIMESTAMP, lambda r: stamp_datetime(closure(r).started_at)),
        "created_at": created,
        "updated_at": updated,
        f"{prefix}_created_at": created,
        f"{prefix}_updated_at": updated,
        "duration": Column(ColumnType.DURATION, lambda r: _duration(closure(r))),
        "input_uri": Column(ColumnType.STRING, lambda r: entity(r).input_uri),
    }


def node_schema(execution_of: Lookup) -> EntitySchema:
    def node(r: Stored[NodeExecutionRecord]) -> node_execution_pb2.NodeExecution:
        return r.value.node

    columns = _common(node, core_execution.NodeExecution.Phase.Name, "node_execution")
    columns.update(
        node_id=Column(ColumnType.STRING, lambda r: node(r).id.node_id),
        parent_id=Column(ColumnType.STRING, lambda r: r.value.parent_id or None),
        error_kind=Column(
            ColumnType.STRING, lambda r: str(node(r).closure.error.kind) if _err(node(r)) else None
        ),
        error_code=Column(
            ColumnType.STRING, lambda r: node(r).closure.error.code if _err(node(r)) else None
        ),
        cache_status=Column(
            ColumnType.STRING,
            lambda r: str(node(r).closure.task_node_metadata.cache_status),
        ),
    )
    return EntitySchema(
        name="node_execution",
        columns=columns,
        aliases=_ALIASES,
        tiebreak=lambda r: _node_key(node(r).id),
        default_sort=SortSpec("created_at", ascending=True),
        memoize=True,
        joins={"execution": Join(EXECUTION_SCHEMA, execution_of)},
    )


def task_schema(execution_of: Lookup, node_of: Lookup, task_of: Lookup) -> EntitySchema:
    def task(r: Stored[TaskExecutionRecord]) -> task_execution_pb2.TaskExecution:
        return r.value.task

    columns = _common(task, core_execution.TaskExecution.Phase.Name, "task_execution")
    columns.update(
        node_id=Column(ColumnType.STRING, lambda r: task(r).id.node_execution_id.node_id),
        retry_attempt=Column(ColumnType.INT, lambda r: task(r).id.retry_attempt),
        phase_version=Column(ColumnType.INT, lambda r: r.value.phase_version),
        version=Column(ColumnType.STRING, lambda r: task(r).id.task_id.version),
    )
    return EntitySchema(
        name="task_execution",
        columns=columns,
        aliases=_ALIASES,
        tiebreak=lambda r: (
            _node_key(task(r).id.node_execution_id),
            task(r).id.retry_attempt,
            task(r).id.task_id.name,
            task(r).id.task_id.version,
        ),
        default_sort=SortSpec("created_at", ascending=True),
        memoize=True,
        joins={
            "execution": Join(EXECUTION_SCHEMA, execution_of),
            "node_execution": Join(node_schema(execution_of), node_of),
            "task": Join(TASK_SCHEMA, task_of),
        },
    )


def _err(message: node_execution_pb2.NodeExecution) -> bool:
    return message.closure.HasField("error")


def _node_key(ident: identifier_pb2.NodeExecutionIdentifier) -> tuple[str, str, str, str]:
    ex = ident.execution_id
    return (ex.project, ex.domain, ex.name, ident.node_id)
