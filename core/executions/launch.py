"""Executions onto their cluster: the FlyteWorkflow object that flytepropeller runs (§5.3).

Level-triggered and idempotent, and it writes the execution only when something must be
recorded (a launch that failed, an abort nobody else will report, a wait): whether the object
exists is asked of the cluster, not remembered on the execution, so a launch costs one write
(the object), not three. The object is named after the execution in the execution's namespace;
one that already exists (another operator replica, a crash between create and anything else)
counts as created. If it cannot be created (a quota refuses it, a build error) the execution
becomes FAILED with the reason, as flyteadmin does on the launch-plan path.

Each execution's object lives in the cluster stored on it
(``system_metadata.execution_cluster``, core/clusters.py; "" is the control plane's own). When
that cluster is unavailable (core/cluster_targets.py) or not configured, the execution waits:
``resolved.waiting`` says why (a kubectl column) and a Warning Event on the Execution object
says it once per reason; once it is served the reason is cleared (a Normal Event ``Launched``
for a launch that waited).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from flyteidl.admin import execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import literals_pb2

from flyteadmin.core import crds, kube, metrics
from flyteadmin.core.cluster_targets import (
    ClusterUnavailable,
    Target,
    Targets,
    unavailable_reason,
)
from flyteadmin.core.crmap.executions import ExecutionRecord, execution_object_name
from flyteadmin.core.executions.closures import OffloadedClosures
from flyteadmin.core.flyteworkflow import crd as fw_crd
from flyteadmin.core.flyteworkflow.build import (
    FlyteWorkflowBuildError,
    FlyteWorkflowOptions,
    build_flyteworkflow,
)
from flyteadmin.core.k8s_events import Involved, post_event_async
from flyteadmin.core.namespaces import reconcile_project_namespaces
from flyteadmin.core.store import Collection, Stored
from flyteadmin.core.timestamps import now_stamp

log = logging.getLogger(__name__)
Phase = core_execution.WorkflowExecution.Phase
WAITING = "waiting"
EVENT_COMPONENT = "flyteadmin-operator"
Step = Callable[[ExecutionRecord, Target], Awaitable[None]]


def _path(namespace: str, name: str = "") -> str:
    base = f"/apis/{fw_crd.GROUP}/{fw_crd.VERSION}/namespaces/{namespace}/{fw_crd.PLURAL}"
    return f"{base}/{name}" if name else base


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT})


def cluster_of(record: ExecutionRecord) -> str:
    return record.execution.spec.metadata.system_metadata.execution_cluster


class Launcher:
    def __init__(
        self,
        backend: Any,
        *,
        retention: dt.timedelta = dt.timedelta(hours=1),
        targets: Targets | None = None,
    ) -> None:
        self.backend = backend
        settings = backend.settings.operator
        self.options = FlyteWorkflowOptions(use_offloaded_inputs=settings.use_offloaded_inputs)
        # Where each launch's closure lies in the blob store, when objects name it.
        self.closures = (
            OffloadedClosures(lambda: backend.blobs, self.options.dynamic_queue)
            if settings.use_offloaded_workflow_closure
            else None
        )
        self.retention = retention
        self.targets = targets or Targets.local(backend.api, backend.http)
        # Executions this process created (or found) the object of, and finished ones whose
        # object it deleted: they need no call to the cluster at the next resync.
        self._launched: set[str] = set()
        self._cleaned: set[str] = set()

    async def reconcile(
        self, record: ExecutionRecord, now: dt.datetime | None = None, *, resync: bool = False
    ) -> None:
        """One step towards what the execution's phase asks of its cluster. ``resync``: a
        periodic pass, where an unlaunched execution unknown to this process is first looked
        up (after a restart most of them were launched already)."""
        key = execution_object_name(record.id)
        if record.phase == Phase.ABORTING:
            await self._in_cluster(record, self.abort)
        elif record.phase == Phase.UNDEFINED:
            if key not in self._launched:
                await self._in_cluster(record, functools.partial(self.launch, check_first=resync))
        else:
            self._launched.discard(key)
            if record.resolved.get(WAITING):
                await self._mark(record, _settled)  # served meanwhile, seen from a stale copy
            if record.phase in TERMINAL and key not in self._cleaned and self._expired(record, now):
                # Retention over: the object goes (propeller's finalizer still holds it until
                # propeller lets go), as propeller's own garbage collector would do later.
                await self._in_cluster(record, self._clean_up, quiet=True)

    async def _in_cluster(self, record: ExecutionRecord, step: Step, quiet: bool = False) -> None:
        """Run ``step`` against the execution's cluster, or wait while it cannot be served."""
        name = cluster_of(record)
        target = self.targets.get(name)
        if target is None:
            message = f"execution cluster {name!r} is not configured"
            await self._wait(record, "ClusterNotConfigured", message, quiet)
            return
        if target.unavailable:
            await self._wait(record, "ClusterUnavailable", target.unavailable, quiet)
            return
        try:
            await step(record, target)
        except (kube.KubeError, ClusterUnavailable) as exc:  # not the blob store's: the cluster's
            detail = unavailable_reason(exc)
            if detail is None:
                raise
            self.targets.mark_unavailable(target, detail)
            await self._wait(record, "ClusterUnavailable", target.unavailable, quiet)

    def forget(self, keep: set[str]) -> None:
        """Drop what this process remembers of executions no longer in ``keep`` (object
        names of the live executions), so the memory follows the live set."""
        self._launched &= keep
        self._cleaned &= keep

    def _expired(self, record: ExecutionRecord, now: dt.datetime | None) -> bool:
        ended = record.execution.closure.updated_at
        if not ended.seconds:
            return False
        now = now or dt.datetime.now(dt.UTC)
        return now - ended.ToDatetime(tzinfo=dt.UTC) >= self.retention

    async def launch(
        self, record: ExecutionRecord, target: Target, *, check_first: bool = False
    ) -> None:
        namespace, name = record.resolved.get("namespace", ""), record.id.name
        key = execution_object_name(record.id)
        outcome = "created"  # metrics
        try:
            if check_first and await self._object_exists(target, namespace, name):
                self._launched.add(key)
                metrics.launched("exists")
                return
            body = await self._build(record)
            await self._create(record, target, namespace, body)
        except kube.KubeError as exc:
            if unavailable_reason(exc) is not None:
                raise  # the cluster is busy or away: the execution waits
            if exc.status != 409:
                await self._fail(record, f"cannot create the FlyteWorkflow object: {exc.message}")
                return
            outcome = "exists"
        except FlyteWorkflowBuildError as exc:
            await self._fail(record, f"cannot build the FlyteWorkflow object: {exc}")
            return
        self._launched.add(key)
        metrics.launched(outcome, record.execution.closure.created_at.ToDatetime(tzinfo=dt.UTC))
        log.info("created FlyteWorkflow %s/%s in %s", namespace, name, target.describe())
        if record.resolved.get(WAITING):
            stored = await self._mark(record, _settled)
            await self._event(stored, False, "Launched", f"launched in {target.describe()}")

    async def _create(
        self, record: ExecutionRecord, target: Target, namespace: str, body: dict[str, Any]
    ) -> None:
        """POST the object. A 404 is a namespace not made there yet (a cluster that was away
        when the project was created, or the namespace handler still running): it is made
        and the POST repeated once; a cluster without the FlyteWorkflow kind is unavailable."""
        try:
            await target.http.send("POST", _path(namespace), body)
            return
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
        problem = await self.targets.check(target)
        if problem:
            raise ClusterUnavailable(problem)
        project = self.backend.projects.get(record.id.project)
        try:
            await reconcile_project_namespaces(
                target.http,
                project,
                [record.id.domain],
                self.backend.settings.operator.namespace_template,
            )
        except Exception as exc:  # unavailable, or raised
            detail = unavailable_reason(exc)
            if detail is None:
                raise
            raise ClusterUnavailable(detail) from exc
        await target.http.send("POST", _path(namespace), body)

    async def _object_exists(self, target: Target, namespace: str, name: str) -> bool:
        try:
            await target.http.request("GET", _path(namespace, name))
        except kube.KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def abort(self, record: ExecutionRecord, target: Target) -> None:
        """TerminateExecution: delete the object; propeller aborts the run and reports ABORTED.
        When there is no object (terminated before its launch, or already gone), nothing will
        ever report it, so ABORTED is recorded here."""
        if not await self.delete_object(record, target):
            await self._mark(record, _aborted)
        elif record.resolved.get(WAITING):
            await self._mark(record, _settled)

    async def _clean_up(self, record: ExecutionRecord, target: Target) -> None:
        await self.delete_object(record, target)
        self._cleaned.add(execution_object_name(record.id))

    async def delete_object(self, record: ExecutionRecord, target: Target | None = None) -> bool:
        """Delete the execution's object (background propagation) in ``target`` (default: the
        execution's cluster); False if there was none. Raises ClusterUnavailable when that
        cluster cannot be asked (the archiver logs it; propeller's own clean-up remains)."""
        if target is None:
            target = self.targets.get(cluster_of(record))
            if target is None or target.unavailable:
                reason = target.unavailable if target else f"{cluster_of(record)!r} not configured"
                raise ClusterUnavailable(reason)
        namespace, name = record.resolved.get("namespace", ""), record.id.name
        self._launched.discard(execution_object_name(record.id))
        try:
            await target.http.request(
                "DELETE", _path(namespace, name), {"propagationPolicy": "Background"}
            )
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
            return False
        return True

    async def _build(self, record: ExecutionRecord) -> dict[str, Any]:
        workflow = await self.backend.workflows.get_full(record.workflow_id)
        compiled = workflow.closure.compiled_workflow
        options = self.options
        if self.closures is not None:
            reference = await self.closures.reference(record, compiled)
            options = replace(options, workflow_closure_reference=reference)
        inputs = None  # offloaded: propeller reads them by name
        if not options.use_offloaded_inputs:
            data = await self.backend.blobs.get(record.inputs_uri) if record.inputs_uri else b""
            inputs = literals_pb2.LiteralMap.FromString(data)
        accepted = record.execution.closure.created_at.ToDatetime(tzinfo=dt.UTC)
        return build_flyteworkflow(record, compiled, inputs, accepted_at=accepted, options=options)

    async def _fail(self, record: ExecutionRecord, message: str) -> None:
        log.warning("execution %s failed to launch: %s", record.id.name, message)

        def failed(value: ExecutionRecord) -> ExecutionRecord:
            if value.phase != Phase.UNDEFINED:
                return value
            execution = execution_pb2.Execution()
            execution.CopyFrom(value.execution)
            execution.closure.phase = Phase.FAILED
            execution.closure.error.code = "LaunchFailed"
            execution.closure.error.kind = core_execution.ExecutionError.SYSTEM
            execution.closure.error.message = message
            execution.closure.updated_at.CopyFrom(now_stamp())
            return replace(_settled(value), execution=execution)

        stored = await self._mark(record, failed)
        metrics.launched("failed")
        # `kubectl describe executions <name>` says why (the execution's error says it too).
        await self._event(stored, True, "LaunchFailed", message)

    async def _wait(self, record: ExecutionRecord, reason: str, message: str, quiet: bool) -> None:
        """The execution cannot be served now: say why on it, once per message. ``quiet``
        (a finished execution's clean-up) only waits for the next resync."""
        if quiet or record.resolved.get(WAITING) == message:
            return
        log.warning("execution %s waits: %s", record.id.name, message)

        def waiting(value: ExecutionRecord) -> ExecutionRecord:
            if value.phase != record.phase:
                return value  # moved on meanwhile (propeller, or the other reconcile path)
            return replace(value, resolved={**value.resolved, WAITING: message})

        stored = await self._mark(record, waiting)
        await self._event(stored, True, reason, message)

    async def _event(
        self, stored: Stored[ExecutionRecord], warning: bool, reason: str, message: str
    ) -> None:
        """A Kubernetes Event on the Execution object (``kubectl describe executions ...``)."""
        involved = Involved(
            crds.EXECUTION.api_version,
            crds.EXECUTION.kind,
            stored.name,
            self.backend.settings.kubernetes.namespace,
            stored.uid,
        )
        try:
            await post_event_async(
                self.backend.http,
                involved,
                warning=warning,
                reason=reason,
                message=message,
                component=EVENT_COMPONENT,
            )
        except kube.KubeError as exc:  # the state is on the record; the Event is a courtesy
            log.warning("cannot post an Event on execution %s: %s", stored.name, exc.message)

    async def _mark(
        self, record: ExecutionRecord, change: Callable[[ExecutionRecord], ExecutionRecord]
    ) -> Stored[ExecutionRecord]:
        records: Collection[ExecutionRecord] = self.backend.execution_records
        return await records.mutate(execution_object_name(record.id), change)


def _settled(value: ExecutionRecord) -> ExecutionRecord:
    """``value`` without a waiting reason."""
    if WAITING not in value.resolved:
        return value
    return replace(value, resolved={k: v for k, v in value.resolved.items() if k != WAITING})


def _aborted(value: ExecutionRecord) -> ExecutionRecord:
    if value.phase != Phase.ABORTING:
        return value  # propeller reported meanwhile
    execution = execution_pb2.Execution()
    execution.CopyFrom(value.execution)
    execution.closure.phase = Phase.ABORTED
    execution.closure.updated_at.CopyFrom(now_stamp())
    return replace(_settled(value), execution=execution)
