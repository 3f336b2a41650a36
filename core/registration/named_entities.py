"""Named entities (§9): the distinct names of tasks, workflows and launch plans, with their
metadata (description, state). A name with no metadata object is ACTIVE with no description."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flyteidl.admin import common_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core import listing
from flyteadmin.core.crmap.named_entities import (
    NamedEntityMeta,
    named_entity_object_name,
)
from flyteadmin.core.errors import invalid_argument, invalid_value, missing, not_found
from flyteadmin.core.listing import Column, ColumnType, EntitySchema, SortSpec
from flyteadmin.core.registration.entities import VersionedEntities, sort_args
from flyteadmin.core.store import AlreadyExists, Collection, Stored

RT = identifier_pb2.ResourceType
State = common_pb2.NamedEntityState
GENERATED_PREFIX = ".flytegen"
MAX_DESCRIPTION = 300

# Rows are NamedEntityMeta values (metadata or the ACTIVE default).
SCHEMA = EntitySchema(
    name="named_entity",
    columns={
        "project": Column(ColumnType.STRING, lambda m: m.project),
        "domain": Column(ColumnType.STRING, lambda m: m.domain),
        "name": Column(ColumnType.STRING, lambda m: m.name),
        "description": Column(ColumnType.STRING, lambda m: m.description),
        "state": Column(ColumnType.INT, lambda m: m.state),
        "resource_type": Column(ColumnType.INT, lambda m: m.resource_type),
    },
    tiebreak=lambda m: m.key,
    default_sort=SortSpec("name", ascending=True),
    aliases={},
)


class NamedEntities:
    def __init__(
        self, metadata: Collection[NamedEntityMeta], kinds: dict[int, VersionedEntities[Any]]
    ) -> None:
        self.metadata = metadata
        self.kinds = kinds  # resource type -> the registered kind holding its names

    def meta(
        self, resource_type: identifier_pb2.ResourceType, project: str, domain: str, name: str
    ) -> NamedEntityMeta:
        stored = self.metadata.get(named_entity_object_name(resource_type, project, domain, name))
        return stored.value if stored else NamedEntityMeta(resource_type, project, domain, name)

    def _kind(self, resource_type: int) -> VersionedEntities[Any]:
        if resource_type not in self.kinds:
            raise invalid_value("resource_type")
        return self.kinds[resource_type]

    def _exists(self, resource_type: int, ident: common_pb2.NamedEntityIdentifier) -> bool:
        return bool(self._kind(resource_type).candidates(ident.project, ident.domain, ident.name))

    @staticmethod
    def _check_id(resource_type: int, ident: common_pb2.NamedEntityIdentifier) -> None:
        if resource_type == RT.UNSPECIFIED:
            raise invalid_value("resource_type")
        for field in ("project", "domain", "name"):
            if not getattr(ident, field):
                raise missing(field)

    def get(self, request: common_pb2.NamedEntityGetRequest) -> common_pb2.NamedEntity:
        self._check_id(request.resource_type, request.id)
        if not self._exists(request.resource_type, request.id):
            raise not_found("entry not found")
        return self._answer(self.meta(request.resource_type, *_pdn(request.id)))

    async def update(self, request: common_pb2.NamedEntityUpdateRequest) -> None:
        self._check_id(request.resource_type, request.id)
        if not request.HasField("metadata"):
            raise missing("metadata")
        if len(request.metadata.description) > MAX_DESCRIPTION:
            # flyteadmin hit a database error (Unknown) here; a clear message instead.
            raise invalid_argument(f"description cannot exceed {MAX_DESCRIPTION} characters")
        if request.metadata.state != State.NAMED_ENTITY_ACTIVE and request.resource_type not in (
            RT.TASK,
            RT.WORKFLOW,
            RT.LAUNCH_PLAN,
        ):
            raise invalid_argument(
                f"Only tasks, workflows and launch plans can be archived, not "
                f"{RT.Name(request.resource_type)}"
            )
        if not self._exists(request.resource_type, request.id):
            raise not_found("entry not found")
        await self.upsert(
            request.resource_type,
            *_pdn(request.id),
            description=request.metadata.description,
            state=request.metadata.state,
        )

    async def upsert(
        self,
        resource_type: identifier_pb2.ResourceType,
        project: str,
        domain: str,
        name: str,
        **fields: Any,
    ) -> Stored[NamedEntityMeta]:
        """Create or update the metadata object (retrying on concurrent changes)."""
        current = self.meta(resource_type, project, domain, name)
        name_ = named_entity_object_name(resource_type, project, domain, name)
        if self.metadata.get(name_) is None:
            try:
                return await self.metadata.create(replace(current, **fields))
            except AlreadyExists:
                await self.metadata.read_through(name_)
        return await self.metadata.mutate(name_, lambda m: replace(m, **fields))

    async def list(self, request: common_pb2.NamedEntityListRequest) -> common_pb2.NamedEntityList:
        if not request.project:
            raise missing("project")
        if not request.domain:
            raise missing("domain")
        kind = self._kind(request.resource_type)
        extra = []
        if not request.filters:
            # Generated entities (.flytegen.<task>) are hidden unless a filter asks (§9).
            extra.append(listing.build_filter(SCHEMA, "not_like", "name", [GENERATED_PREFIX + "%"]))
        sort_key, ascending = sort_args(request)
        query = listing.parse_list_request(
            SCHEMA,
            filters=request.filters,
            sort_key=sort_key,
            ascending=ascending,
            token=request.token,
            limit=request.limit,
            rpc="ListNamedEntities",
            implicit=extra,
        )
        names = {r.value.key[2] for r in kind.candidates(request.project, request.domain)}
        rows = [self.meta(request.resource_type, request.project, request.domain, n) for n in names]
        page = await listing.evaluate_async(query, rows)
        return common_pb2.NamedEntityList(
            entities=[self._answer(m) for m in page.items], token=page.next_token
        )

    @staticmethod
    def _answer(meta: NamedEntityMeta) -> common_pb2.NamedEntity:
        return common_pb2.NamedEntity(
            resource_type=meta.resource_type,
            id=common_pb2.NamedEntityIdentifier(
                project=meta.project, domain=meta.domain, name=meta.name
            ),
            metadata=common_pb2.NamedEntityMetadata(description=meta.description, state=meta.state),
        )


def _pdn(ident: common_pb2.NamedEntityIdentifier) -> tuple[str, str, str]:
    return ident.project, ident.domain, ident.name
