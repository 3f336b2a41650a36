"""Description entities: written with a task or workflow version that carries a description."""

from __future__ import annotations

import datetime as dt

from flyteidl.admin import description_entity_pb2 as de_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core import wire
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import invalid_value, missing
from flyteadmin.core.listing import Column, ColumnType
from flyteadmin.core.registration.entities import VersionedEntities, entity_schema, id_columns
from flyteadmin.core.store import AlreadyExists, Collection

RT = identifier_pb2.ResourceType

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


class Descriptions(VersionedEntities[de_pb2.DescriptionEntity]):
    def __init__(self, records: Collection[Registered[de_pb2.DescriptionEntity]]) -> None:
        super().__init__(records, resource_type=RT.UNSPECIFIED, schema=SCHEMA, label="Description")

    async def ensure(
        self, identifier: identifier_pb2.Identifier, description: de_pb2.DescriptionEntity
    ) -> None:
        """Store the description of a task or workflow version; idempotent, so a retried
        registration finishes what a failed one started."""
        entity = de_pb2.DescriptionEntity()
        entity.CopyFrom(description)
        entity.id.CopyFrom(identifier)
        created = dt.datetime.now(dt.UTC)
        try:
            await self.records.create(Registered(entity, "", created=created))  # no digest
        except AlreadyExists:
            pass  # same version, same id: the definition's identity rule covers the rest

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
