"""Projects and domains (flyteadmin-behaviour.md §7): register, update, get, list, and the
project/domain check (§1.3) every later registration and execution RPC runs first."""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import partial

from flyteidl.admin import project_pb2

from flyteadmin.core import listing, wire
from flyteadmin.core.config import Domain
from flyteadmin.core.errors import AdminError, Code, invalid_argument, missing, not_found
from flyteadmin.core.listing import Column, ColumnType, EntitySchema, SortSpec
from flyteadmin.core.store import AlreadyExists, Collection, Stored
from flyteadmin.core.validation.projects import validate_project, validate_register

ACTIVE = project_pb2.Project.ACTIVE
ARCHIVED = project_pb2.Project.ARCHIVED
_LIST = wire.ListShape(project_pb2.Projects, "projects")
_ANSWER = "project:answer"  # Stored.memo key of a project's answer (``_with_domains``)
_BY_ID = "id"  # the sorted index of projects by id

Record = Stored[project_pb2.Project]

# The filterable and sortable columns of flyteadmin's `projects` table (§1.6).
SCHEMA = EntitySchema(
    name="project",
    columns={
        "identifier": Column(ColumnType.STRING, lambda r: r.value.id),
        "name": Column(ColumnType.STRING, lambda r: r.value.name),
        "description": Column(ColumnType.STRING, lambda r: r.value.description),
        "state": Column(ColumnType.INT, lambda r: r.value.state),
        "created_at": Column(ColumnType.TIMESTAMP, lambda r: r.created_at),
    },
    tiebreak=lambda r: r.value.id,
    default_sort=SortSpec("identifier", ascending=True),
)


class Projects:
    def __init__(self, collection: Collection[project_pb2.Project], domains: tuple[Domain, ...]):
        self._collection = collection
        # Creation times to the microsecond, kept by the codec (core/crmap/projects.py).
        self._created: dict[str, dt.datetime] = getattr(collection.codec, "created", {})
        created = self._created

        def created_at(r: Record) -> dt.datetime:
            return created.get(r.value.id) or r.created_at

        self.schema = dataclasses.replace(
            SCHEMA,
            columns={**SCHEMA.columns, "created_at": Column(ColumnType.TIMESTAMP, created_at)},
        )
        self._domains = [project_pb2.Domain(id=d.id, name=d.name) for d in domains]
        self._domain_ids = {d.id for d in domains}
        # Projects by id (the default order): a list reads its page's rows, not all of them.
        collection.add_sorted_index(_BY_ID, lambda p: (None, (p.id, p.id)))
        self._pages: listing.PageMemo[wire.Encoded[project_pb2.Projects]] = listing.PageMemo(
            lambda: collection.changes
        )

    def domains(self) -> list[project_pb2.Domain]:
        return list(self._domains)

    def _with_domains(self, record: Record) -> project_pb2.Project:
        """The stored project plus the configured domains, made once per stored version (kept in
        its memo; responses copy, so sharing is safe)."""
        try:
            answer: project_pb2.Project = record.memo[_ANSWER]
        except KeyError:
            answer = record.memo[_ANSWER] = project_pb2.Project()
            answer.CopyFrom(record.value)
            answer.domains.extend(self._domains)
        return answer

    async def register(self, request: project_pb2.ProjectRegisterRequest) -> None:
        validate_register(request)
        project = project_pb2.Project()
        project.CopyFrom(request.project)
        fresh = self._collection.get(project.id) is None  # else AlreadyExists, time kept
        if fresh:
            self._created[project.id] = dt.datetime.now(dt.UTC)
        try:
            await self._collection.create(project)
        except Exception as exc:
            if fresh:  # the watch brings the time of a project created elsewhere
                self._created.pop(project.id, None)
            if isinstance(exc, AlreadyExists):
                raise AdminError(
                    Code.ALREADY_EXISTS, f"project [{project.id}] already exists"
                ) from exc
            raise

    async def update(self, request: project_pb2.Project) -> None:
        if self._collection.get(request.id) is None and request.id:
            raise not_found(f"project [{request.id}] not found")
        validate_project(request)

        def change(stored: project_pb2.Project) -> project_pb2.Project:
            # flyteadmin writes only non-empty fields; the state is always written.
            updated = project_pb2.Project()
            updated.CopyFrom(stored)
            if request.name:
                updated.name = request.name
            if request.description:
                updated.description = request.description
            if request.labels.values:
                updated.labels.CopyFrom(request.labels)
            updated.state = request.state
            return updated

        await self._collection.mutate(request.id, change)

    def get(self, project_id: str) -> project_pb2.Project:
        if not project_id:
            raise missing("id")
        stored = self._collection.get(project_id)
        if stored is None:
            raise not_found(f"project [{project_id}] not found")
        return self._with_domains(stored)

    async def list(
        self, request: project_pb2.ProjectListRequest
    ) -> wire.Encoded[project_pb2.Projects]:
        key = request.SerializeToString(deterministic=True)
        kept, at = self._pages.get(key)
        if kept is not None:
            return kept
        answer = await self._list(request)
        self._pages.put(key, at, answer)
        return answer

    async def _list(
        self, request: project_pb2.ProjectListRequest
    ) -> wire.Encoded[project_pb2.Projects]:
        query = listing.parse_list_request(
            self.schema,
            filters=request.filters,
            sort_key=request.sort_by.key if request.HasField("sort_by") else None,
            ascending=request.sort_by.direction == request.sort_by.ASCENDING,
            token=request.token,
            limit=request.limit,
            rpc="ListProjects",
            zero_limit_means_all=True,
        )
        if not request.filters:
            # Without filters, archived projects are hidden (§7); any filter drops the default.
            archived = listing.build_filter(self.schema, "ne", "state", [str(ARCHIVED)])
            query = query.with_filters(archived)
        sort = query.sort
        few = len(self._collection) < listing.OFF_LOOP_ROWS
        if sort is not None and sort.key == "identifier" and few:
            # A selective filter reads every row: on the event loop only while they are few.
            rows = self._collection.in_order(_BY_ID, None, not sort.ascending)
            page = listing.scan_in_order(query, rows)
        else:
            page = await listing.evaluate_async(query, self._collection.values())
        items = [_LIST.kept(r.memo, partial(self._with_domains, r)) for r in page.items]
        return _LIST.page(items, page.next_token)

    def check_project_domain(self, project_id: str, domain: str) -> None:
        """§1.3: the project exists and is ACTIVE, and the domain is configured."""
        stored = self._collection.get(project_id)
        if stored is None:
            raise invalid_argument(
                f"failed to validate that project [{project_id}] and domain [{domain}] are "
                f"registered, err: [project [{project_id}] not found]"
            )
        if stored.value.state != ACTIVE:
            raise invalid_argument(
                f"project [{project_id}] is not active",
                project_pb2.InactiveProject(id=project_id),
            )
        if domain not in self._domain_ids:
            raise invalid_argument(f"domain [{domain}] is unrecognized by system")
