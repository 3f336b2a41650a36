"""admin.Execution <-> Execution custom resource: the request and resolved configuration in
``spec``; phase, times and the closure in ``status`` (no status subresource: docs/storage.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flyteidl.admin import execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.crmap.protojson import (
    identifier_from_spec,
    identifier_to_spec,
    proto_field,
    to_b64,
)
from flyteadmin.core.names import object_name
from flyteadmin.core.store import Body
from flyteadmin.core.timestamps import stamp_text

Phase = core_execution.WorkflowExecution.Phase
State = execution_pb2.ExecutionState
RT = identifier_pb2.ResourceType


@dataclass(frozen=True)
class ExecutionRecord:
    execution: execution_pb2.Execution
    launch_plan_id: identifier_pb2.Identifier
    workflow_id: identifier_pb2.Identifier
    task_id: identifier_pb2.Identifier | None = None
    inputs_uri: str = ""
    user_inputs_uri: str = ""
    request_digest: str = ""
    resolved: dict[str, Any] = field(default_factory=dict)
    notified: tuple[dict[str, Any], ...] = ()
    """Notifications delivered or given up on (status.notified; core/notifications)."""
    archived_in: tuple[str, ...] = ()
    """Set by the archiver once the execution and its node/task executions and signals are in
    history (the URIs of those files): reads of its children go there from then on, and the
    objects are about to be deleted (status.archivedIn; docs/storage.md, "History")."""

    @property
    def id(self) -> identifier_pb2.WorkflowExecutionIdentifier:
        return self.execution.id

    @property
    def phase(self) -> int:
        return self.execution.closure.phase

    @property
    def state(self) -> int:
        return self.execution.closure.state_change_details.state


def error_summary(error: core_execution.ExecutionError) -> str:
    """A short, readable form of an error for ``kubectl get/describe`` (the record has it all)."""
    text = f"{error.code}: {error.message}" if error.code else error.message
    return text if len(text) <= 256 else text[:253] + "..."


def execution_object_name(ident: identifier_pb2.WorkflowExecutionIdentifier) -> str:
    return object_name([ident.name], "execution", ident.project, ident.domain, ident.name)


class ExecutionCodec:
    kind = crds.EXECUTION

    def name(self, value: ExecutionRecord) -> str:
        return execution_object_name(value.id)

    def encode(self, value: ExecutionRecord) -> Body:
        ex = value.execution
        ident = ex.id
        spec: dict[str, Any] = {
            "id": {"project": ident.project, "domain": ident.domain, "name": ident.name},
            "launchPlanId": identifier_to_spec(value.launch_plan_id),
            "workflowId": identifier_to_spec(value.workflow_id),
            "specProto": to_b64(ex.spec),
            "inputsUri": value.inputs_uri,
            "userInputsUri": value.user_inputs_uri,
            "state": State.Name(value.state),
            "createdAt": stamp_text(ex.closure.created_at),
            "requestDigest": value.request_digest,
            "resolved": value.resolved,
        }
        if value.task_id is not None:
            spec["taskId"] = identifier_to_spec(value.task_id)
        closure = ex.closure
        status: dict[str, Any] = {
            "phase": Phase.Name(closure.phase),
            "closureProto": to_b64(closure),
        }
        started, updated = stamp_text(closure.started_at), stamp_text(closure.updated_at)
        if started:
            status["startedAt"] = started
        if updated:
            status["updatedAt"] = updated
        if closure.HasField("duration"):
            status["duration"] = f"{closure.duration.ToTimedelta().total_seconds():.3f}s"
        if closure.HasField("error"):
            status["message"] = error_summary(closure.error)
        if value.notified:
            status["notified"] = list(value.notified)
        if value.archived_in:
            status["archivedIn"] = list(value.archived_in)
        labels = identity_labels(
            project=ident.project,
            domain=ident.domain,
            execution=ident.name,
            launch_plan=value.launch_plan_id.name,
        )
        return {"metadata": {"labels": labels}, "spec": spec, "status": status}

    def decode(self, body: Body) -> ExecutionRecord:
        spec, status = body["spec"], body.get("status") or {}
        ident = identifier_pb2.WorkflowExecutionIdentifier(**spec["id"])
        execution = execution_pb2.Execution(
            id=ident,
            spec=proto_field(execution_pb2.ExecutionSpec, spec, "spec"),
            closure=proto_field(execution_pb2.ExecutionClosure, status, "closure"),
        )
        if not (status.get("closureProto") or status.get("closure")):
            # Created, but its status not written yet (or that write failed): what spec knows.
            if spec.get("createdAt"):
                execution.closure.created_at.FromJsonString(spec["createdAt"])
                execution.closure.updated_at.FromJsonString(spec["createdAt"])
            execution.closure.workflow_id.CopyFrom(
                identifier_from_spec(spec.get("workflowId") or {}, RT.WORKFLOW)
            )
        execution.closure.state_change_details.state = State.Value(
            spec.get("state", "EXECUTION_ACTIVE")
        )
        task = spec.get("taskId")
        return ExecutionRecord(
            execution=execution,
            launch_plan_id=identifier_from_spec(spec.get("launchPlanId") or {}, RT.LAUNCH_PLAN),
            workflow_id=identifier_from_spec(spec.get("workflowId") or {}, RT.WORKFLOW),
            task_id=identifier_from_spec(task, RT.TASK) if task else None,
            inputs_uri=spec.get("inputsUri", ""),
            user_inputs_uri=spec.get("userInputsUri", ""),
            request_digest=spec.get("requestDigest", ""),
            resolved=spec.get("resolved") or {},
            notified=tuple(status.get("notified") or ()),
            archived_in=tuple(status.get("archivedIn") or ()),
        )
