"""Executions onto the cluster: the FlyteWorkflow object that flytepropeller runs (§5.3).

Level-triggered and idempotent, and it writes the execution only when something must be
recorded (a launch that failed, an abort nobody else will report): whether the object exists is
asked of the cluster, not remembered on the execution, so a launch costs one write (the object),
not three. The object is named after the execution in the execution's namespace; one that already
exists (another operator replica, a crash between create and anything else) counts as created.
If it cannot be created (no namespace, a quota refuses it, a build error) the execution becomes
FAILED with the reason, as flyteadmin does on the launch-plan path.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from typing import Any

from flyteidl.admin import execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import literals_pb2

from flyteadmin.core import kube
from flyteadmin.core.crmap.executions import ExecutionRecord, execution_object_name
from flyteadmin.core.flyteworkflow import crd as fw_crd
from flyteadmin.core.flyteworkflow.build import (
    FlyteWorkflowBuildError,
    FlyteWorkflowOptions,
    build_flyteworkflow,
)
from flyteadmin.core.timestamps import now_stamp

log = logging.getLogger(__name__)
Phase = core_execution.WorkflowExecution.Phase


def _path(namespace: str, name: str = "") -> str:
    base = f"/apis/{fw_crd.GROUP}/{fw_crd.VERSION}/namespaces/{namespace}/{fw_crd.PLURAL}"
    return f"{base}/{name}" if name else base


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT})


class Launcher:
    def __init__(
        self,
        backend: Any,
        options: FlyteWorkflowOptions | None = None,
        *,
        retention: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        self.backend = backend
        self.options = options or FlyteWorkflowOptions()
        self.retention = retention
        # Executions this process created (or found) the object of, and finished ones whose
        # object it deleted: they need no call to the cluster at the next resync.
        self._launched: set[str] = set()
        self._cleaned: set[str] = set()

    async def reconcile(
        self, record: ExecutionRecord, now: dt.datetime | None = None, *, resync: bool = False
    ) -> None:
        """One step towards what the execution's phase asks of the cluster. ``resync``: a
        periodic pass, where an unlaunched execution unknown to this process is first looked
        up (after a restart most of them were launched already)."""
        key = execution_object_name(record.id)
        if record.phase == Phase.ABORTING:
            await self.abort(record)
        elif record.phase == Phase.UNDEFINED:
            if key not in self._launched:
                await self.launch(record, check_first=resync)
        else:
            self._launched.discard(key)
            if record.phase in TERMINAL and key not in self._cleaned and self._expired(record, now):
                # Retention over: the object goes (propeller's finalizer still holds it until
                # propeller lets go), as propeller's own garbage collector would do later.
                await self.delete_object(record)
                self._cleaned.add(key)

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

    async def launch(self, record: ExecutionRecord, *, check_first: bool = False) -> None:
        namespace, name = record.resolved.get("namespace", ""), record.id.name
        key = execution_object_name(record.id)
        try:
            if check_first and await self._object_exists(namespace, name):
                self._launched.add(key)
                return
            body = await self._build(record)
            await self.backend.http.request("POST", _path(namespace), body)
        except kube.KubeError as exc:
            if _transient(exc):
                raise  # the cluster is busy or away: the next resync tries again
            if exc.status != 409:
                await self._fail(record, f"cannot create the FlyteWorkflow object: {exc.message}")
                return
        except FlyteWorkflowBuildError as exc:
            await self._fail(record, f"cannot build the FlyteWorkflow object: {exc}")
            return
        self._launched.add(key)
        log.info("created FlyteWorkflow %s/%s", namespace, name)

    async def _object_exists(self, namespace: str, name: str) -> bool:
        try:
            await self.backend.http.request("GET", _path(namespace, name))
        except kube.KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def abort(self, record: ExecutionRecord) -> None:
        """TerminateExecution: delete the object; propeller aborts the run and reports ABORTED.
        When there is no object (terminated before its launch, or already gone), nothing will
        ever report it, so ABORTED is recorded here."""
        if not await self.delete_object(record):
            await self._mark(record, _aborted)

    async def delete_object(self, record: ExecutionRecord) -> bool:
        """Delete the execution's object (background propagation); False if there was none."""
        namespace, name = record.resolved.get("namespace", ""), record.id.name
        self._launched.discard(execution_object_name(record.id))
        try:
            await self.backend.http.request(
                "DELETE", _path(namespace, name), {"propagationPolicy": "Background"}
            )
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
            return False
        return True

    async def _build(self, record: ExecutionRecord) -> dict[str, Any]:
        workflow = await self.backend.workflows.get_full(record.workflow_id)
        data = await self.backend.blobs.get(record.inputs_uri) if record.inputs_uri else b""
        inputs = literals_pb2.LiteralMap.FromString(data)
        accepted = record.execution.closure.created_at.ToDatetime(tzinfo=dt.UTC)
        return build_flyteworkflow(
            record,
            workflow.closure.compiled_workflow,
            inputs,
            accepted_at=accepted,
            options=self.options,
        )

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
            return replace(value, execution=execution)

        await self._mark(record, failed)

    async def _mark(self, record: ExecutionRecord, change) -> None:
        await self.backend.execution_records.mutate(execution_object_name(record.id), change)


def _transient(exc: kube.KubeError) -> bool:
    """No answer, throttled, or a server-side failure: worth retrying, not a reason to fail."""
    return exc.status == 0 or exc.status == 429 or exc.status >= 500


def _aborted(value: ExecutionRecord) -> ExecutionRecord:
    if value.phase != Phase.ABORTING:
        return value  # propeller reported meanwhile
    execution = execution_pb2.Execution()
    execution.CopyFrom(value.execution)
    execution.closure.phase = Phase.ABORTED
    execution.closure.updated_at.CopyFrom(now_stamp())
    return replace(value, execution=execution)
