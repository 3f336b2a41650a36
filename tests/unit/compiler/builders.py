"""Small proto builders for hand-written compiler test cases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flyteidl.core import (
    condition_pb2,
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
    workflow_pb2,
)

T = types_pb2
INT = T.LiteralType(simple=T.INTEGER)
FLOAT = T.LiteralType(simple=T.FLOAT)
STR = T.LiteralType(simple=T.STRING)
BOOL = T.LiteralType(simple=T.BOOLEAN)
NONE = T.LiteralType(simple=T.NONE)
STRUCT = T.LiteralType(simple=T.STRUCT)
DATETIME = T.LiteralType(simple=T.DATETIME)


def list_of(inner: T.LiteralType) -> T.LiteralType:
    return T.LiteralType(collection_type=inner)


def map_of(inner: T.LiteralType) -> T.LiteralType:
    return T.LiteralType(map_value_type=inner)


def union(*variants: T.LiteralType) -> T.LiteralType:
    return T.LiteralType(union_type=T.UnionType(variants=variants))


def tagged(literal_type: T.LiteralType, tag: str) -> T.LiteralType:
    copy = T.LiteralType()
    copy.CopyFrom(literal_type)
    copy.structure.tag = tag
    return copy


def optional(inner: T.LiteralType) -> T.LiteralType:
    return union(tagged(inner, "int"), tagged(NONE, "none"))


def enum_of(*values: str) -> T.LiteralType:
    return T.LiteralType(enum_type=T.EnumType(values=values))


def ident(kind: int, name: str, version: str = "v1") -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=kind, project="p", domain="d", name=name, version=version
    )


def tid(name: str) -> identifier_pb2.Identifier:
    return ident(identifier_pb2.TASK, name)


def wid(name: str) -> identifier_pb2.Identifier:
    return ident(identifier_pb2.WORKFLOW, name)


def lpid(name: str) -> identifier_pb2.Identifier:
    return ident(identifier_pb2.LAUNCH_PLAN, name)


def variables(types: Mapping[str, T.LiteralType]) -> interface_pb2.VariableMap:
    return interface_pb2.VariableMap(
        variables={name: interface_pb2.Variable(type=t) for name, t in types.items()}
    )


def interface(
    inputs: Mapping[str, T.LiteralType] | None = None,
    outputs: Mapping[str, T.LiteralType] | None = None,
) -> interface_pb2.TypedInterface:
    return interface_pb2.TypedInterface(
        inputs=variables(inputs or {}), outputs=variables(outputs or {})
    )


def task(
    name: str,
    inputs: Mapping[str, T.LiteralType] | None = None,
    outputs: Mapping[str, T.LiteralType] | None = None,
) -> tasks_pb2.TaskTemplate:
    return tasks_pb2.TaskTemplate(
        id=tid(name),
        type="python-task",
        interface=interface(inputs, outputs),
        container=tasks_pb2.Container(image="img", args=["run"]),
    )


def int_value(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def str_value(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value))
    )


def promise(node_id: str, var: str, *attrs: str) -> literals_pb2.BindingData:
    reference = T.OutputReference(node_id=node_id, var=var)
    for attr in attrs:
        reference.attr_path.add(string_value=attr)
    return literals_pb2.BindingData(promise=reference)


def scalar(literal: literals_pb2.Literal) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(scalar=literal.scalar)


def collection(*items: literals_pb2.BindingData) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(collection=literals_pb2.BindingDataCollection(bindings=items))


def mapping(items: Mapping[str, literals_pb2.BindingData]) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(map=literals_pb2.BindingDataMap(bindings=items))


def bindings(values: Mapping[str, literals_pb2.BindingData]) -> list[literals_pb2.Binding]:
    return [literals_pb2.Binding(var=name, binding=data) for name, data in values.items()]


def node(
    node_id: str,
    inputs: Mapping[str, literals_pb2.BindingData] | None = None,
    upstream: Sequence[str] = (),
    **target: object,
) -> workflow_pb2.Node:
    result = workflow_pb2.Node(
        id=node_id,
        metadata=workflow_pb2.NodeMetadata(name=node_id),
        inputs=bindings(inputs or {}),
        upstream_node_ids=upstream,
        **target,  # type: ignore[arg-type]
    )
    return result


def task_node(
    node_id: str,
    task_name: str,
    inputs: Mapping[str, literals_pb2.BindingData] | None = None,
    upstream: Sequence[str] = (),
) -> workflow_pb2.Node:
    target = workflow_pb2.TaskNode(reference_id=tid(task_name))
    return node(node_id, inputs, upstream, task_node=target)


def comparison(var: str, operator: int, value: int) -> condition_pb2.BooleanExpression:
    return condition_pb2.BooleanExpression(
        comparison=condition_pb2.ComparisonExpression(
            operator=operator,
            left_value=condition_pb2.Operand(var=var),
            right_value=condition_pb2.Operand(primitive=literals_pb2.Primitive(integer=value)),
        )
    )


def workflow(
    name: str,
    nodes: Sequence[workflow_pb2.Node],
    inputs: Mapping[str, T.LiteralType] | None = None,
    outputs: Mapping[str, T.LiteralType] | None = None,
    output_bindings: Mapping[str, literals_pb2.BindingData] | None = None,
) -> workflow_pb2.WorkflowTemplate:
    return workflow_pb2.WorkflowTemplate(
        id=wid(name),
        interface=interface(inputs, outputs),
        nodes=nodes,
        outputs=bindings(output_bindings or {}),
    )
