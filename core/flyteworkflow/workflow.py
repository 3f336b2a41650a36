"""Workflow specs (propeller ``transformers/k8s/workflow.go`` + ``utils.go``): nodes, both
connection encodings, outputs, and the interface type-metadata stripping."""

from __future__ import annotations

from typing import Any

from flyteidl.core import compiler_pb2, interface_pb2, types_pb2, workflow_pb2

from flyteadmin.core.flyteworkflow.errors import FlyteWorkflowBuildError
from flyteadmin.core.flyteworkflow.goformat import jsonpb, workflow_id_string
from flyteadmin.core.flyteworkflow.nodes import START_NODE_ID, Tasks, build_node

_KEEP_ANNOTATION = "cache-key-metadata"


def strip_type_metadata(literal_type: types_pb2.LiteralType) -> None:
    """``StripTypeMetadata``, in place: metadata goes, annotations too unless they carry a
    cache key, recursively through dataclass, union, map, collection and dataset types."""
    literal_type.ClearField("metadata")
    if literal_type.HasField("annotation"):
        if _KEEP_ANNOTATION not in literal_type.annotation.annotations.fields:
            literal_type.ClearField("annotation")
    for nested in literal_type.structure.dataclass_type.values():
        strip_type_metadata(nested)
    kind = literal_type.WhichOneof("type")
    if kind == "union_type":
        for variant in literal_type.union_type.variants:
            strip_type_metadata(variant)
    elif kind in ("map_value_type", "collection_type"):
        strip_type_metadata(getattr(literal_type, kind))
    elif kind == "structured_dataset_type":
        for column in literal_type.structured_dataset_type.columns:
            strip_type_metadata(column.literal_type)


def strip_interface(iface: interface_pb2.TypedInterface) -> None:
    """``StripInterfaceTypeMetadata``, in place; descriptions go as well."""
    for side in (iface.inputs, iface.outputs):
        for variable in side.variables.values():
            if variable.HasField("type"):
                strip_type_metadata(variable.type)
            variable.description = ""


def _edges(connections: Any) -> dict[str, list[str] | None]:
    # Go's nil slice (an empty id list) marshals as null; Go also writes map keys sorted
    return {key: list(connections[key].ids) or None for key in sorted(connections)}


def build_nodes(nodes: list[workflow_pb2.Node], tasks: Tasks) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for node in nodes:
        for spec in build_node(node, tasks):
            if spec["id"] in out and out[spec["id"]] != spec:
                raise FlyteWorkflowBuildError(f"[{node.id}] node id collision: {spec['id']}")
            out[spec["id"]] = spec
    return out


def build_workflow_spec(compiled: compiler_pb2.CompiledWorkflow, tasks: Tasks) -> dict[str, Any]:
    """``buildFlyteWorkflowSpec``. ``compiled`` is modified (its interface is stripped), as in
    Go: pass a copy."""
    template = compiled.template
    strip_interface(template.interface)
    downstream = _edges(compiled.connections.downstream)
    spec: dict[str, Any] = {
        "id": workflow_id_string(template.id),
        "nodes": build_nodes(list(template.nodes), tasks),
        "connections": downstream,  # DeprecatedConnections: the downstream map alone
        "edges": {"downstream": downstream, "upstream": _edges(compiled.connections.upstream)},
    }
    if template.HasField("failure_node"):
        spec["onFailure"] = build_node(template.failure_node, tasks)[0]
    spec["outputs"] = jsonpb(template.interface.outputs)
    if template.outputs:
        spec["outputBindings"] = [jsonpb(b) for b in template.outputs]
    policy = template.metadata.on_failure
    if policy:  # omitempty drops FAIL_IMMEDIATELY (0)
        spec["onFailurePolicy"] = workflow_pb2.WorkflowMetadata.OnFailurePolicy.Name(policy)
    return spec


def check_entry(spec: dict[str, Any]) -> None:
    """Propeller refuses a workflow whose start node leads nowhere."""
    if START_NODE_ID not in spec["nodes"]:
        raise FlyteWorkflowBuildError(f"workflow {spec['id']} has no start node")
    if not spec["edges"]["downstream"].get(START_NODE_ID):
        raise FlyteWorkflowBuildError(f"workflow {spec['id']} has no entry node")
