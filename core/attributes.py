"""Matchable attributes (flyteadmin-behaviour.md §8): the resolution engine and the service.

A row holds the admin.MatchingAttributes of one resource type at one level: project (priority
5), project+domain (10), +workflow (100), +launch plan (1000). Resolution picks the single most
specific matching row; rows are never merged across levels. The one exception is the
WORKFLOW_EXECUTION_CONFIG of an execution, merged field by field from several sources
(``merge_workflow_execution_config``, §5.2). Reads come from the watch cache; writes go
through ``Collection`` with optimistic concurrency, so concurrent plugin-override merges of one
row never lose an update. Quirk decisions: docs/decisions.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from flyteidl.admin import matchable_resource_pb2, project_pb2
from flyteidl.admin import project_attributes_pb2 as pa
from flyteidl.admin import project_domain_attributes_pb2 as pda
from flyteidl.admin import workflow_attributes_pb2 as wa
from flyteidl.core import literals_pb2

from flyteadmin.core.config import ExecutionDefaults
from flyteadmin.core.crmap.attributes import AttributeRow, Key, attributes_object_name
from flyteadmin.core.errors import AdminError, Code, invalid_argument, not_found
from flyteadmin.core.projects import Projects
from flyteadmin.core.store import AlreadyExists, Collection, Conflict, NotFound
from flyteadmin.core.validation.attributes import (
    matchable_resource_of,
    require_attributes,
    require_workflow,
    validate_resource_type,
)

MatchableResource = matchable_resource_pb2.MatchableResource
MatchingAttributes = matchable_resource_pb2.MatchingAttributes
WorkflowExecutionConfig = matchable_resource_pb2.WorkflowExecutionConfig
PLUGIN_OVERRIDE = MatchableResource.PLUGIN_OVERRIDE
WORKFLOW_EXECUTION_CONFIG = MatchableResource.WORKFLOW_EXECUTION_CONFIG

PROJECT_PRIORITY = 5
PROJECT_DOMAIN_PRIORITY = 10
WORKFLOW_PRIORITY = 100
LAUNCH_PLAN_PRIORITY = 1000

_BY_TYPE = "type"
_BY_TYPE_PROJECT = "type-project"
_UPSERT_ATTEMPTS = 8  # create/update races with deletes; each round makes progress
_MUTATE_ATTEMPTS = 32  # optimistic-concurrency retries: N writers of one row need up to N-1


# ---- the resolution engine (pure) -------------------------------------------------------------


def priority(row: AttributeRow) -> int:
    """The level of a row, as flyteadmin stores it in its `priority` column."""
    if row.launch_plan:
        return LAUNCH_PLAN_PRIORITY
    if row.workflow:
        return WORKFLOW_PRIORITY
    if row.domain:
        return PROJECT_DOMAIN_PRIORITY
    return PROJECT_PRIORITY


def resource_id(
    resource_type: int, project: str, domain: str = "", workflow: str = "", launch_plan: str = ""
) -> str:
    """flyteadmin's `%+v` of its ResourceID struct, as its NotFound messages print it."""
    known = resource_type in MatchableResource.values()
    type_name = MatchableResource.Name(resource_type) if known else str(resource_type)
    return (
        f"{{Project:{project} Domain:{domain} Workflow:{workflow} LaunchPlan:{launch_plan} "
        f"ResourceType:{type_name}}}"
    )


def check_level(
    resource_type: int, project: str, domain: str, workflow: str = "", launch_plan: str = ""
) -> None:
    """§8's invalid combinations: a project is required, only the project level has no domain,
    and a launch plan needs a workflow."""
    if not project or (not domain and (workflow or launch_plan)) or (launch_plan and not workflow):
        raise invalid_argument(
            "missing and/or invalid parameters: "
            + resource_id(resource_type, project, domain, workflow, launch_plan)
        )


def _rank(row: AttributeRow) -> tuple[int, bool]:
    # Priority first; a hand-made row without a project (flyteadmin's table allows one) loses a
    # tie against the row of the same level that names the project.
    return (priority(row), bool(row.project))


def resolve(
    candidates: Iterable[AttributeRow],
    *,
    resource_type: int,
    project: str,
    domain: str,
    workflow: str = "",
    launch_plan: str = "",
) -> AttributeRow | None:
    """The most specific row of ``resource_type`` matching the level, or None.

    A row matches when each of its project, domain, workflow and launch plan is "" or equal to
    the requested one (flyteadmin's `IN ('', x)`). With ``domain=""`` only project-level rows
    match, which is how §5.2 reads "the project-level attribute".
    """
    check_level(resource_type, project, domain, workflow, launch_plan)
    wanted = (project, domain, workflow, launch_plan)
    best: AttributeRow | None = None
    for row in candidates:
        if row.resource_type != resource_type:
            continue
        have = (row.project, row.domain, row.workflow, row.launch_plan)
        if all(h in ("", w) for h, w in zip(have, wanted, strict=True)):
            if best is None or _rank(row) > _rank(best):
                best = row
    return best


def _run_as_set(config: Any) -> bool:
    run_as = config.security_context.run_as
    return bool(run_as.k8s_service_account or run_as.iam_role or run_as.execution_identity)


def merge_workflow_execution_config(*configs: Any) -> WorkflowExecutionConfig:
    """Field by field, the first config that *sets* a field wins (§5.2; flyteadmin's
    MergeIntoExecConfig). ``configs`` go most specific first; each is a WorkflowExecutionConfig,
    ExecutionSpec or LaunchPlanSpec (they share these field names) or None.

    "Sets" means: max_parallelism > 0; security_context with a run_as naming a service account,
    IAM role or execution identity; raw_output_data_config with a non-empty prefix; labels,
    annotations, envs, execution_env_assignments with at least one entry; interruptible present
    (a BoolValue, so an explicit false counts); overwrite_cache true (false cannot be told from
    unset). A field's whole sub-message is taken from the winning source.
    """
    out = WorkflowExecutionConfig()
    for config in configs:
        if config is None:
            continue
        if not out.max_parallelism and config.max_parallelism > 0:
            out.max_parallelism = config.max_parallelism
        if not out.HasField("security_context") and _run_as_set(config):
            out.security_context.CopyFrom(config.security_context)
        prefix = config.raw_output_data_config.output_location_prefix
        if not out.raw_output_data_config.output_location_prefix and prefix:
            out.raw_output_data_config.CopyFrom(config.raw_output_data_config)
        if not out.labels.values and config.labels.values:
            out.labels.CopyFrom(config.labels)
        if not out.annotations.values and config.annotations.values:
            out.annotations.CopyFrom(config.annotations)
        if not out.HasField("interruptible") and config.HasField("interruptible"):
            out.interruptible.CopyFrom(config.interruptible)
        if not out.overwrite_cache and config.overwrite_cache:
            out.overwrite_cache = True
        if not out.envs.values and config.envs.values:
            out.envs.CopyFrom(config.envs)
        if not out.execution_env_assignments and config.execution_env_assignments:
            out.execution_env_assignments.extend(config.execution_env_assignments)
    return out


def application_defaults(
    defaults: ExecutionDefaults, *, include_envs: bool = True
) -> WorkflowExecutionConfig:
    """The config-file defaults as a WorkflowExecutionConfig: the last source of §5.2.

    ``include_envs=False`` gives what GetProjectAttributes shows (flyteadmin leaves envs out
    there). interruptible is set only when true, as false would override every workflow."""
    out = WorkflowExecutionConfig(
        max_parallelism=defaults.max_parallelism, overwrite_cache=defaults.overwrite_cache
    )
    if defaults.interruptible:
        out.interruptible.value = True
    if defaults.k8s_service_account or defaults.assumable_iam_role:
        out.security_context.run_as.k8s_service_account = defaults.k8s_service_account
        out.security_context.run_as.iam_role = defaults.assumable_iam_role
    if defaults.raw_output_prefix:
        out.raw_output_data_config.output_location_prefix = defaults.raw_output_prefix
    if defaults.labels:
        out.labels.values.update(defaults.labels)
    if defaults.annotations:
        out.annotations.values.update(defaults.annotations)
    if include_envs and defaults.envs:
        out.envs.values.extend(
            literals_pb2.KeyValuePair(key=k, value=v) for k, v in sorted(defaults.envs.items())
        )
    return out


def merge_plugin_overrides(
    existing: MatchingAttributes, update: MatchingAttributes
) -> MatchingAttributes:
    """The update's overrides replace the existing ones of the same task_type; others stay.
    Order: existing ones in place, new task types appended (flyteadmin: map order, random)."""
    by_type = {o.task_type: o for o in existing.plugin_overrides.overrides}
    by_type.update({o.task_type: o for o in update.plugin_overrides.overrides})
    merged = MatchingAttributes()
    merged.plugin_overrides.overrides.extend(by_type.values())
    return merged


# ---- the service ------------------------------------------------------------------------------


def _copy(attributes: MatchingAttributes) -> MatchingAttributes:
    out = MatchingAttributes()
    out.CopyFrom(attributes)
    return out


class Attributes:
    """Update/Get/Delete per level, List, and ``effective`` for the other services."""

    def __init__(
        self,
        collection: Collection[AttributeRow],
        projects: Projects,
        defaults: ExecutionDefaults,
    ) -> None:
        self._collection = collection
        self._projects = projects
        self._defaults = defaults
        # Registered before the backend starts the caches.
        collection.add_index(_BY_TYPE, lambda r: [r.resource_type])
        collection.add_index(_BY_TYPE_PROJECT, lambda r: [(r.resource_type, r.project)])

    # ------------------------------------------------------------------ for other services

    def effective(
        self,
        resource_type: int,
        project: str,
        domain: str,
        workflow: str = "",
        launch_plan: str = "",
    ) -> MatchingAttributes | None:
        """The most specific attributes for the level (a copy), or None. ``domain=""`` reads
        the project-level row only (§5.2 step 4)."""
        row = self._resolve(resource_type, project, domain, workflow, launch_plan)
        return _copy(row.attributes) if row is not None else None

    def execution_defaults(self) -> WorkflowExecutionConfig:
        """The application defaults, envs included (the last source of §5.2)."""
        return application_defaults(self._defaults)

    # ------------------------------------------------------------------ project-domain level

    async def update_project_domain(
        self, request: pda.ProjectDomainAttributesUpdateRequest
    ) -> None:
        require_attributes(request)
        a = request.attributes
        self._projects.check_project_domain(a.project, a.domain)
        resource_type = matchable_resource_of(a, f"{a.project}-{a.domain}")
        await self._upsert(
            AttributeRow(resource_type, a.project, a.domain, attributes=a.matching_attributes)
        )

    def get_project_domain(
        self, request: pda.ProjectDomainAttributesGetRequest
    ) -> pda.ProjectDomainAttributesGetResponse:
        self._projects.check_project_domain(request.project, request.domain)
        row = self._resolve_or_not_found(request.resource_type, request.project, request.domain)
        return pda.ProjectDomainAttributesGetResponse(
            attributes=pda.ProjectDomainAttributes(
                project=row.project, domain=row.domain, matching_attributes=row.attributes
            )
        )

    async def delete_project_domain(
        self, request: pda.ProjectDomainAttributesDeleteRequest
    ) -> None:
        self._projects.check_project_domain(request.project, request.domain)
        validate_resource_type(request.resource_type)
        await self._delete((request.resource_type, request.project, request.domain, "", ""))

    # ------------------------------------------------------------------ project level

    async def update_project(self, request: pa.ProjectAttributesUpdateRequest) -> None:
        require_attributes(request)
        a = request.attributes
        self._check_project_active(a.project)
        resource_type = matchable_resource_of(a, a.project)
        await self._upsert(AttributeRow(resource_type, a.project, attributes=a.matching_attributes))

    def get_project(
        self, request: pa.ProjectAttributesGetRequest
    ) -> pa.ProjectAttributesGetResponse:
        self._check_project_exists(request.project)
        resource_type = request.resource_type
        validate_resource_type(resource_type)
        stored = self._collection.get(attributes_object_name(resource_type, request.project))
        if resource_type == WORKFLOW_EXECUTION_CONFIG:
            # Only the exact project row, completed with the application defaults (§8).
            row_config = stored.value.attributes.workflow_execution_config if stored else None
            defaults = application_defaults(self._defaults, include_envs=False)
            config = merge_workflow_execution_config(row_config, defaults)
            matching = MatchingAttributes(workflow_execution_config=config)
        elif stored is None:
            raise not_found(f"Resource [{resource_id(resource_type, request.project)}] not found")
        else:
            matching = stored.value.attributes
        return pa.ProjectAttributesGetResponse(
            attributes=pa.ProjectAttributes(project=request.project, matching_attributes=matching)
        )

    async def delete_project(self, request: pa.ProjectAttributesDeleteRequest) -> None:
        self._check_project_active(request.project)
        validate_resource_type(request.resource_type)
        await self._delete((request.resource_type, request.project, "", "", ""))

    # ------------------------------------------------------------------ workflow level

    async def update_workflow(self, request: wa.WorkflowAttributesUpdateRequest) -> None:
        require_attributes(request)
        a = request.attributes
        self._projects.check_project_domain(a.project, a.domain)
        require_workflow(a.workflow)  # whether the workflow exists is not checked (§8)
        resource_type = matchable_resource_of(a, f"{a.project}-{a.domain}-{a.workflow}")
        row = AttributeRow(
            resource_type, a.project, a.domain, a.workflow, attributes=a.matching_attributes
        )
        await self._upsert(row)

    def get_workflow(
        self, request: wa.WorkflowAttributesGetRequest
    ) -> wa.WorkflowAttributesGetResponse:
        self._projects.check_project_domain(request.project, request.domain)
        require_workflow(request.workflow)
        row = self._resolve_or_not_found(
            request.resource_type, request.project, request.domain, request.workflow
        )
        return wa.WorkflowAttributesGetResponse(
            attributes=wa.WorkflowAttributes(
                project=row.project,
                domain=row.domain,
                workflow=row.workflow,
                matching_attributes=row.attributes,
            )
        )

    async def delete_workflow(self, request: wa.WorkflowAttributesDeleteRequest) -> None:
        self._projects.check_project_domain(request.project, request.domain)
        require_workflow(request.workflow)
        validate_resource_type(request.resource_type)
        key = (request.resource_type, request.project, request.domain, request.workflow, "")
        await self._delete(key)

    # ------------------------------------------------------------------ list

    def list(
        self, request: matchable_resource_pb2.ListMatchableAttributesRequest
    ) -> matchable_resource_pb2.ListMatchableAttributesResponse:
        """Every row of the type (0 is TASK_RESOURCE), most specific first, then by level."""
        validate_resource_type(request.resource_type)
        rows = [s.value for s in self._collection.by_index(_BY_TYPE, request.resource_type)]
        rows.sort(key=lambda r: (-priority(r), r.project, r.domain, r.workflow, r.launch_plan))
        return matchable_resource_pb2.ListMatchableAttributesResponse(
            configurations=[
                matchable_resource_pb2.MatchableAttributesConfiguration(
                    attributes=r.attributes,
                    project=r.project,
                    domain=r.domain,
                    workflow=r.workflow,
                    launch_plan=r.launch_plan,
                )
                for r in rows
            ]
        )

    # ------------------------------------------------------------------ internals

    def _check_project_active(self, project_id: str) -> None:
        """flyteadmin's ValidateProjectForUpdate (project-level update and delete)."""
        project = self._stored_project(project_id)
        if project is None:
            raise invalid_argument(
                f"failed to validate that project [{project_id}] is registered, err: "
                f"[project [{project_id}] not found]"
            )
        if project.state != project_pb2.Project.ACTIVE:
            raise invalid_argument(
                f"project [{project_id}] is not active",
                project_pb2.InactiveProject(id=project_id),
            )

    def _check_project_exists(self, project_id: str) -> None:
        """flyteadmin's ValidateProjectExists: any state (project-level get)."""
        if self._stored_project(project_id) is None:
            raise invalid_argument(
                f"failed to validate that project [{project_id}] exists, err: "
                f"[project [{project_id}] not found]"
            )

    def _stored_project(self, project_id: str) -> project_pb2.Project | None:
        if not project_id:
            return None
        try:
            return self._projects.get(project_id)
        except AdminError as exc:
            if exc.code == Code.NOT_FOUND:
                return None
            raise

    def _resolve(
        self, resource_type: int, project: str, domain: str, workflow: str, launch_plan: str
    ) -> AttributeRow | None:
        candidates = [
            stored.value
            for owner in (project, "")  # "" : rows for every project (not made by any RPC)
            for stored in self._collection.by_index(_BY_TYPE_PROJECT, (resource_type, owner))
        ]
        return resolve(
            candidates,
            resource_type=resource_type,
            project=project,
            domain=domain,
            workflow=workflow,
            launch_plan=launch_plan,
        )

    def _resolve_or_not_found(
        self, resource_type: int, project: str, domain: str, workflow: str = ""
    ) -> AttributeRow:
        validate_resource_type(resource_type)
        row = self._resolve(resource_type, project, domain, workflow, "")
        if row is None:
            who = resource_id(resource_type, project, domain, workflow)
            raise not_found(f"Resource [{who}] not found")
        return row

    async def _upsert(self, row: AttributeRow) -> None:
        """Create or replace the row; PLUGIN_OVERRIDE merges by task type into what is stored.
        Each write is conditional on the resourceVersion it read, so no concurrent update of
        the same row is lost."""
        row = dataclasses.replace(row, attributes=_copy(row.attributes))
        name = attributes_object_name(*row.key)
        merge = row.resource_type == PLUGIN_OVERRIDE

        def change(stored: AttributeRow) -> AttributeRow:
            if not merge:
                return row
            merged = merge_plugin_overrides(stored.attributes, row.attributes)
            return dataclasses.replace(row, attributes=merged)

        exists = self._collection.get(name) is not None
        for _ in range(_UPSERT_ATTEMPTS):
            if not exists:
                try:
                    await self._collection.create(row)
                    return
                except AlreadyExists:
                    await self._collection.read_through(name)  # so mutate sees it
                    exists = True
                    continue
            try:
                await self._collection.mutate(name, change, attempts=_MUTATE_ATTEMPTS)
                return
            except NotFound:
                exists = False  # deleted meanwhile (or our cache never saw it): create
        raise Conflict(f"attributes {resource_id(*row.key)} kept changing; try again")

    async def _delete(self, key: Key) -> None:
        try:
            await self._collection.delete(attributes_object_name(*key))
        except NotFound:
            pass  # §8: deleting an absent row succeeds
