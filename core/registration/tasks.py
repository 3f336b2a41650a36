"""Tasks (§3.1): validate in flyteadmin's order, compile, keep the compiled task (in the blob
store when large: a task template may carry megabytes of custom configuration)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flyteidl.admin import task_pb2
from flyteidl.core import identifier_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.core import wire
from flyteadmin.core.compiler import CompileErrors, compile_task
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import invalid_argument
from flyteadmin.core.listing import Column, ColumnType
from flyteadmin.core.projects import Projects
from flyteadmin.core.registration.descriptions import Descriptions
from flyteadmin.core.registration.entities import VersionedEntities, entity_schema, id_columns
from flyteadmin.core.registration.payloads import Offloader
from flyteadmin.core.registration.versions import IdentityRule, create_version, digest
from flyteadmin.core.store import Collection, Stored
from flyteadmin.core.validation.tasks import (
    TaskResourceLimits,
    TaskTypeWhitelist,
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
Record = Stored[Registered[task_pb2.Task]]
_LIST = wire.ListShape(task_pb2.TaskList, "tasks")


def light(task: task_pb2.Task) -> task_pb2.Task:
    """What a Task object keeps when its closure is in the blob store: the template's id,
    type, interface and metadata (enough for lists, filters and joins), or only its id and
    type if even those are large."""
    template = task.closure.compiled_task.template
    out = task_pb2.Task(id=task.id, short_description=task.short_description)
    out.closure.created_at.CopyFrom(task.closure.created_at)
    slim = out.closure.compiled_task.template
    slim.id.CopyFrom(template.id)
    slim.type = template.type
    slim.task_type_version = template.task_type_version
    slim.interface.CopyFrom(template.interface)
    slim.metadata.CopyFrom(template.metadata)
    if out.ByteSize() > LIGHT_MAX_BYTES:
        slim.ClearField("interface")
        slim.ClearField("metadata")
    return out


LIGHT_MAX_BYTES = 16 * 1024


class Tasks(VersionedEntities[task_pb2.Task]):
    def __init__(
        self,
        records: Collection[Registered[task_pb2.Task]],
        *,
        projects: Projects,
        descriptions: Descriptions,
        resource_limits: Callable[[str, str], TaskResourceLimits],
        whitelist: TaskTypeWhitelist | None = None,
        blobs: Callable[[], object] = lambda: None,
        inline_threshold: int = 64 * 1024,
    ) -> None:
        super().__init__(records, resource_type=RT.TASK, schema=SCHEMA, label="Task")
        self.projects = projects
        self.descriptions = descriptions
        self._resource_limits = resource_limits
        self._whitelist = whitelist or {}
        self.offloader = Offloader("task", blobs, inline_threshold, light)

    async def full(self, record: Record) -> task_pb2.Task:
        """The task with its whole compiled closure (read from the blob store if offloaded)."""
        return await self.offloader.full(record.value)

    async def get_full(self, identifier: identifier_pb2.Identifier) -> task_pb2.Task:
        """GetTask."""
        return await self.full(self.require(identifier))

    async def list_full(self, request: Any, rpc: str) -> wire.Encoded[task_pb2.TaskList]:
        """ListTasks: whole tasks, as flyteadmin returns them (flytekit's fetch of the latest
        version reads the template from the list), already serialized (core/wire.py)."""
        records, token = await self.list_records(request, rpc=rpc)
        return _LIST.page([await self._entry(r) for r in records], token)

    async def _entry(self, record: Record) -> bytes:
        if record.value.payload_ref:
            # Offloaded because it is large: the offloader's bounded cache keeps its closure,
            # not every listed version's memo.
            return _LIST.item((await self.full(record)).SerializeToString())
        return _LIST.kept(record.memo, lambda: record.value.message)

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
        value, describe = self.descriptions.attach(
            Registered(task, digest(compiled)), request.id, request.spec
        )
        await create_version(self.records, value, RULE, self.offloader, first=describe)
