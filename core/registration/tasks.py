"""Tasks (§3.1): validate in flyteadmin's order, compile, keep the compiled task."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flyteidl.admin import task_pb2
from flyteidl.core import identifier_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.core.compiler import CompileErrors, compile_task
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import invalid_argument
from flyteadmin.core.listing import Column, ColumnType
from flyteadmin.core.projects import Projects
from flyteadmin.core.registration.descriptions import Descriptions
from flyteadmin.core.registration.entities import VersionedEntities, entity_schema, id_columns
from flyteadmin.core.registration.versions import IdentityRule, create_version, digest
from flyteadmin.core.store import Collection
from flyteadmin.core.validation.tasks import (
    TaskResourceLimits,
    validate_task_identifier,
    validate_task_spec,
)

RT = identifier_pb2.ResourceType

SCHEMA = entity_schema(
    "task",
    id_columns(
        {
            "type": Column(
                ColumnType.STRING, lambda r: r.value.message.closure.compiled_task.template.type
            ),
            "short_description": Column(
                ColumnType.STRING, lambda r: r.value.message.short_description
            ),
        }
    ),
)

RULE = IdentityRule("task", payload=lambda r: r.message.closure.compiled_task)


class Tasks(VersionedEntities[task_pb2.Task]):
    def __init__(
        self,
        records: Collection[Registered[task_pb2.Task]],
        *,
        projects: Projects,
        descriptions: Descriptions,
        resource_limits: Callable[[str, str], TaskResourceLimits],
        whitelist: dict[str, list[tuple[str, str]]] | None = None,
    ) -> None:
        super().__init__(records, resource_type=RT.TASK, schema=SCHEMA, label="Task")
        self.projects = projects
        self.descriptions = descriptions
        self._resource_limits = resource_limits
        self._whitelist = whitelist or {}

    async def create(self, request: task_pb2.TaskCreateRequest) -> None:
        validate_task_identifier(request)
        self.projects.check_project_domain(request.id.project, request.id.domain)
        validate_task_spec(
            request,
            whitelist=self._whitelist,
            limits=self._resource_limits(request.id.project, request.id.domain),
        )
        template = type(request.spec.template)()
        template.CopyFrom(request.spec.template)
        template.id.CopyFrom(request.id)
        try:
            compiled = compile_task(template)
        except CompileErrors as errors:
            raise invalid_argument(f"task failed compilation with {errors}") from errors
        created = timestamp_pb2.Timestamp()
        created.FromDatetime(dt.datetime.now(dt.UTC))
        task = task_pb2.Task(
            id=request.id,
            closure=task_pb2.TaskClosure(compiled_task=compiled, created_at=created),
            short_description=request.spec.description.short_description,
        )
        if request.spec.HasField("description"):
            # First, so a client's retry after a failure here finishes the job.
            await self.descriptions.ensure(request.id, request.spec.description)
        await create_version(self.records, Registered(task, digest(compiled)), RULE)
