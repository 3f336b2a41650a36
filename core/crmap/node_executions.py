"""admin.NodeExecution <-> NodeExecution custom resource: ids, parent links and inputs URI in
``spec``; phase, times and the closure in ``status`` (no status subresource: docs/storage.md).

Two internal fields have no proto home: the blob-store URI of a dynamic node's compiled
workflow (``status.dynamicWorkflowRef``) and the child task-execution link
(``spec.parentTaskExecution``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.executions import error_summary
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.crmap.protojson import from_b64, from_json, proto_field, to_b64
from flyteadmin.core.names import object_name
from flyteadmin.core.store import Body
from flyteadmin.core.timestamps import stamp_text

NodePhase = core_execution.NodeExecution.Phase


@dataclass(frozen=True)
class NodeExecutionRecord:
    node: node_execution_pb2.NodeExecution  # id, input_uri, closure, metadata as served
    parent_id: str = ""  # node id of the parent node (sub-workflow / dynamic children)
    parent_task: identifier_pb2.TaskExecutionIdentifier | None = None
    dynamic_workflow_uri: str = ""  # compiled core.CompiledWorkflowClosure in the blob store

    @property
    def id(self) -> identifier_pb2.NodeExecutionIdentifier:
        return self.node.id

    @property
    def phase(self) -> int:
        return self.node.closure.phase


def node_execution_object_name(ident: identifier_pb2.NodeExecutionIdentifier) -> str:
    ex = ident.execution_id
    # flyteadmin's key is (execution, node id): propeller makes child node ids unique.
    return object_name(
        [ex.name, ident.node_id], "node", ex.project, ex.domain, ex.name, ident.node_id
    )


def phase_status(
    phase_name: str,
    closure: node_execution_pb2.NodeExecutionClosure | task_execution_pb2.TaskExecutionClosure,
) -> dict[str, Any]:
    """The typed status fields shared by node and task executions (printer columns)."""
    status: dict[str, Any] = {"phase": phase_name, "closureProto": to_b64(closure)}
    started, updated = stamp_text(closure.started_at), stamp_text(closure.updated_at)
    if started:
        status["startedAt"] = started
    if updated:
        status["updatedAt"] = updated
    if closure.HasField("duration"):
        status["duration"] = f"{closure.duration.ToTimedelta().total_seconds():.3f}s"
    if closure.HasField("error"):
        status["message"] = error_summary(closure.error)
    return status


def execution_id_spec(ex: identifier_pb2.WorkflowExecutionIdentifier) -> dict[str, str]:
    spec = {"project": ex.project, "domain": ex.domain, "name": ex.name}
    if ex.org:
        spec["org"] = ex.org
    return spec


class NodeExecutionCodec:
    kind = crds.NODE_EXECUTION

    def name(self, value: NodeExecutionRecord) -> str:
        return node_execution_object_name(value.id)

    def encode(self, value: NodeExecutionRecord) -> Body:
        node = value.node
        ex = node.id.execution_id
        spec: dict[str, Any] = {
            "executionId": execution_id_spec(ex),
            "nodeId": node.id.node_id,
            "inputUri": node.input_uri,
            "metadataProto": to_b64(node.metadata),
        }
        if value.parent_id:
            spec["parentId"] = value.parent_id
        if value.parent_task is not None:
            spec["parentTaskExecutionProto"] = to_b64(value.parent_task)
        status = phase_status(NodePhase.Name(node.closure.phase), node.closure)
        if value.dynamic_workflow_uri:
            status["dynamicWorkflowRef"] = value.dynamic_workflow_uri
        labels = identity_labels(project=ex.project, domain=ex.domain, execution=ex.name)
        return {"metadata": {"labels": labels}, "spec": spec, "status": status}

    def decode(self, body: Body) -> NodeExecutionRecord:
        spec, status = body["spec"], body.get("status") or {}
        dynamic_uri = status.get("dynamicWorkflowRef", "")
        node = node_execution_pb2.NodeExecution(
            id=identifier_pb2.NodeExecutionIdentifier(
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(**spec["executionId"]),
                node_id=spec["nodeId"],
            ),
            input_uri=spec.get("inputUri", ""),
            closure=proto_field(node_execution_pb2.NodeExecutionClosure, status, "closure"),
            metadata=proto_field(node_execution_pb2.NodeExecutionMetaData, spec, "metadata"),
        )
        return NodeExecutionRecord(
            node=node,
            parent_id=spec.get("parentId", ""),
            parent_task=_parent_task(spec),
            dynamic_workflow_uri=dynamic_uri,
        )


def _parent_task(spec: Body) -> identifier_pb2.TaskExecutionIdentifier | None:
    if packed := spec.get("parentTaskExecutionProto"):
        return from_b64(identifier_pb2.TaskExecutionIdentifier, packed)
    if old := spec.get("parentTaskExecution"):
        return from_json(identifier_pb2.TaskExecutionIdentifier, old)
    return None
