"""Workflows (§3.2): compile on registration, keep the compiled closure (in the blob store when
large), serve it whole on Get and in light form on List."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flyteidl.admin import workflow_pb2
from flyteidl.core import compiler_pb2, identifier_pb2, interface_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.core import wire
from flyteadmin.core.compiler import CompileErrors, compile_workflow, id_key, requirements
from flyteadmin.core.compiler._graph import LaunchPlanLike
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import invalid_argument, missing
from flyteadmin.core.listing import Column, ColumnType
from flyteadmin.core.projects import Projects
from flyteadmin.core.quantities import parse_quantity
from flyteadmin.core.registration.descriptions import Descriptions
from flyteadmin.core.registration.entities import (
    VersionedEntities,
    entity_schema,
    id_columns,
    id_tuple,
)
from flyteadmin.core.registration.payloads import Offloader
from flyteadmin.core.registration.tasks import Tasks
from flyteadmin.core.registration.versions import IdentityRule, create_version, digest
from flyteadmin.core.store import Collection, Stored
from flyteadmin.core.validation.identifiers import proto_text, validate_identifier

RT = identifier_pb2.ResourceType
_LIST = wire.ListShape(workflow_pb2.WorkflowList, "workflows")
Record = Stored[Registered[workflow_pb2.Workflow]]

SCHEMA = entity_schema(
    "workflow",
    id_columns(
        {
            "short_description": Column(
                ColumnType.STRING, lambda r: r.value.message.short_description
            ),
        }
    ),
)


@dataclass(frozen=True)
class WorkflowLimits:
    max_nodes: int = 100
    """Nodes of the primary workflow, not counting start and end (0: no limit)."""
    size_limit: str = ""
    """A Kubernetes quantity compared with the serialized closure's size ("": no limit)."""
    max_closure_bytes: int = 0
    """The largest closure GetWorkflow can send (server.max_message_bytes less room for the
    rest of the answer); 0: no limit."""


def light(record: Record) -> workflow_pb2.Workflow:
    """ListWorkflows' form: the interface and created_at only (§3.2)."""
    return light_from_message(record.value.message)


class Workflows(VersionedEntities[workflow_pb2.Workflow]):
    def __init__(
        self,
        records: Collection[Registered[workflow_pb2.Workflow]],
        *,
        projects: Projects,
        tasks: Tasks,
        descriptions: Descriptions,
        launch_plan_interface: Callable[[identifier_pb2.Identifier], LaunchPlanLike | None],
        blobs: Callable[[], object],
        inline_threshold: int = 64 * 1024,
        limits: WorkflowLimits = WorkflowLimits(),
    ) -> None:
        super().__init__(
            records, resource_type=RT.WORKFLOW, schema=SCHEMA, label="Workflow", light=light
        )
        self.projects = projects
        self.tasks = tasks
        self.descriptions = descriptions
        self._launch_plan_interface = launch_plan_interface
        self._limits = limits
        self.offloader = Offloader("workflow", blobs, inline_threshold, light_from_message)

    def interface(self, record: Record) -> interface_pb2.TypedInterface:
        return record.value.message.closure.compiled_workflow.primary.template.interface

    async def list_workflows(self, request: Any) -> wire.Encoded[workflow_pb2.WorkflowList]:
        return await self.list_answer(request, _LIST, rpc="ListWorkflows")

    async def get_full(self, identifier: identifier_pb2.Identifier) -> workflow_pb2.Workflow:
        """GetWorkflow: the full compiled closure (flytekit needs it to run anything)."""
        return await self.offloader.full(self.require(identifier).value)

    async def create(self, request: workflow_pb2.WorkflowCreateRequest) -> None:
        validate_identifier(request.id, RT.WORKFLOW)
        self.projects.check_project_domain(request.id.project, request.id.domain)
        if not request.spec.HasField("template"):
            raise missing("spec.template")
        closure = await self.compile(request)
        self._check_limits(request.id, closure)
        created = timestamp_pb2.Timestamp()
        created.FromDatetime(dt.datetime.now(dt.UTC))
        workflow = workflow_pb2.Workflow(
            id=request.id,
            closure=workflow_pb2.WorkflowClosure(compiled_workflow=closure, created_at=created),
            short_description=request.spec.description.short_description,
        )
        value, describe = self.descriptions.attach(
            Registered(workflow, digest(closure)), request.id, request.spec
        )

        reason = workflow_pb2.CreateWorkflowFailureReason
        rule = IdentityRule(
            "workflow",
            payload=lambda r: r.message.closure.compiled_workflow,
            identical_details=(
                reason(
                    exists_identical_structure=workflow_pb2.WorkflowErrorExistsIdenticalStructure(
                        id=request.id
                    )
                ),
            ),
            different_details=(
                reason(
                    exists_different_structure=workflow_pb2.WorkflowErrorExistsDifferentStructure(
                        id=request.id
                    )
                ),
            ),
        )
        await create_version(self.records, value, rule, self.offloader, first=describe)

    async def compile(
        self, request: workflow_pb2.WorkflowCreateRequest
    ) -> compiler_pb2.CompiledWorkflowClosure:
        """Load what the workflow references and compile it; every failure is InvalidArgument
        "failed to compile workflow for [id] with err: ..." (§3.2 step 7)."""
        template = type(request.spec.template)()
        template.CopyFrom(request.spec.template)
        template.id.CopyFrom(request.id)
        subs = list(request.spec.sub_workflows)
        try:
            needs = requirements(template, subs)
            tasks = []
            for task_id in needs.task_ids:
                record = self.tasks.find(task_id)
                if record is None or record.value.key != id_tuple(task_id):
                    raise CompileErrors.task_not_found(task_id)
                tasks.append((await self.tasks.full(record)).closure.compiled_task)
            launch_plans = {}
            for lp_id in needs.launch_plan_ids:
                interface = self._launch_plan_interface(lp_id)
                if interface is None:
                    raise CompileErrors.launch_plan_not_found(lp_id)
                launch_plans[id_key(lp_id)] = interface
            return compile_workflow(template, subs, tasks, launch_plans)
        except CompileErrors as errors:
            raise invalid_argument(
                f"failed to compile workflow for [{proto_text(request.id)}] with err: {errors}"
            ) from errors

    def _check_limits(
        self, ident: identifier_pb2.Identifier, closure: compiler_pb2.CompiledWorkflowClosure
    ) -> None:
        nodes = len(closure.primary.template.nodes) - 2
        if self._limits.max_nodes and nodes > self._limits.max_nodes:
            raise invalid_argument(
                f"number of nodes in workflow [{_describe(ident)}] exceeds limit "
                f"({nodes} > {self._limits.max_nodes})"
            )
        size = closure.ByteSize()
        if self._limits.size_limit and size > parse_quantity(self._limits.size_limit):
            raise invalid_argument(
                f"Workflow closure size exceeds max limit [{self._limits.size_limit}]"
            )
        if self._limits.max_closure_bytes and size > self._limits.max_closure_bytes:
            # GetWorkflow could not send it (the closure carries every task template).
            raise invalid_argument(
                f"the compiled workflow closure of [{_describe(ident)}] is {size} bytes, more "
                f"than the maximum message size {self._limits.max_closure_bytes} "
                "(server.max_message_bytes)"
            )


def light_from_message(wf: workflow_pb2.Workflow) -> workflow_pb2.Workflow:
    """The workflow with only its interface and created_at in the closure."""
    answer = workflow_pb2.Workflow(id=wf.id, short_description=wf.short_description)
    answer.closure.created_at.CopyFrom(wf.closure.created_at)
    answer.closure.compiled_workflow.primary.template.interface.CopyFrom(
        wf.closure.compiled_workflow.primary.template.interface
    )
    return answer


def _describe(identifier: identifier_pb2.Identifier) -> str:
    return (
        f"resource_type:{RT.Name(identifier.resource_type)} project:{identifier.project} "
        f"domain:{identifier.domain} name:{identifier.name} version:{identifier.version}"
    )
