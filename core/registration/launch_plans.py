"""Launch plans (§4): create, activate/deactivate, get, get active, list, list active, ids.

At most one version per name is ACTIVE, also under concurrent activations: the active version
is a single field (``activeVersion``) of the launch plan's named-entity object, and an
activation is an optimistic-concurrency update of that one object, so concurrent activations
serialize on its resourceVersion. Every answer derives ``closure.state`` from that pointer; the
``state`` field on each launch-plan object is a mirror for ``kubectl get``, updated after the
pointer and repaired by the next activation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from flyteidl.admin import common_pb2, launch_plan_pb2
from flyteidl.core import identifier_pb2, interface_pb2

from flyteadmin.core import listing, wire
from flyteadmin.core.crmap.registered import Registered, schedule_type
from flyteadmin.core.errors import invalid_argument, missing, not_found
from flyteadmin.core.listing import Column, ColumnType, Join
from flyteadmin.core.notifications.validation import validate_notifications
from flyteadmin.core.projects import Projects
from flyteadmin.core.registration.entities import (
    VersionedEntities,
    describe_id,
    entity_schema,
    id_columns,
    id_tuple,
)
from flyteadmin.core.registration.named_entities import NamedEntities
from flyteadmin.core.registration.versions import IdentityRule, create_version, digest
from flyteadmin.core.registration.workflows import Workflows
from flyteadmin.core.store import Collection, Stored
from flyteadmin.core.timestamps import now_stamp
from flyteadmin.core.validation.identifiers import validate_identifier
from flyteadmin.core.validation.labels import validate_labels
from flyteadmin.core.validation.launch_plans import check_launch_plan_inputs
from flyteadmin.core.validation.schedules import validate_schedule

RT = identifier_pb2.ResourceType
LPState = launch_plan_pb2.LaunchPlanState
_LIST = wire.ListShape(launch_plan_pb2.LaunchPlanList, "launch_plans")
Record = Stored[Registered[launch_plan_pb2.LaunchPlan]]


class LaunchPlans(VersionedEntities[launch_plan_pb2.LaunchPlan]):
    def __init__(
        self,
        records: Collection[Registered[launch_plan_pb2.LaunchPlan]],
        *,
        projects: Projects,
        workflows: Workflows,
        named: Callable[[], NamedEntities],
    ) -> None:
        self.projects = projects
        self.workflows = workflows
        self._named = named  # late-bound: named entities also list launch-plan names
        columns = id_columns(
            {
                "state": Column(ColumnType.INT, self._state),
                "schedule_type": Column(ColumnType.STRING, self._schedule_type),
            }
        )
        schema = entity_schema(
            "launch_plan",
            columns,
            joins={"workflow": Join(workflows.schema, self._workflow_of)},
        )
        super().__init__(
            records,
            resource_type=RT.LAUNCH_PLAN,
            schema=schema,
            label="LaunchPlan",
            answer=self._with_state,
        )

    # ----------------------------------------------------------------------------- state

    def active_version(self, project: str, domain: str, name: str) -> str:
        return self._named().meta(RT.LAUNCH_PLAN, project, domain, name).active_version

    def _state(self, record: Record) -> launch_plan_pb2.LaunchPlanState:
        ident = record.value.id
        active = self.active_version(ident.project, ident.domain, ident.name)
        return LPState.ACTIVE if active == ident.version else LPState.INACTIVE

    @staticmethod
    def _schedule_type(record: Record) -> str:
        return schedule_type(record.value.message.spec)

    def _workflow_of(self, record: Record) -> Any:
        return self.workflows.find(record.value.message.spec.workflow_id)

    def _with_state(self, record: Record) -> launch_plan_pb2.LaunchPlan:
        answer = launch_plan_pb2.LaunchPlan()
        answer.CopyFrom(record.value.message)
        answer.closure.state = self._state(record)
        return answer

    def listed_entry(self, shape: wire.ListShape[Any], record: Record) -> bytes:
        # Which version is active is kept apart from the versions: one form per state.
        return shape.kept(record.memo, partial(self._with_state, record), self._state(record))

    # ----------------------------------------------------------------------------- create

    async def create(self, request: launch_plan_pb2.LaunchPlanCreateRequest) -> None:
        if not request.HasField("spec"):
            raise missing("id")
        validate_identifier(request.spec.workflow_id, RT.WORKFLOW)
        workflow = self.workflows.find(request.spec.workflow_id)
        if workflow is None or workflow.value.key != id_tuple(request.spec.workflow_id):
            raise not_found(
                f"missing entity of type WORKFLOW with identifier "
                f"{describe_id(request.spec.workflow_id)}"
            )
        interface = self.workflows.interface(workflow)
        validate_identifier(request.id, RT.LAUNCH_PLAN)
        self.projects.check_project_domain(request.id.project, request.id.domain)
        validate_labels(request.spec.labels.values)
        expected = check_launch_plan_inputs(request, interface)
        schedule = request.spec.entity_metadata.schedule
        if request.spec.entity_metadata.HasField("schedule"):
            validate_schedule(schedule, expected)
        validate_notifications(request.spec.entity_metadata.notifications)
        if request.spec.entity_metadata.HasField("launch_conditions"):
            raise invalid_argument("launch conditions are not supported")
        lp = build_launch_plan(request, expected, interface)
        value = Registered(lp, digest(_identity_payload(lp)))
        rule = IdentityRule("launch plan", payload=lambda r: r.message.spec)
        await create_version(self.records, value, rule)

    # ----------------------------------------------------------------------------- update

    async def update(self, request: launch_plan_pb2.LaunchPlanUpdateRequest) -> None:
        if request.state not in (LPState.ACTIVE, LPState.INACTIVE):
            raise invalid_argument("Unrecognized launch plan state")
        ident = request.id
        if request.state == LPState.INACTIVE:
            validate_identifier(ident, RT.LAUNCH_PLAN)
        record = self.find(ident)
        if record is None or record.value.key != id_tuple(ident):
            raise not_found(
                f"missing entity of type LAUNCH_PLAN with identifier {describe_id(ident)}"
            )
        named = self._named()
        p, d, n = ident.project, ident.domain, ident.name
        if request.state == LPState.ACTIVE:
            await named.upsert(RT.LAUNCH_PLAN, p, d, n, active_version=ident.version)
        elif named.meta(RT.LAUNCH_PLAN, p, d, n).active_version == ident.version:
            await named.metadata.mutate(
                named.metadata.codec.name(named.meta(RT.LAUNCH_PLAN, p, d, n)),
                lambda m: m if m.active_version != ident.version else _replace(m, ""),
            )
        await self._sync_mirrors(p, d, n)

    async def _sync_mirrors(self, project: str, domain: str, name: str) -> None:
        """Make the objects' ``state`` fields match the pointer (display only)."""
        for record in self.candidates(project, domain, name):
            want = self._state(record)
            if record.value.message.closure.state != want:

                def flip(
                    value: Registered[Any], want: launch_plan_pb2.LaunchPlanState = want
                ) -> Registered[Any]:
                    lp = launch_plan_pb2.LaunchPlan()
                    lp.CopyFrom(value.message)
                    lp.closure.state = want
                    return Registered(lp, value.digest)

                await self.records.mutate(record.name, flip)

    # ----------------------------------------------------------------------------- reads

    def get_active(
        self, request: launch_plan_pb2.ActiveLaunchPlanRequest
    ) -> launch_plan_pb2.LaunchPlan:
        ident = request.id
        for field in ("project", "domain", "name"):
            if not getattr(ident, field):
                raise missing(field)
        version = self.active_version(ident.project, ident.domain, ident.name)
        record = None
        if version:
            record = self.find(
                identifier_pb2.Identifier(
                    resource_type=RT.LAUNCH_PLAN,
                    project=ident.project,
                    domain=ident.domain,
                    name=ident.name,
                    version=version,
                )
            )
        if record is None:
            raise not_found(
                f"No active launch plan could be found: {ident.project}:{ident.domain}:{ident.name}"
            )
        return self._with_state(record)

    async def list_launch_plans(
        self, request: Any, *, active_only: bool = False
    ) -> wire.Encoded[launch_plan_pb2.LaunchPlanList]:
        extra = []
        if active_only:
            extra.append(listing.build_filter(self.schema, "eq", "state", [str(LPState.ACTIVE)]))
        return await self.list_answer(
            _as_resource_request(request) if active_only else request,
            _LIST,
            extra=extra,
            rpc="ListActiveLaunchPlans" if active_only else "ListLaunchPlans",
        )


def build_launch_plan(
    request: launch_plan_pb2.LaunchPlanCreateRequest,
    expected: interface_pb2.ParameterMap,
    interface: interface_pb2.TypedInterface,
) -> launch_plan_pb2.LaunchPlan:
    """The stored launch plan: ``default_inputs`` replaced by the expected inputs (§4.1 step 9)."""
    spec = launch_plan_pb2.LaunchPlanSpec()
    spec.CopyFrom(request.spec)
    spec.default_inputs.CopyFrom(expected)
    now = now_stamp()
    return launch_plan_pb2.LaunchPlan(
        id=request.id,
        spec=spec,
        closure=launch_plan_pb2.LaunchPlanClosure(
            state=LPState.INACTIVE,
            expected_inputs=expected,
            expected_outputs=interface.outputs,
            created_at=now,
            updated_at=now,
        ),
    )


def _identity_payload(lp: launch_plan_pb2.LaunchPlan) -> launch_plan_pb2.LaunchPlan:
    """What the digest covers: the id, spec and expected interface, not the timestamps."""
    return launch_plan_pb2.LaunchPlan(
        id=lp.id,
        spec=lp.spec,
        closure=launch_plan_pb2.LaunchPlanClosure(
            expected_inputs=lp.closure.expected_inputs,
            expected_outputs=lp.closure.expected_outputs,
        ),
    )


def _replace(meta: Any, active_version: str) -> Any:
    return replace(meta, active_version=active_version)


def _as_resource_request(
    request: launch_plan_pb2.ActiveLaunchPlanListRequest,
) -> common_pb2.ResourceListRequest:
    return common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project=request.project, domain=request.domain),
        limit=request.limit,
        token=request.token,
        sort_by=request.sort_by if request.HasField("sort_by") else None,
    )
