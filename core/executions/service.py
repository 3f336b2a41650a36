"""Executions (§5): CreateExecution from a launch plan or a single task, Get, List, Update
(archive), Terminate. What the operator does with a new execution is its own issue; here the
execution is stored with everything it will need (resolved configuration, inputs URIs)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import replace
from functools import partial
from typing import Any

from flyteidl.admin import common_pb2, execution_pb2, launch_plan_pb2
from flyteidl.admin import matchable_resource_pb2 as mr_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2, literals_pb2

from flyteadmin.core import listing, wire
from flyteadmin.core.attributes import Attributes, merge_workflow_execution_config
from flyteadmin.core.blobstore import BlobStore, read_referenced
from flyteadmin.core.clusters import ClusterChooser
from flyteadmin.core.config import Settings
from flyteadmin.core.crmap.executions import (
    ExecutionRecord,
    execution_object_name,
)
from flyteadmin.core.crmap.protojson import to_json
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import (
    AdminError,
    Code,
    already_exists,
    failed_precondition,
    invalid_argument,
    missing,
    not_found,
)
from flyteadmin.core.executions.history import ExecutionHistory
from flyteadmin.core.executions.inputs import merge_inputs
from flyteadmin.core.executions.listing import (
    CREATED_COLUMNS,
    created_order,
    execution_schema,
    phase_name,
    state_filter_given,
)
from flyteadmin.core.executions.single_task import ensure_task_launch_plan
from flyteadmin.core.namespaces import namespace_for
from flyteadmin.core.notifications.validation import validate_notifications
from flyteadmin.core.projects import Projects
from flyteadmin.core.registration.entities import sort_args
from flyteadmin.core.registration.launch_plans import LaunchPlans
from flyteadmin.core.registration.tasks import Tasks
from flyteadmin.core.registration.workflows import Workflows
from flyteadmin.core.store import AlreadyExists, Collection, Stored
from flyteadmin.core.timestamps import now_stamp
from flyteadmin.core.validation.labels import validate_labels
from flyteadmin.core.validation.launch_plans import validate_fixed_inputs

Phase = core_execution.WorkflowExecution.Phase
State = execution_pb2.ExecutionState
RT = identifier_pb2.ResourceType
MR = mr_pb2.MatchableResource
TERMINAL = {Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT}
_NAME = re.compile(r"^[a-z][a-z\-0-9]*$")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.String's alphabet, as flyteadmin
Record = Stored[ExecutionRecord]


def generate_name() -> str:
    """flyteadmin's form: "a" and 19 characters, 20 in all."""
    return "a" + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(19))


def _describe(ident: identifier_pb2.WorkflowExecutionIdentifier) -> str:
    return f"project:{ident.project} domain:{ident.domain} name:{ident.name}"


class Executions:
    def __init__(
        self,
        records: Collection[ExecutionRecord],
        *,
        settings: Settings,
        projects: Projects,
        tasks: Tasks,
        workflows: Workflows,
        launch_plans: LaunchPlans,
        attributes: Attributes,
        blobs: Any,
    ) -> None:
        self.records = records
        self.settings = settings
        self.projects = projects
        self.tasks = tasks
        self.workflows = workflows
        self.launch_plans = launch_plans
        self.attributes = attributes
        self._blobs = blobs
        self._in_flight: dict[str, asyncio.Future[identifier_pb2.WorkflowExecutionIdentifier]] = {}
        # Archived executions (core/executions/history.py); set by the Backend.
        self.history: ExecutionHistory | None = None
        self.schema = execution_schema(launch_plans, workflows, tasks)
        self.clusters = ClusterChooser(settings.execution_clusters, attributes, records)
        records.add_index("pd", lambda r: [(r.id.project, r.id.domain)])
        # ListExecutions narrows by these before filtering (listing.narrow).
        records.add_index("pd-phase", lambda r: [(r.id.project, r.id.domain, phase_name(r.phase))])
        records.add_index("pd-state", lambda r: [(r.id.project, r.id.domain, r.state)])
        records.add_sorted_index("pd-created", created_order)
        records.add_index("digest", lambda r: [r.request_digest] if r.request_digest else [])
        records.add_index(
            "lp-name",
            lambda r: [(r.launch_plan_id.project, r.launch_plan_id.domain, r.launch_plan_id.name)],
        )

    # ----------------------------------------------------------------------------- create

    async def create(
        self,
        request: execution_pb2.ExecutionCreateRequest,
        principal: str = "",
        source: identifier_pb2.WorkflowExecutionIdentifier | None = None,
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        """Create an execution. With ``executions.retry_dedupe_seconds`` set (opt-in),
        identical unnamed requests in flight at once (a client's immediate retries) share one
        attempt and its answer."""
        if request.name or self.settings.executions.retry_dedupe_seconds <= 0:
            return await self._create(request, principal, source)
        key = _request_digest(request, principal)
        running = self._in_flight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        attempt = asyncio.ensure_future(self._create(request, principal, source))
        self._in_flight[key] = attempt
        try:
            return await asyncio.shield(attempt)
        finally:
            if attempt.done():
                self._in_flight.pop(key, None)
            else:  # this caller was cancelled: let the attempt finish for the others
                attempt.add_done_callback(lambda _: self._in_flight.pop(key, None))

    async def _create(
        self,
        request: execution_pb2.ExecutionCreateRequest,
        principal: str,
        source: identifier_pb2.WorkflowExecutionIdentifier | None,
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        user_inputs = request.inputs if request.inputs.literals else request.spec.inputs
        self._validate(request, user_inputs)
        ref = request.spec.launch_plan
        lp_record: Stored[Registered[Any]] | None
        if ref.resource_type == RT.TASK:
            lp_record = await ensure_task_launch_plan(self, ref, request)
        else:
            lp_record = self.launch_plans.exact(ref)
            if lp_record is None:
                raise not_found(f"missing entity of type LAUNCH_PLAN with identifier {ref}")
        lp = lp_record.value.message
        workflow = self.workflows.find(lp.spec.workflow_id)
        if workflow is None:
            raise not_found(
                f"missing entity of type WORKFLOW with identifier {lp.spec.workflow_id}"
            )
        inputs = merge_inputs(user_inputs, lp.closure.expected_inputs, lp.spec.fixed_inputs)
        self._check_concurrency(lp)

        digest = _request_digest(request, principal)
        if not request.name and self.settings.executions.retry_dedupe_seconds > 0:
            retried = self._recent_with_digest(digest)
            if retried is not None:
                return retried.value.id  # a client's retry of a create that did succeed
        name = request.name or self._name_for(digest)
        ident = identifier_pb2.WorkflowExecutionIdentifier(
            project=request.project, domain=request.domain, name=name
        )
        if self.records.get(execution_object_name(ident)) is not None or (
            request.name and await self._archived(ident) is not None
        ):
            raise already_exists(f"execution [{_describe(ident)}] already exists")
        spec, resolved = self._resolve(request, lp, workflow.value.id.name, principal)
        resolved.update(self.clusters.place(spec, ident, workflow.value.id.name, lp.id.name))
        if source is not None:
            resolved["sourceExecution"] = {
                "project": source.project,
                "domain": source.domain,
                "name": source.name,
            }
            if spec.metadata.mode == execution_pb2.ExecutionMetadata.RECOVERED:
                resolved["recoveryExecution"] = resolved["sourceExecution"]
        inputs_uri, user_inputs_uri = await self._write_inputs(ident, inputs, user_inputs)
        now = now_stamp()
        execution = execution_pb2.Execution(
            id=ident,
            spec=spec,
            closure=execution_pb2.ExecutionClosure(
                phase=Phase.UNDEFINED,
                created_at=now,
                updated_at=now,
                workflow_id=workflow.value.id,
                notifications=_notifications(request.spec, lp.spec),
                state_change_details=execution_pb2.ExecutionStateChangeDetails(
                    state=State.EXECUTION_ACTIVE, occurred_at=now, principal=principal
                ),
            ),
        )
        record = ExecutionRecord(
            execution=execution,
            launch_plan_id=lp.id,
            workflow_id=workflow.value.id,
            task_id=ref if ref.resource_type == RT.TASK else None,
            inputs_uri=inputs_uri,
            user_inputs_uri=user_inputs_uri,
            request_digest=digest,
            resolved=resolved,
        )
        try:
            await self.records.create(record)
        except AlreadyExists:
            existing = await self.records.read_through(execution_object_name(ident))
            if not request.name and existing and existing.value.request_digest == digest:
                return existing.value.id  # a concurrent retry got there first
            raise already_exists(f"execution [{_describe(ident)}] already exists") from None
        return ident

    def _name_for(self, digest: str) -> str:
        """A generated name. Within one dedupe window the same request gets the same name, so
        retries racing each other (even on other replicas) collide on the object name and
        resolve to one execution; outside a window, or with dedupe off, it is random."""
        window = self.settings.executions.retry_dedupe_seconds
        if window <= 0:
            return generate_name()
        bucket = int(dt.datetime.now(dt.UTC).timestamp() // window)
        seed = hashlib.sha256(f"{digest}:{bucket}".encode()).digest()
        return "a" + "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in seed[:19])

    async def relaunch(
        self,
        source: identifier_pb2.WorkflowExecutionIdentifier,
        *,
        name: str = "",
        principal: str = "",
        mode: execution_pb2.ExecutionMetadata.ExecutionMode = (
            execution_pb2.ExecutionMetadata.RELAUNCH
        ),
        overwrite_cache: bool = False,
        parent_metadata: execution_pb2.ExecutionMetadata | None = None,
    ) -> identifier_pb2.WorkflowExecutionIdentifier:
        """RelaunchExecution and RecoverExecution (§5.6): the original's stored spec (with its
        resolved configuration) and user inputs, through the whole create flow again."""
        original = (await self.lookup(source)).value
        spec = execution_pb2.ExecutionSpec()
        spec.CopyFrom(original.execution.spec)
        spec.metadata.mode = mode
        spec.metadata.reference_execution.CopyFrom(original.id)
        spec.metadata.ClearField("system_metadata")
        if mode == execution_pb2.ExecutionMetadata.RECOVERED:
            if parent_metadata is not None and parent_metadata.HasField("parent_node_execution"):
                spec.metadata.parent_node_execution.CopyFrom(parent_metadata.parent_node_execution)
        else:
            spec.overwrite_cache = overwrite_cache
        inputs = await self._read_literals(original.user_inputs_uri, 1 << 62)
        request = execution_pb2.ExecutionCreateRequest(
            project=source.project,
            domain=source.domain,
            name=name,
            spec=spec,
            inputs=inputs or literals_pb2.LiteralMap(),
        )
        return await self.create(request, principal=principal, source=original.id)

    def _validate(
        self, request: execution_pb2.ExecutionCreateRequest, inputs: literals_pb2.LiteralMap
    ) -> None:
        if not request.project:
            raise missing("project")
        if not request.domain:
            raise missing("domain")
        if request.name:
            if len(request.name) > 63 or not _NAME.match(request.name):
                # flyteadmin lower-cased before checking and then failed on the k8s object
                # (§15 #3); upper case is refused here.
                raise invalid_argument(
                    f"invalid name {request.name!r}: must match ^[a-z][a-z\\-0-9]*$ and have "
                    "at most 63 characters"
                )
        self.projects.check_project_domain(request.project, request.domain)
        if not request.HasField("spec"):
            raise missing("spec")
        ref = request.spec.launch_plan
        for field in ("project", "domain", "name", "version"):
            if not getattr(ref, field):
                raise missing(field)
        if ref.resource_type not in (RT.LAUNCH_PLAN, RT.TASK):
            raise invalid_argument("Invalid reference entity resource type")
        validate_fixed_inputs(inputs)
        validate_notifications(request.spec.notifications.notifications)
        validate_labels(request.spec.labels.values)

    def _check_concurrency(self, lp: launch_plan_pb2.LaunchPlan) -> None:
        policy = lp.spec.concurrency_policy
        if not lp.spec.HasField("concurrency_policy") or policy.max <= 0:
            return
        running = [
            r
            for r in self.records.by_index("lp-name", (lp.id.project, lp.id.domain, lp.id.name))
            if r.value.phase in (Phase.QUEUED, Phase.RUNNING, Phase.UNDEFINED)
        ]
        if len(running) >= policy.max:
            # flyteadmin skips only for SKIP and answered Internal otherwise (§15 #14).
            raise already_exists(
                f"concurrency limit ({policy.max}) reached for launch plan {lp.id.name}; "
                "skipping execution"
            )

    def _recent_with_digest(self, digest: str) -> Record | None:
        window = dt.timedelta(seconds=self.settings.executions.retry_dedupe_seconds)
        now = dt.datetime.now(dt.UTC)
        for record in self.records.by_index("digest", digest):
            if now - record.created_at <= window:
                return record
        return None

    def _resolve(
        self,
        request: execution_pb2.ExecutionCreateRequest,
        lp: launch_plan_pb2.LaunchPlan,
        workflow_name: str,
        principal: str,
    ) -> tuple[execution_pb2.ExecutionSpec, dict[str, Any]]:
        """§5.2: the execution spec with the merged configuration, and what the operator needs."""
        p, d = request.project, request.domain
        spec = execution_pb2.ExecutionSpec()
        spec.CopyFrom(request.spec)
        spec.ClearField("inputs")
        by_workflow = self.attributes.effective(MR.WORKFLOW_EXECUTION_CONFIG, p, d, workflow_name)
        by_project = self.attributes.effective(MR.WORKFLOW_EXECUTION_CONFIG, p, "")
        merged = merge_workflow_execution_config(
            request.spec,
            lp.spec,
            by_workflow.workflow_execution_config if by_workflow else None,
            by_project.workflow_execution_config if by_project else None,
            self.attributes.execution_defaults(),
        )
        spec.max_parallelism = merged.max_parallelism
        spec.security_context.CopyFrom(merged.security_context)
        if not spec.security_context.run_as.execution_identity:
            spec.security_context.run_as.execution_identity = principal
        spec.raw_output_data_config.CopyFrom(merged.raw_output_data_config)
        spec.labels.CopyFrom(merged.labels)
        for key, value in self.projects.get(p).labels.values.items():
            spec.labels.values.setdefault(key, value)
        spec.annotations.CopyFrom(merged.annotations)
        if merged.HasField("interruptible"):
            spec.interruptible.CopyFrom(merged.interruptible)
        spec.overwrite_cache = merged.overwrite_cache
        spec.envs.CopyFrom(merged.envs)
        spec.metadata.principal = principal
        if not spec.metadata.mode:
            spec.metadata.mode = execution_pb2.ExecutionMetadata.MANUAL
        namespace = namespace_for(self.settings.operator.namespace_template, p, d)
        spec.metadata.system_metadata.namespace = namespace
        limits = self.attributes.effective(MR.TASK_RESOURCE, p, d, workflow_name)
        overrides = self.attributes.effective(MR.PLUGIN_OVERRIDE, p, d, workflow_name, lp.id.name)
        queue = self.attributes.effective(MR.EXECUTION_QUEUE, p, d, workflow_name)
        resolved = {
            "namespace": namespace,
            "taskResources": _task_resources(self.settings, limits),
            "pluginOverrides": to_json(overrides.plugin_overrides) if overrides else {},
            "executionQueue": to_json(queue.execution_queue_attributes) if queue else {},
        }
        return spec, resolved

    async def _write_inputs(
        self,
        ident: identifier_pb2.WorkflowExecutionIdentifier,
        inputs: literals_pb2.LiteralMap,
        user_inputs: literals_pb2.LiteralMap,
    ) -> tuple[str, str]:
        """Inputs go to the blob store, under a folder of this create attempt: a failed or
        duplicate create never overwrites another execution's inputs (§15 #11). When the caller
        gave every input (no default filled in), both are the same bytes: one blob is written
        and both URIs name it (one write fewer per execution; reads cannot tell)."""
        attempt = uuid.uuid4().hex[:12]
        blobs: BlobStore = self._blobs()
        base = (ident.project, ident.domain, ident.name, attempt)
        inputs_uri = blobs.uri_for(*base, "inputs")
        data = inputs.SerializeToString(deterministic=True)
        user_data = user_inputs.SerializeToString(deterministic=True)
        if user_data == data:
            await blobs.put(inputs_uri, data)
            return inputs_uri, inputs_uri
        user_uri = blobs.uri_for(*base, "user_inputs")
        await asyncio.gather(blobs.put(inputs_uri, data), blobs.put(user_uri, user_data))
        return inputs_uri, user_uri

    # ----------------------------------------------------------------------------- reads

    def find(self, ident: identifier_pb2.WorkflowExecutionIdentifier) -> Record:
        for field in ("project", "domain", "name"):
            if not getattr(ident, field):
                raise missing(field)
        record = self.records.get(execution_object_name(ident))
        if record is None or (
            record.value.id.project,
            record.value.id.domain,
            record.value.id.name,
        ) != (
            ident.project,
            ident.domain,
            ident.name,
        ):
            raise not_found(f"missing entity of type execution with identifier {_describe(ident)}")
        return record

    async def lookup(self, ident: identifier_pb2.WorkflowExecutionIdentifier) -> Record:
        """The execution, live or archived (an archived one has resource_version 0)."""
        try:
            return self.find(ident)
        except AdminError as error:
            if error.code != Code.NOT_FOUND:
                raise
            archived = await self._archived(ident)
            if archived is None:
                raise
            return archived

    async def _archived(self, ident: identifier_pb2.WorkflowExecutionIdentifier) -> Record | None:
        if self.history is None:
            return None
        return await self.history.execution((ident.project, ident.domain, ident.name))

    async def get(
        self, ident: identifier_pb2.WorkflowExecutionIdentifier
    ) -> execution_pb2.Execution:
        return (await self.lookup(ident)).value.execution

    async def list(
        self, request: common_pb2.ResourceListRequest
    ) -> wire.Encoded[execution_pb2.ExecutionList]:
        ident = request.id
        if not ident.project:
            raise missing("project")
        if not ident.domain:
            raise missing("domain")
        sort_key, ascending = sort_args(request)
        implicit = []
        if ident.name:
            implicit.append(listing.eq_filter(self.schema, "name", ident.name))
        query = listing.parse_list_request(
            self.schema,
            filters=request.filters,
            sort_key=sort_key,
            ascending=ascending,
            token=request.token,
            limit=request.limit,
            rpc="ListExecutions",
            implicit=implicit,
        )
        if not state_filter_given(query):
            # Archived executions are hidden unless a filter names the state (§5.7).
            query = query.with_filters(listing.eq_filter(self.schema, "state", "0"))
        page = await self._merged_page(query, (ident.project, ident.domain))
        return _LIST.page(
            [_LIST.kept(r.memo, partial(_listed, r.value.execution)) for r in page.items],
            page.next_token,
        )

    async def _merged_page(
        self, query: listing.ListQuery, pd: tuple[str, str]
    ) -> listing.Page[Record]:
        """Live and archived executions as one list: the first ``offset + limit`` rows of
        each, in the query's order, merged; then the page. Executions being archived (marked)
        are counted on the history side only."""
        if self.history is None:
            return self._page(query, pd)
        head = dataclasses.replace(query, offset=0, limit=query.offset + query.limit)
        live = [r for r in self._page(head, pd).items if not r.value.archived_in]
        archived = [
            r
            for r in await self.history.first_rows(head, *pd)
            # Written to history but not marked yet (an archiver interrupted in between): the
            # live object counts, once.
            if (live_copy := self.records.get(r.name)) is None or live_copy.value.archived_in
        ]
        if not archived:  # the live rows are filtered and in order already
            return listing.cut(query, live)
        return listing.evaluate(query, live + archived)

    def _page(self, query: listing.ListQuery, pd: tuple[str, str]) -> listing.Page[Record]:
        """The cheaper of two plans, when the list is sorted by creation time (the default):
        read the newest-first sorted index until the page is full (about ``wanted * total /
        matching`` rows), or sort the rows a selective filter's index gives (phase, state).
        Other sorts filter and sort those rows (or the whole project-domain)."""
        indexes = {"phase": "pd-phase", "state": "pd-state"}
        counts = {
            column: (lambda value, index=index: self.records.index_count(index, (*pd, value)))
            for column, index in indexes.items()
        }
        best = listing.narrow(query, counts)
        if query.sort is not None and query.sort.key in CREATED_COLUMNS:
            wanted = query.offset + query.limit
            total = self.records.sorted_count("pd-created", pd)
            # A scan reads ~wanted * total / matches rows; sorting the candidates costs a few
            # times their number.
            if best is None or wanted * total < 3 * best[1] ** 2:
                rows = self.records.in_order("pd-created", pd, not query.sort.ascending)
                return listing.scan_in_order(query, rows)
        if best is None:
            return listing.evaluate(query, self.records.by_index("pd", pd))
        chosen = best[0]
        candidates = [
            r
            for value in set(chosen.values)
            for r in self.records.by_index(indexes[chosen.field], (*pd, value))
        ]
        return listing.evaluate(query, candidates)

    async def get_data(
        self, ident: identifier_pb2.WorkflowExecutionIdentifier
    ) -> execution_pb2.WorkflowExecutionGetDataResponse:
        """Inputs from the blob store; outputs from the closure (a URI or inline data). Data
        larger than ``max_inline_data_bytes`` is not inlined (§5.7)."""
        record = (await self.lookup(ident)).value
        response = execution_pb2.WorkflowExecutionGetDataResponse()
        limit = self.settings.executions.max_inline_data_bytes
        inputs = await self._read_literals(record.inputs_uri, limit)
        if inputs is not None:
            response.full_inputs.CopyFrom(inputs)
        closure = record.execution.closure
        if closure.HasField("output_data"):
            if closure.output_data.ByteSize() <= limit:
                response.full_outputs.CopyFrom(closure.output_data)
        elif closure.outputs.uri:
            outputs = await self._read_literals(closure.outputs.uri, limit)
            if outputs is not None:
                response.full_outputs.CopyFrom(outputs)
        return response

    async def _read_literals(self, uri: str, limit: int) -> literals_pb2.LiteralMap | None:
        if not uri:
            return None
        data = await read_referenced(self._blobs(), uri)
        if len(data) > limit:
            return None
        return literals_pb2.LiteralMap.FromString(data)

    # ----------------------------------------------------------------------------- updates

    async def update(
        self, request: execution_pb2.ExecutionUpdateRequest, principal: str = ""
    ) -> None:
        record = await self.lookup(request.id)
        if request.state not in State.values():
            raise invalid_argument(f"invalid value for state: {request.state}")

        def change(value: ExecutionRecord) -> ExecutionRecord:
            execution = execution_pb2.Execution()
            execution.CopyFrom(value.execution)
            execution.closure.state_change_details.CopyFrom(
                execution_pb2.ExecutionStateChangeDetails(
                    state=request.state, occurred_at=now_stamp(), principal=principal
                )
            )
            return replace(value, execution=execution)

        if record.resource_version and not record.value.archived_in:
            await self.records.mutate(record.name, change)
            return
        # Archived (or being archived): a newer version of its history row; a live object
        # that is about to go changes too, so reads agree until it is gone.
        assert self.history is not None
        await self.history.supersede(replace(change(record.value), archived_in=()))
        if record.resource_version:
            await self.records.mutate(record.name, change)

    async def terminate(
        self, request: execution_pb2.ExecutionTerminateRequest, principal: str = ""
    ) -> None:
        record = await self.lookup(request.id)

        def change(value: ExecutionRecord) -> ExecutionRecord:
            if value.phase in TERMINAL:
                from flyteidl.admin import event_pb2

                raise failed_precondition(
                    "Cannot abort an already terminated workflow execution",
                    event_pb2.EventFailureReason(
                        already_in_terminal_state=event_pb2.EventErrorAlreadyInTerminalState(
                            current_phase=Phase.Name(value.phase)
                        )
                    ),
                )
            execution = execution_pb2.Execution()
            execution.CopyFrom(value.execution)
            execution.closure.phase = Phase.ABORTING
            execution.closure.abort_metadata.CopyFrom(
                execution_pb2.AbortMetadata(cause=request.cause, principal=principal)
            )
            execution.closure.updated_at.CopyFrom(now_stamp())
            return replace(value, execution=execution)

        if not record.resource_version:
            change(record.value)  # archived: it has ended, so this refuses
        await self.records.mutate(record.name, change)


def _request_digest(request: execution_pb2.ExecutionCreateRequest, principal: str) -> str:
    payload = request.SerializeToString(deterministic=True) + b"\0" + principal.encode()
    return hashlib.sha256(payload).hexdigest()[:32]


def _notifications(
    request_spec: execution_pb2.ExecutionSpec, lp_spec: launch_plan_pb2.LaunchPlanSpec
) -> list[common_pb2.Notification]:
    if request_spec.HasField("notifications") and request_spec.notifications.notifications:
        return list(request_spec.notifications.notifications)
    if request_spec.disable_all:
        return []
    return list(lp_spec.entity_metadata.notifications)


def _task_resources(
    settings: Settings, attribute: mr_pb2.MatchingAttributes | None
) -> dict[str, Any]:
    """The platform defaults and limits the operator completes task resources with (§5.2)."""
    config = settings.task_resources
    out = {
        "defaults": {k: v for k, v in vars(config.defaults).items() if v},
        "limits": {k: v for k, v in vars(config.limits).items() if v},
    }
    if attribute is not None:
        attrs = attribute.task_resource_attributes
        for section in ("defaults", "limits"):
            spec = getattr(attrs, section)
            for key in ("cpu", "memory", "gpu", "ephemeral_storage"):
                if getattr(spec, key):
                    out[section][key] = getattr(spec, key)
    return out


_LIST = wire.ListShape(execution_pb2.ExecutionList, "executions")


def _listed(execution: execution_pb2.Execution) -> execution_pb2.Execution:
    """ListExecutions: no inputs, error messages trimmed to 100 bytes (§5.7)."""
    out = execution_pb2.Execution()
    out.CopyFrom(execution)
    out.spec.ClearField("inputs")
    out.closure.ClearField("computed_inputs")
    if out.closure.HasField("error"):
        out.closure.error.message = out.closure.error.message.encode()[:100].decode(errors="ignore")
    return out
