"""Description entities: the documentation of a task or workflow version (flytekit sends a
function's docstring as its version's description).

A description that fits (``INLINE_BYTES``) is kept in its version's own object, so a documented
registration is one kube-apiserver create instead of two; a larger one is a DescriptionEntity
object of its own, written before the version, as every description was before 2026-12-07
(those objects are still served). Reads see both as description entities.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from flyteidl.admin import description_entity_pb2 as de_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core import wire
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import invalid_value, missing
from flyteadmin.core.listing import Column, ColumnType, ListQuery
from flyteadmin.core.registration.entities import (
    Record,
    VersionedEntities,
    created_at,
    entity_schema,
    id_columns,
)
from flyteadmin.core.store import AlreadyExists, Collection, Stored

RT = identifier_pb2.ResourceType

# A description up to this size (serialized) goes into its version's object; a docstring is
# rarely more than a few KB, and this keeps a version object far from etcd's limit.
INLINE_BYTES = 64 * 1024

COLUMNS = id_columns(
    {
        "resource_type": Column(ColumnType.INT, lambda r: r.value.id.resource_type),
        "short_description": Column(ColumnType.STRING, lambda r: r.value.message.short_description),
    }
)
SCHEMA = entity_schema("description_entity", COLUMNS)
_LIST = wire.ListShape(de_pb2.DescriptionEntityList, "descriptionEntities")
# flyteadmin parses a ListDescriptionEntities filter with the resource type's own entity as the
# primary one, so its prefix is allowed: flyteconsole sends `eq(workflow.name,...)` on a
# workflow, `eq(task.name,...)` on a task. Other resource types: unprefixed columns only.
PREFIXES = {RT.TASK: "task", RT.WORKFLOW: "workflow", RT.LAUNCH_PLAN: "launch_plan"}
SCHEMA_BY_TYPE = {rt: entity_schema(prefix, COLUMNS) for rt, prefix in PREFIXES.items()}
_MEMO = "description"  # the key of a version's description record in its memo

Write = Callable[[], Awaitable[None]]


class Descriptions(VersionedEntities[de_pb2.DescriptionEntity]):
    """``records``: the DescriptionEntity objects; ``versions``: the kinds that keep their
    description inside (resource type -> tasks, workflows), given late: they are built with
    this service."""

    def __init__(
        self,
        records: Collection[Registered[de_pb2.DescriptionEntity]],
        versions: Callable[[], Mapping[int, VersionedEntities[Any]]],
    ) -> None:
        super().__init__(records, resource_type=RT.UNSPECIFIED, schema=SCHEMA, label="Description")
        self._versions = versions

    # ----------------------------------------------------------------------------- writes

    def attach(
        self, value: Registered[Any], identifier: identifier_pb2.Identifier, spec: Any
    ) -> tuple[Registered[Any], Write | None]:
        """The version to create for a registration whose ``spec`` may carry a description,
        and what to write before it: nothing when the description fits in the version (or there
        is none), else its own object (idempotent, so a retried registration finishes what a
        failed one started)."""
        if not spec.HasField("description"):
            return value, None
        entity = de_pb2.DescriptionEntity()
        entity.CopyFrom(spec.description)
        entity.id.CopyFrom(identifier)
        if entity.ByteSize() <= INLINE_BYTES:
            return replace(value, description=entity), None
        return value, partial(self._store, entity)

    async def _store(self, entity: de_pb2.DescriptionEntity) -> None:
        created = dt.datetime.now(dt.UTC)
        try:
            await self.records.create(Registered(entity, "", created=created))  # no digest
        except AlreadyExists:
            pass  # same version, same id: the definition's identity rule covers the rest

    # ----------------------------------------------------------------------------- reads

    def _inside(self, version: Record) -> Record | None:
        """The description kept in ``version``'s object, as a description record (made once
        per stored version)."""
        entity = version.value.description
        if entity is None:
            return None
        found: Record | None = version.memo.get(_MEMO)
        if found is None:
            value = Registered(entity, "", created=created_at(version))
            found = Stored(
                version.name, version.resource_version, version.uid, version.created_at, value
            )
            version.memo[_MEMO] = found
        return found

    def find(self, identifier: identifier_pb2.Identifier) -> Record | None:
        versions = self._versions().get(identifier.resource_type)
        version = versions.exact(identifier) if versions is not None else None
        inside = self._inside(version) if version is not None else None
        return inside or super().find(identifier)

    def candidates(self, project: str, domain: str, name: str = "") -> list[Record]:
        """The DescriptionEntity objects and the descriptions inside versions; where a version
        has both (a registration retried across the upgrade), the one inside."""
        inside: dict[tuple[int, tuple[str, str, str, str]], Record] = {}
        for versions in self._versions().values():
            for version in versions.candidates(project, domain, name):
                found = self._inside(version)
                if found is not None:
                    inside[(found.value.id.resource_type, found.value.key)] = found
        objects = [
            r
            for r in super().candidates(project, domain, name)
            if (r.value.id.resource_type, r.value.key) not in inside
        ]
        return objects + list(inside.values())

    def _in_creation_order(self, query: ListQuery, project: str, domain: str, name: str) -> None:
        return None  # two sources: filter and sort the candidates

    def get_description(self, identifier: identifier_pb2.Identifier) -> de_pb2.DescriptionEntity:
        if identifier.resource_type == RT.UNSPECIFIED:
            raise invalid_value("resource_type")
        for field in ("project", "domain", "name", "version"):
            if not getattr(identifier, field):
                raise missing(field)
        record = self.find(identifier)
        if record is None or record.value.id.resource_type != identifier.resource_type:
            return self.get(identifier)  # raises NotFound with the standard message
        found: de_pb2.DescriptionEntity = record.value.message
        return found

    async def list_descriptions(
        self, request: de_pb2.DescriptionEntityListRequest
    ) -> wire.Encoded[de_pb2.DescriptionEntityList]:
        # flyteadmin requires the name, and (quirk kept) ignores resource_type.
        if not request.id.name:
            raise missing("name")
        schema = SCHEMA_BY_TYPE.get(request.resource_type, SCHEMA)
        return await self.list_answer(
            request,
            _LIST,
            rpc="ListDescriptionEntities",
            schema=schema,
        )
