"""admin.TaskExecution (one attempt) <-> TaskExecution custom resource: ids and inputs URI in
``spec``; phase, phase version, times and the closure in ``status``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flyteidl.admin import task_execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.crmap.node_executions import execution_id_spec, phase_status
from flyteadmin.core.crmap.protojson import identifier_from_spec, identifier_to_spec, proto_field
from flyteadmin.core.names import object_name
from flyteadmin.core.store import Body

TaskPhase = core_execution.TaskExecution.Phase
RT = identifier_pb2.ResourceType


@dataclass(frozen=True)
class TaskExecutionRecord:
    task: task_execution_pb2.TaskExecution  # id, input_uri, closure (is_parent is derived)
    phase_version: int = 0

    @property
    def id(self) -> identifier_pb2.TaskExecutionIdentifier:
        return self.task.id

    @property
    def phase(self) -> int:
        return self.task.closure.phase


# execution (project, domain, name), node id, task (project, domain, name, version), retry
TaskExecutionKey = tuple[str, str, str, str, str, str, str, str, int]


def task_execution_key(ident: identifier_pb2.TaskExecutionIdentifier) -> TaskExecutionKey:
    ex, t = ident.node_execution_id.execution_id, ident.task_id
    return (
        ex.project,
        ex.domain,
        ex.name,
        ident.node_execution_id.node_id,
        t.project,
        t.domain,
        t.name,
        t.version,
        ident.retry_attempt,
    )


def task_execution_object_name(ident: identifier_pb2.TaskExecutionIdentifier) -> str:
    key = task_execution_key(ident)
    readable = [key[2], key[3], key[6], str(ident.retry_attempt)]
    return object_name(readable, "task", *(str(k) for k in key))


class TaskExecutionCodec:
    kind = crds.TASK_EXECUTION

    def name(self, value: TaskExecutionRecord) -> str:
        return task_execution_object_name(value.id)

    def encode(self, value: TaskExecutionRecord) -> Body:
        task = value.task
        node_id = task.id.node_execution_id
        ex = node_id.execution_id
        spec: dict[str, Any] = {
            "executionId": execution_id_spec(ex),
            "nodeId": node_id.node_id,
            "taskId": identifier_to_spec(task.id.task_id),
            "retryAttempt": task.id.retry_attempt,
            "inputUri": task.input_uri,
        }
        status = phase_status(TaskPhase.Name(task.closure.phase), task.closure)
        status["phaseVersion"] = value.phase_version
        labels = identity_labels(project=ex.project, domain=ex.domain, execution=ex.name)
        return {"metadata": {"labels": labels}, "spec": spec, "status": status}

    def decode(self, body: Body) -> TaskExecutionRecord:
        spec, status = body["spec"], body.get("status") or {}
        ident = identifier_pb2.TaskExecutionIdentifier(
            task_id=identifier_from_spec(spec["taskId"], RT.TASK),
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(**spec["executionId"]),
                node_id=spec["nodeId"],
            ),
            retry_attempt=int(spec.get("retryAttempt", 0)),
        )
        task = task_execution_pb2.TaskExecution(
            id=ident,
            input_uri=spec.get("inputUri", ""),
            closure=proto_field(task_execution_pb2.TaskExecutionClosure, status, "closure"),
        )
        return TaskExecutionRecord(task=task, phase_version=int(status.get("phaseVersion", 0)))
