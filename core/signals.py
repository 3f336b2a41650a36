"""Signals of gate nodes (§13.1): created by flytepropeller, set once by a user or the console."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from flyteidl.admin import signal_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core import listing
from flyteadmin.core.compiler import castable, literal_type_of, literal_type_text
from flyteadmin.core.crmap.executions import ExecutionRecord, execution_object_name
from flyteadmin.core.crmap.signals import SignalRecord, signal_object_name
from flyteadmin.core.errors import (
    already_exists,
    failed_precondition,
    invalid_argument,
    missing,
    not_found,
)
from flyteadmin.core.executions.history import ChildrenOf
from flyteadmin.core.executions.service import Executions
from flyteadmin.core.listing import Column, ColumnType, EntitySchema, SortSpec
from flyteadmin.core.registration.entities import sort_args
from flyteadmin.core.store import AlreadyExists, Collection, Stored

SCHEMA = EntitySchema(
    name="signal",
    columns={
        "execution_project": Column(
            ColumnType.STRING, lambda r: r.value.signal.id.execution_id.project
        ),
        "execution_domain": Column(
            ColumnType.STRING, lambda r: r.value.signal.id.execution_id.domain
        ),
        "execution_name": Column(ColumnType.STRING, lambda r: r.value.signal.id.execution_id.name),
        "signal_id": Column(ColumnType.STRING, lambda r: r.value.signal.id.signal_id),
        "created_at": Column(ColumnType.TIMESTAMP, lambda r: r.value.created_at or r.created_at),
    },
    aliases={
        "project": "execution_project",
        "domain": "execution_domain",
        "name": "execution_name",
    },
    tiebreak=lambda r: r.value.signal.id.signal_id,
    default_sort=SortSpec("created_at", ascending=True),
)


def _describe(ident: identifier_pb2.SignalIdentifier) -> str:
    ex = ident.execution_id
    return f"{ex.project}/{ex.domain}/{ex.name}/{ident.signal_id}"


def _check_id(ident: identifier_pb2.SignalIdentifier) -> None:
    for field in ("project", "domain", "name"):
        if not getattr(ident.execution_id, field):
            raise missing(field)
    if not ident.signal_id:
        raise missing("signal_id")


class Signals:
    def __init__(
        self,
        records: Collection[SignalRecord],
        executions: Executions,
        children_of: ChildrenOf,
    ) -> None:
        self.records = records
        self.executions = executions
        self.children_of = children_of
        records.add_index("execution", lambda v: [_execution_key(v.signal.id.execution_id)])

    async def get_or_create(
        self, request: signal_pb2.SignalGetOrCreateRequest
    ) -> signal_pb2.Signal:
        _check_id(request.id)
        if not request.HasField("type"):
            raise missing("type")
        if request.type.WhichOneof("type") is None:
            # A gate that waits for no kind of value could never be set (SetSignal checks the
            # value's type against it); flyteadmin stored it anyway.
            raise invalid_argument("invalid value for type: no literal type is set")
        execution = await self.executions.lookup(request.id.execution_id)  # NotFound if unknown
        if not execution.resource_version or execution.value.archived_in:
            # A finished, archived execution's gates are history: answer the recorded signal.
            for stored in (await self.children_of(request.id.execution_id)).all_signals():
                if stored.value.signal.id == request.id:
                    return stored.value.signal
            raise failed_precondition(
                f"execution {_describe_execution(request.id.execution_id)} has ended and is "
                "archived: no new signal can be created for it"
            )
        name = signal_object_name(request.id)
        existing = self.records.get(name)
        if existing is None:
            try:
                signal = signal_pb2.Signal(id=request.id, type=request.type)
                created = dt.datetime.now(dt.UTC)
                existing = await self.records.create(SignalRecord(signal, created_at=created))
            except AlreadyExists:  # created concurrently: answer what is there
                existing = await self.records.read_through(name)
                if existing is None:  # ... and deleted since (its execution archived)
                    raise not_found(
                        f"signal [{request.id.signal_id}] was deleted meanwhile"
                    ) from None
        return existing.value.signal

    async def list(self, request: signal_pb2.SignalListRequest) -> signal_pb2.SignalList:
        ex = request.workflow_execution_id
        for field in ("project", "domain", "name"):
            if not getattr(ex, field):
                raise missing(field)
        sort_key, ascending = sort_args(request)
        query = listing.parse_list_request(
            SCHEMA,
            filters=request.filters,
            sort_key=sort_key,
            ascending=ascending,
            token=request.token,
            limit=request.limit,
            rpc="ListSignals",
        )
        page = listing.evaluate(query, (await self.children_of(ex)).all_signals())
        return signal_pb2.SignalList(
            signals=[r.value.signal for r in page.items], token=page.next_token
        )

    async def set(self, request: signal_pb2.SignalSetRequest) -> None:
        _check_id(request.id)
        if not request.HasField("value"):
            raise missing("value")
        name = signal_object_name(request.id)
        if self.records.get(name) is None:
            execution = self.executions.records.get(
                execution_object_name(request.id.execution_id)
            ) or await self._archived(request.id.execution_id)
            if execution is not None and (
                not execution.resource_version or execution.value.archived_in
            ):
                raise failed_precondition(
                    f"execution {_describe_execution(request.id.execution_id)} has ended and "
                    "is archived: its signals can no longer be set"
                )
            raise invalid_argument(
                f"failed to validate that signal [{_describe(request.id)}] exists"
            )

        def change(current: SignalRecord) -> SignalRecord:
            if current.is_set:
                # Set once: a gate that already opened must not change its mind (flyteadmin
                # overwrote the value; see docs/decisions.md).
                raise already_exists(f"signal [{_describe(request.id)}] is already set")
            actual = literal_type_of(request.value)
            if actual is None or not castable(actual, current.signal.type):
                raise invalid_argument(
                    f"requested signal value [{literal_type_text(actual)}] is not castable to "
                    f"existing signal type [{literal_type_text(current.signal.type)}]"
                )
            signal = signal_pb2.Signal()
            signal.CopyFrom(current.signal)
            signal.value.CopyFrom(request.value)
            return replace(current, signal=signal, set_at=dt.datetime.now(dt.UTC))

        await self.records.mutate(name, change)

    async def _archived(
        self, ex: identifier_pb2.WorkflowExecutionIdentifier
    ) -> Stored[ExecutionRecord] | None:
        history = self.executions.history
        return None if history is None else await history.execution(_execution_key(ex))


def _describe_execution(ex: identifier_pb2.WorkflowExecutionIdentifier) -> str:
    return f"{ex.project}/{ex.domain}/{ex.name}"


def _execution_key(ex: identifier_pb2.WorkflowExecutionIdentifier) -> tuple[str, str, str]:
    return (ex.project, ex.domain, ex.name)
