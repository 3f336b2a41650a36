"""Executions onto the cluster: the FlyteWorkflow object that flytepropeller runs (§5.3).

Level-triggered and idempotent: ``launch`` does nothing for an execution that already names its
object (``resolved.workflowObject``) or has left UNDEFINED, and an object that already exists
(another operator replica, a crash between create and mark) counts as created. If the object
cannot be created (no namespace, a quota refuses it, a build error) the execution becomes FAILED
with the reason, as flyteadmin does on the launch-plan path; an API server that is away
(``kube.transient``: no answer, 429, 5xx) is not a reason, and the next resync tries again.
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
OBJECT = "workflowObject"


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

    async def reconcile(self, record: ExecutionRecord, now: dt.datetime | None = None) -> None:
        """One step towards what the execution's phase asks of the cluster."""
        obj = record.resolved.get(OBJECT)
        if record.phase == Phase.ABORTING and obj:
            await self.abort(record)
        elif record.phase == Phase.ABORTING and OBJECT not in record.resolved:
            await self._aborted_before_launch(record)
        elif record.phase == Phase.UNDEFINED and not obj:
            await self.launch(record)
        elif record.phase in TERMINAL and obj and self._expired(record, now):
            # Retention over: the object goes (propeller's finalizer still holds it until
            # propeller lets go), as propeller's own garbage collector would do later.
            await self.abort(record)

    def _expired(self, record: ExecutionRecord, now: dt.datetime | None) -> bool:
        ended = record.execution.closure.updated_at
        if not ended.seconds:
            return False
        now = now or dt.datetime.now(dt.UTC)
        return now - ended.ToDatetime(tzinfo=dt.UTC) >= self.retention

    async def launch(self, record: ExecutionRecord) -> None:
        namespace = record.resolved.get("namespace", "")
        try:
            body = await self._build(record)
            await self.backend.http.request("POST", _path(namespace), body)
        except kube.KubeError as exc:
            if kube.transient(exc.status):
                raise  # the API server or etcd is away: the next resync launches it
            if exc.status != 409:
                await self._fail(record, f"cannot create the FlyteWorkflow object: {exc.message}")
                return
        except FlyteWorkflowBuildError as exc:
            await self._fail(record, f"cannot build the FlyteWorkflow object: {exc}")
            return
        name = record.id.name
        await self._mark(record, lambda r: replace(r, resolved={**r.resolved, OBJECT: name}))
        log.info("created FlyteWorkflow %s/%s", namespace, name)

    async def _aborted_before_launch(self, record: ExecutionRecord) -> None:
        """Terminated before any object existed: nothing will ever send ABORTED, so record it."""

        def aborted(value: ExecutionRecord) -> ExecutionRecord:
            if value.phase != Phase.ABORTING or OBJECT in value.resolved:
                return value
            execution = execution_pb2.Execution()
            execution.CopyFrom(value.execution)
            execution.closure.phase = Phase.ABORTED
            execution.closure.updated_at.CopyFrom(now_stamp())
            return replace(value, execution=execution)

        await self._mark(record, aborted)

    async def abort(self, record: ExecutionRecord) -> None:
        """TerminateExecution or retention over: delete the object (background propagation);
        gone is fine. The name is cleared, not removed: the object existed."""
        namespace, name = record.resolved.get("namespace", ""), record.resolved[OBJECT]
        try:
            await self.backend.http.request(
                "DELETE", _path(namespace, name), {"propagationPolicy": "Background"}
            )
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
        await self._mark(record, lambda r: replace(r, resolved={**r.resolved, OBJECT: ""}))

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
