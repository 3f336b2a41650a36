"""What tasks, workflows and launch plans share: indexes, Get by id, List, List*Ids.

Reads come from the watch cache; the (project, domain) and (project, domain, name) indexes
narrow a list to its candidates before the list engine filters, sorts and pages them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable
from functools import partial
from typing import Any, Generic, TypeVar

from flyteidl.admin import common_pb2
from flyteidl.core import identifier_pb2
from google.protobuf.message import Message

from flyteadmin.core import listing, wire
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import invalid_argument, missing, not_found
from flyteadmin.core.listing import Column, ColumnType, EntitySchema, SortSpec
from flyteadmin.core.store import Collection, Stored

M = TypeVar("M", bound=Message)
L = TypeVar("L", bound=Message)  # a list response
Record = Stored[Registered[Any]]
RT = identifier_pb2.ResourceType


def created_at(record: Record) -> dt.datetime:
    """When the version was registered, to the microsecond (the object's creationTimestamp,
    whole seconds, for objects written before that was kept)."""
    return record.value.created_at or record.created_at


def id_columns(extra: dict[str, Column] | None = None) -> dict[str, Column]:
    """The identifier and time columns every registered kind has (§1.6)."""
    return {
        "project": Column(ColumnType.STRING, lambda r: r.value.key[0]),
        "domain": Column(ColumnType.STRING, lambda r: r.value.key[1]),
        "name": Column(ColumnType.STRING, lambda r: r.value.key[2]),
        "version": Column(ColumnType.STRING, lambda r: r.value.key[3]),
        "digest": Column(ColumnType.STRING, lambda r: r.value.digest),
        "created_at": Column(ColumnType.TIMESTAMP, created_at),
        "updated_at": Column(ColumnType.TIMESTAMP, created_at),  # versions never change
        **(extra or {}),
    }


def entity_schema(name: str, columns: dict[str, Column], **kwargs: Any) -> EntitySchema:
    return EntitySchema(
        name=name,
        columns=columns,
        tiebreak=lambda r: r.value.key,
        # flyteadmin had no ORDER BY (database order, i.e. insertion): creation order here.
        default_sort=SortSpec("created_at", ascending=True),
        **kwargs,
    )


def add_indexes(collection: Collection[Registered[Any]]) -> None:
    collection.add_index("pd", lambda v: [v.key[:2]])
    collection.add_index("pdn", lambda v: [v.key[:3]])
    # The same partitions in creation order (ties by the id, the schema's tiebreak), so a list
    # sorted by creation time reads its page instead of sorting every version. Versions with no
    # microsecond time (written before it was kept) are left out; a partition holding any of
    # them is listed the general way (``_in_creation_order``).
    for index, width in (("pd", 2), ("pdn", 3)):
        collection.add_sorted_index(f"{index}-created", _created_order(width))


def _created_order(
    width: int,
) -> Callable[[Registered[Any]], tuple[Hashable, tuple[Any, Any]] | None]:
    """Sorted-index entry of a version: the first ``width`` parts of its key, then
    (creation time, key); None without a microsecond time."""

    def entry(v: Registered[Any]) -> tuple[Hashable, tuple[Any, Any]] | None:
        return None if v.created_at is None else (v.key[:width], (v.created_at, v.key))

    return entry


def sort_args(request: Any) -> tuple[str | None, bool]:
    if not request.HasField("sort_by"):
        return None, False
    return request.sort_by.key, request.sort_by.direction == common_pb2.Sort.ASCENDING


class VersionedEntities(Generic[M]):
    """Get, List and List*Ids for one registered kind."""

    def __init__(
        self,
        records: Collection[Registered[M]],
        *,
        resource_type: int,
        schema: EntitySchema,
        label: str,
        answer: Callable[[Record], M] | None = None,
        light: Callable[[Record], M] | None = None,
    ) -> None:
        self.records = records
        self.resource_type = resource_type
        self.schema = schema
        self.label = label  # "Task", "Workflow", "LaunchPlan" in RPC names
        self._answer = answer or (lambda r: r.value.message)
        self._light = light or self._answer

    def find(self, identifier: identifier_pb2.Identifier) -> Record | None:
        return self.records.get(self.records.codec.name_of_id(identifier))  # type: ignore[attr-defined]

    def exact(self, identifier: identifier_pb2.Identifier) -> Record | None:
        """The cached record of exactly this id: ``find`` may also return another id whose
        object name is the same (a hash collision, docs/storage.md)."""
        record = self.find(identifier)
        return record if record is not None and record.value.key == id_tuple(identifier) else None

    def require(self, identifier: identifier_pb2.Identifier) -> Record:
        """The record of exactly this id, or NotFound with flyteadmin's message."""
        record = self.exact(identifier)
        if record is None:
            raise not_found(
                f"missing entity of type {RT.Name(self.resource_type)} with identifier "
                f"{describe_id(identifier)}"
            )
        return record

    def get(self, identifier: identifier_pb2.Identifier) -> M:
        return self._answer(self.require(identifier))

    def candidates(self, project: str, domain: str, name: str = "") -> list[Record]:
        if name:
            return self.records.by_index("pdn", (project, domain, name))
        return self.records.by_index("pd", (project, domain))

    async def list_answer(
        self,
        request: Any,
        shape: wire.ListShape[L],
        *,
        extra: Iterable[listing.Filter] = (),
        rpc: str,
        schema: EntitySchema | None = None,
    ) -> wire.Encoded[L]:
        """One page of ``request`` (id, filters, sort_by, token, limit) as a ``message_type``
        already serialized (core/wire.py); ``schema`` replaces the kind's own one (e.g.
        description entities, parsed as the listed resource type)."""
        records, token = await self.list_records(request, extra=extra, rpc=rpc, schema=schema)
        return shape.page([self.listed_entry(shape, r) for r in records], token)

    def listed_entry(self, shape: wire.ListShape[Any], record: Record) -> bytes:
        """A version's listed form as an entry of ``shape``, made once and kept with the
        version: a kind whose listed form depends on more than its version (a launch plan's
        state) overrides it."""
        return shape.kept(record.memo, partial(self._light, record))

    async def list_records(
        self,
        request: Any,
        *,
        extra: Iterable[listing.Filter] = (),
        rpc: str,
        schema: EntitySchema | None = None,
    ) -> tuple[list[Record], str]:
        ident = request.id
        if not ident.project:
            raise missing("project")
        if not ident.domain:
            raise missing("domain")
        sort_key, ascending = sort_args(request)
        query = listing.parse_list_request(
            schema or self.schema,
            filters=request.filters,
            sort_key=sort_key,
            ascending=ascending,
            token=request.token,
            limit=request.limit,
            rpc=rpc,
            implicit=tuple(extra),
        )
        ordered = self._in_creation_order(query, ident.project, ident.domain, ident.name)
        if ordered is not None:
            page = listing.scan_in_order(query, ordered)
        else:
            candidates = self.candidates(ident.project, ident.domain, ident.name)
            page = await listing.evaluate_async(query, candidates)
        return page.items, page.next_token

    def _in_creation_order(
        self, query: listing.ListQuery, project: str, domain: str, name: str
    ) -> Iterable[Record] | None:
        """The partition's versions in the query's order from the creation-order index, when
        the query sorts by creation time and a scan is cheap: no filters (the page is the
        first rows read) or few rows. None otherwise: filter and sort the candidates."""
        sort = query.sort
        if sort is None or query.schema.columns[sort.key].get is not created_at:
            return None
        index, partition = ("pdn", (project, domain, name)) if name else ("pd", (project, domain))
        total = self.records.sorted_count(f"{index}-created", partition)
        if total != self.records.index_count(index, partition):
            return None  # some versions have no microsecond time
        if query.filters and total >= listing.OFF_LOOP_ROWS:
            return None  # a selective filter could read them all: off the event loop
        return self.records.in_order(f"{index}-created", partition, not sort.ascending)

    def list_ids(
        self, request: common_pb2.NamedEntityIdentifierListRequest, rpc: str
    ) -> common_pb2.NamedEntityIdentifierList:
        """Distinct names in a project-domain; filters are ignored, as in flyteadmin (§1.4)."""
        if not request.project:
            raise missing("project")
        if not request.domain:
            raise missing("domain")
        listing.check_limit(request.limit)
        names = sorted({r.value.id.name for r in self.candidates(request.project, request.domain)})
        sort_key, ascending = sort_args(request)
        if sort_key not in (None, "name", "project", "domain"):
            raise invalid_argument(f"invalid sort key '{sort_key}'")
        if sort_key == "name" and not ascending:
            names.reverse()
        offset = listing.parse_token(request.token, rpc)
        page = names[offset : offset + request.limit]
        token = str(offset + len(page)) if len(page) == request.limit else ""
        return common_pb2.NamedEntityIdentifierList(
            entities=[
                common_pb2.NamedEntityIdentifier(
                    project=request.project, domain=request.domain, name=n
                )
                for n in page
            ],
            token=token,
        )


def id_tuple(identifier: identifier_pb2.Identifier) -> tuple[str, str, str, str]:
    return (identifier.project, identifier.domain, identifier.name, identifier.version)


def describe_id(identifier: identifier_pb2.Identifier) -> str:
    return (
        f"project:{identifier.project} domain:{identifier.domain} name:{identifier.name} "
        f"version:{identifier.version}"
    )
