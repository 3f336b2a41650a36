"""The four history tables: their Arrow/Parquet schema and loss-free record <-> row conversion.

A row has three parts:

* typed filter/sort columns, computed by the same getters as the live list schemas
  (``core/executions/listing.py``, ``core/events/listing.py``), so a filter means the same on
  archived rows as on live ones; external engines (BigQuery, Trino, Spark) query them too;
* ``archived_at``: the version of the row; a later row for the same id supersedes an earlier one;
* the record itself, compact and fast to decode: protobuf binary for the message (json_format
  is ~10x slower), the record's small fields as plain columns. Decoding reads only the payload
  columns (``Table.payload``) plus the time the custom resource was created.

Rows are built column-wise (one Python list per column), which is what pyarrow converts fastest.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, overload

import pyarrow as pa
from flyteidl.admin import execution_pb2, node_execution_pb2, signal_pb2, task_execution_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core.crmap.executions import ExecutionRecord, execution_object_name
from flyteadmin.core.crmap.node_executions import NodeExecutionRecord, node_execution_object_name
from flyteadmin.core.crmap.signals import SignalRecord, signal_object_name
from flyteadmin.core.crmap.task_executions import TaskExecutionRecord, task_execution_object_name
from flyteadmin.core.events.listing import node_schema, task_schema
from flyteadmin.core.executions.listing import SCHEMA as EXECUTION_SCHEMA
from flyteadmin.core.executions.listing import execution_tags
from flyteadmin.core.listing import ColumnType, EntitySchema
from flyteadmin.core.store import Stored
from flyteadmin.core.timestamps import stamp_datetime

T = TypeVar("T")
ExecutionKey = tuple[str, str, str]  # (project, domain, name)

TIMESTAMP = pa.timestamp("us", tz="UTC")
_US = dt.timedelta(microseconds=1)
_CHUNK = 1024  # rows converted to Arrow per call
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
IDENTIFIER = pa.struct(
    [
        ("resource_type", pa.int32()),
        ("project", pa.string()),
        ("domain", pa.string()),
        ("name", pa.string()),
        ("version", pa.string()),
        ("org", pa.string()),
    ]
)
TAGS = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))

# Arrow type of a typed column mirroring a list-schema column of this type.
_ARROW: dict[ColumnType, pa.DataType] = {
    ColumnType.STRING: pa.string(),
    ColumnType.ENUM_NAME: pa.string(),
    ColumnType.INT: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.TIMESTAMP: TIMESTAMP,
    ColumnType.DURATION: pa.int64(),  # microseconds
    ColumnType.BOOL: pa.bool_(),
}


@overload
def micros(value: dt.timedelta) -> int: ...
@overload
def micros(value: None) -> None: ...
def micros(value: dt.timedelta | None) -> int | None:
    """A duration as whole microseconds, how DURATION columns are stored."""
    return None if value is None else value // _US


def from_micros(value: int | None) -> dt.datetime | None:
    return None if value is None else _EPOCH + dt.timedelta(microseconds=value)


class View(NamedTuple):
    """What the list schemas' getters read (``r.value``, ``r.created_at``), for a record that
    is not a ``Stored``."""

    value: Any
    created_at: dt.datetime | None


def view(item: Any) -> View | Stored[Any]:
    return item if isinstance(item, Stored) else View(item, None)


@dataclass(frozen=True)
class RowColumn:
    name: str  # the Parquet column
    type: pa.DataType
    get: Callable[[Any], Any]  # Stored or View -> value
    listing: tuple[str, ...] = ()  # the list-schema columns it mirrors (filters on them)
    statistics: bool = True  # min/max in the footer (useless for payloads, and large)
    dictionary: bool = False  # few distinct values: dictionary-encode


def mirrored(
    schema: EntitySchema, mapping: dict[str, str | tuple[str, ...]], **dictionary: bool
) -> list[RowColumn]:
    """Typed columns computed by ``schema``'s own getters: Parquet column -> the list column
    (or the synonymous list columns, e.g. created_at and execution_created_at; the first one's
    getter is used)."""
    out = []
    for name, names in mapping.items():
        names = (names,) if isinstance(names, str) else names
        column = schema.columns[names[0]]
        get = column.get
        if column.type is ColumnType.DURATION:
            get = functools.partial(_micros_of, column.get)
        out.append(
            RowColumn(name, _ARROW[column.type], get, names, dictionary=dictionary.get(name, False))
        )
    return out


def _micros_of(get: Callable[[Any], Any], r: Any) -> int | None:
    value: dt.timedelta | None = get(r)
    return micros(value)


def _object_created_at(r: Any) -> dt.datetime | None:
    created: dt.datetime | None = r.created_at
    return created


def _proto(get: Callable[[Any], Any]) -> Callable[[Any], bytes]:
    # Deterministic: the same record always gives the same bytes (and file digest).
    return lambda r: get(r).SerializeToString(deterministic=True)


def _identifier(ident: identifier_pb2.Identifier | None) -> dict[str, Any] | None:
    if ident is None:
        return None
    return {
        "resource_type": ident.resource_type,
        "project": ident.project,
        "domain": ident.domain,
        "name": ident.name,
        "version": ident.version,
        "org": ident.org,
    }


def _from_identifier(value: dict[str, Any] | None) -> identifier_pb2.Identifier | None:
    return None if value is None else identifier_pb2.Identifier(**value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, eq=False)
class Table(Generic[T]):
    """One history table: its columns, identity, file order and record codec."""

    name: str
    columns: tuple[RowColumn, ...]
    key: tuple[str, ...]  # columns identifying a record: the newest archived_at per key wins
    order: tuple[str, ...]  # sort order of the rows in a file (row-group statistics prune)
    payload: tuple[str, ...]  # columns ``decode`` reads, in its argument order
    decode: Callable[..., T]  # payload values -> record
    execution: Callable[[T], identifier_pb2.WorkflowExecutionIdentifier]
    object_name: Callable[[T], str]  # the custom resource's name (core/crmap)
    fallback_created_at: Callable[[T], dt.datetime | None]  # when no object time was kept
    bloom: tuple[str, ...] = ("execution_name",)  # Bloom filters for point lookups

    @property
    def schema(self) -> pa.Schema:
        fields = [pa.field(c.name, c.type) for c in self.columns]
        return pa.schema([*fields, pa.field("archived_at", TIMESTAMP, nullable=False)])

    @property
    def typed(self) -> tuple[str, ...]:
        """Columns with min/max statistics."""
        return tuple(c.name for c in self.columns if c.statistics) + ("archived_at",)

    @property
    def dictionary(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.dictionary)

    def listing_columns(self) -> dict[str, RowColumn]:
        """List-schema column -> the typed column mirroring it."""
        return {name: c for c in self.columns for name in c.listing}

    def arrow(self, items: Iterable[T | Stored[T]], archived_at: dt.datetime) -> pa.Table:
        """Rows of ``items`` (records, or ``Stored`` records: their object creation time is
        kept), in no particular order. Built in chunks: converting a Python list holds the
        GIL for the whole list, and the event loop shares the process."""
        views = [view(i) for i in items]
        schema = self.schema
        batches = []
        for start in range(0, len(views), _CHUNK):
            chunk = views[start : start + _CHUNK]
            arrays = [pa.array([c.get(v) for v in chunk], type=c.type) for c in self.columns]
            arrays.append(pa.array([archived_at] * len(chunk), type=TIMESTAMP))
            batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
        return pa.Table.from_batches(batches, schema=schema)

    def select(self) -> str:
        """The SQL select list that reads a record back (``stored`` takes its values):
        the payload columns and the object's creation time; times as epoch microseconds,
        which convert faster than DuckDB's zone-aware values (and need no pytz)."""
        types = {c.name: c.type for c in self.columns}
        return ", ".join(
            f'epoch_us("{c}")' if types[c] == TIMESTAMP else f'"{c}"'
            for c in (*self.payload, "object_created_at")
        )

    def stored(self, values: Sequence[Any]) -> Stored[T]:
        """A row read with ``select`` as the store would hold it: the custom resource's name
        and creation time, resource version 0 (archived objects have none)."""
        *payload, object_created_at = (
            from_micros(v) if i in self._times else v for i, v in enumerate(values)
        )
        record = self.decode(*payload)
        created = object_created_at or self.fallback_created_at(record) or _EPOCH
        return Stored(self.object_name(record), 0, "", created, record)

    @functools.cached_property
    def _times(self) -> frozenset[int]:
        types = {c.name: c.type for c in self.columns}
        names = (*self.payload, "object_created_at")
        return frozenset(i for i, c in enumerate(names) if types[c] == TIMESTAMP)

    def key_of(self, record: T) -> tuple[Any, ...]:
        """The record's identity, as the values of ``key`` (for tests and deduplication)."""
        row = {c.name: c.get(View(record, None)) for c in self.columns if c.name in self.key}
        return tuple(row[k] for k in self.key)


# ---- executions -------------------------------------------------------------------------------


def _decode_execution(
    execution: bytes,
    launch_plan_id: dict[str, Any],
    workflow_id: dict[str, Any],
    task_id: dict[str, Any] | None,
    inputs_uri: str,
    user_inputs_uri: str,
    request_digest: str,
    resolved: str,
    notified: str,
) -> ExecutionRecord:
    return ExecutionRecord(
        execution=execution_pb2.Execution.FromString(execution),
        launch_plan_id=_from_identifier(launch_plan_id),  # type: ignore[arg-type]
        workflow_id=_from_identifier(workflow_id),  # type: ignore[arg-type]
        task_id=_from_identifier(task_id),
        inputs_uri=inputs_uri,
        user_inputs_uri=user_inputs_uri,
        request_digest=request_digest,
        resolved=json.loads(resolved),
        notified=tuple(json.loads(notified)),
    )


_EXECUTION_TYPED = mirrored(
    EXECUTION_SCHEMA,
    {
        "execution_project": "execution_project",
        "execution_domain": "execution_domain",
        "execution_name": "execution_name",
        "phase": "phase",
        "state": "state",
        "mode": "mode",
        "user": "user",
        "created_at": ("execution_created_at", "created_at"),
        "updated_at": ("execution_updated_at", "updated_at"),
        "started_at": "started_at",
        "duration_us": "duration",
        "launch_entity": "launch_entity",
        "error_code": "error_code",
    },
    execution_project=True,
    execution_domain=True,
    phase=True,
    user=True,
    launch_entity=True,
    error_code=True,
)

EXECUTIONS: Table[ExecutionRecord] = Table(
    name="executions",
    columns=(
        *_EXECUTION_TYPED,
        RowColumn(
            "tags",
            TAGS,
            lambda r: [{"key": t.key, "value": t.value} for t in execution_tags(r)],
            statistics=False,
        ),
        RowColumn("launch_plan_id", IDENTIFIER, lambda r: _identifier(r.value.launch_plan_id)),
        RowColumn("workflow_id", IDENTIFIER, lambda r: _identifier(r.value.workflow_id)),
        RowColumn("task_id", IDENTIFIER, lambda r: _identifier(r.value.task_id)),
        RowColumn("inputs_uri", pa.string(), lambda r: r.value.inputs_uri, statistics=False),
        RowColumn(
            "user_inputs_uri", pa.string(), lambda r: r.value.user_inputs_uri, statistics=False
        ),
        RowColumn(
            "request_digest", pa.string(), lambda r: r.value.request_digest, statistics=False
        ),
        RowColumn("resolved", pa.string(), lambda r: _json(r.value.resolved), statistics=False),
        RowColumn(
            "notified", pa.string(), lambda r: _json(list(r.value.notified)), statistics=False
        ),
        RowColumn("execution", pa.binary(), _proto(lambda r: r.value.execution), statistics=False),
        RowColumn("object_created_at", TIMESTAMP, _object_created_at),
    ),
    key=("execution_project", "execution_domain", "execution_name"),
    order=("created_at", "execution_name"),
    payload=(
        "execution",
        "launch_plan_id",
        "workflow_id",
        "task_id",
        "inputs_uri",
        "user_inputs_uri",
        "request_digest",
        "resolved",
        "notified",
    ),
    decode=_decode_execution,
    execution=lambda r: r.id,
    object_name=lambda r: execution_object_name(r.id),
    fallback_created_at=lambda r: stamp_datetime(r.execution.closure.created_at),
)


# ---- node executions --------------------------------------------------------------------------


def _no_join(_r: Any) -> None:
    return None


_NODE_SCHEMA = node_schema(_no_join)
_NODE_TYPED = mirrored(
    _NODE_SCHEMA,
    {
        "execution_project": "execution_project",
        "execution_domain": "execution_domain",
        "execution_name": "execution_name",
        "node_id": "node_id",
        "parent_id": "parent_id",
        "phase": "phase",
        "created_at": ("created_at", "node_execution_created_at"),
        "updated_at": ("updated_at", "node_execution_updated_at"),
        "started_at": "started_at",
        "duration_us": "duration",
        "input_uri": "input_uri",
        "error_kind": "error_kind",
        "error_code": "error_code",
        "cache_status": "cache_status",
    },
    execution_project=True,
    execution_domain=True,
    phase=True,
    error_kind=True,
    error_code=True,
    cache_status=True,
)


def _decode_node(
    node: bytes, parent_id: str | None, parent_task: bytes | None, dynamic_workflow_uri: str
) -> NodeExecutionRecord:
    return NodeExecutionRecord(
        node=node_execution_pb2.NodeExecution.FromString(node),
        parent_id=parent_id or "",  # the typed column holds "" as NULL, as the list schema does
        parent_task=(
            None
            if parent_task is None
            else identifier_pb2.TaskExecutionIdentifier.FromString(parent_task)
        ),
        dynamic_workflow_uri=dynamic_workflow_uri,
    )


NODE_EXECUTIONS: Table[NodeExecutionRecord] = Table(
    name="node_executions",
    columns=(
        *_NODE_TYPED,
        RowColumn("node", pa.binary(), _proto(lambda r: r.value.node), statistics=False),
        RowColumn(
            "parent_task",
            pa.binary(),
            lambda r: (
                None
                if r.value.parent_task is None
                else r.value.parent_task.SerializeToString(deterministic=True)
            ),
            statistics=False,
        ),
        RowColumn(
            "dynamic_workflow_uri",
            pa.string(),
            lambda r: r.value.dynamic_workflow_uri,
            statistics=False,
        ),
        RowColumn("object_created_at", TIMESTAMP, _object_created_at),
    ),
    key=("execution_project", "execution_domain", "execution_name", "node_id"),
    order=("execution_name", "node_id"),
    payload=("node", "parent_id", "parent_task", "dynamic_workflow_uri"),
    decode=_decode_node,
    execution=lambda r: r.node.id.execution_id,
    object_name=lambda r: node_execution_object_name(r.node.id),
    fallback_created_at=lambda r: stamp_datetime(r.node.closure.created_at),
)


# ---- task executions --------------------------------------------------------------------------

_TASK_SCHEMA = task_schema(_no_join, _no_join, _no_join)
_TASK_TYPED = mirrored(
    _TASK_SCHEMA,
    {
        "execution_project": "execution_project",
        "execution_domain": "execution_domain",
        "execution_name": "execution_name",
        "node_id": "node_id",
        "retry_attempt": "retry_attempt",
        "phase": "phase",
        "phase_version": "phase_version",
        "created_at": ("created_at", "task_execution_created_at"),
        "updated_at": ("updated_at", "task_execution_updated_at"),
        "started_at": "started_at",
        "duration_us": "duration",
        "input_uri": "input_uri",
    },
    execution_project=True,
    execution_domain=True,
    phase=True,
)


def _task_id_column(field: str) -> RowColumn:
    return RowColumn(
        f"task_{field}",
        pa.string(),
        lambda r: getattr(r.value.task.id.task_id, field),
        dictionary=True,
    )


def _decode_task(task: bytes, phase_version: int) -> TaskExecutionRecord:
    return TaskExecutionRecord(
        task=task_execution_pb2.TaskExecution.FromString(task), phase_version=phase_version
    )


TASK_EXECUTIONS: Table[TaskExecutionRecord] = Table(
    name="task_executions",
    columns=(
        *_TASK_TYPED,
        *(_task_id_column(f) for f in ("project", "domain", "name", "version")),
        RowColumn("task", pa.binary(), _proto(lambda r: r.value.task), statistics=False),
        RowColumn("object_created_at", TIMESTAMP, _object_created_at),
    ),
    key=(
        "execution_project",
        "execution_domain",
        "execution_name",
        "node_id",
        "task_project",
        "task_domain",
        "task_name",
        "task_version",
        "retry_attempt",
    ),
    order=("execution_name", "node_id", "task_name", "task_version", "retry_attempt"),
    payload=("task", "phase_version"),
    decode=_decode_task,
    execution=lambda r: r.task.id.node_execution_id.execution_id,
    object_name=lambda r: task_execution_object_name(r.task.id),
    fallback_created_at=lambda r: stamp_datetime(r.task.closure.created_at),
)


# ---- signals ----------------------------------------------------------------------------------


def _decode_signal(signal: bytes, set_at: dt.datetime | None) -> SignalRecord:
    return SignalRecord(signal_pb2.Signal.FromString(signal), set_at)


def _signal_execution(r: Any) -> identifier_pb2.WorkflowExecutionIdentifier:
    record: SignalRecord = r.value
    return record.signal.id.execution_id


SIGNALS: Table[SignalRecord] = Table(
    name="signals",
    columns=(
        RowColumn(
            "execution_project",
            pa.string(),
            lambda r: _signal_execution(r).project,
            dictionary=True,
        ),
        RowColumn(
            "execution_domain", pa.string(), lambda r: _signal_execution(r).domain, dictionary=True
        ),
        RowColumn("execution_name", pa.string(), lambda r: _signal_execution(r).name),
        RowColumn("signal_id", pa.string(), lambda r: r.value.signal.id.signal_id),
        RowColumn("set_at", TIMESTAMP, lambda r: r.value.set_at),
        RowColumn("signal", pa.binary(), _proto(lambda r: r.value.signal), statistics=False),
        # ListSignals sorts by the custom resource's creation time (core/signals.py).
        RowColumn("object_created_at", TIMESTAMP, _object_created_at),
    ),
    key=("execution_project", "execution_domain", "execution_name", "signal_id"),
    order=("execution_name", "signal_id"),
    payload=("signal", "set_at"),
    decode=_decode_signal,
    execution=lambda r: r.signal.id.execution_id,
    object_name=lambda r: signal_object_name(r.signal.id),
    fallback_created_at=lambda r: r.set_at,
)

TABLES: dict[str, Table[Any]] = {
    t.name: t for t in (EXECUTIONS, NODE_EXECUTIONS, TASK_EXECUTIONS, SIGNALS)
}
