"""Bindings and branch conditions: every input bound once, to a value or an upstream output of a
castable type (flytepropeller's ``validators/bindings.go``, ``vars.go``, ``condition.go``).

Validating a binding also yields the edges it implies: a promise on node ``n1`` makes ``n1``
upstream of the bound node.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from flyteidl.core import condition_pb2, interface_pb2, literals_pb2, types_pb2

from flyteadmin.core.compiler import errors as e
from flyteadmin.core.compiler._graph import START_NODE_ID, EdgeDirection, Graph, NodeInfo
from flyteadmin.core.compiler.text import literal_type_text, proto_text
from flyteadmin.core.compiler.types import (
    castable,
    is_optional,
    literal_type_of_primitive,
    literal_type_of_scalar,
)

# "[3].name" or "name"; a promise variable must be exactly one such match.
_VAR_NAME = re.compile(r"(\[(\d+)\]\.)?(\w+)", re.ASCII)

Resolved = tuple[types_pb2.LiteralType | None, list[str], bool]


def add_edges(graph: Graph, node: NodeInfo, direction: EdgeDirection, errors: e.Collector) -> None:
    """The node's explicit upstream ids and the edges its bindings imply (bindings checked
    against its interface's inputs). Nothing for a node whose interface failed."""
    if node.interface is None:
        return
    if direction is not EdgeDirection.UPSTREAM:
        for provider in node.proto.upstream_node_ids:
            graph.add_execution_edge(provider, node.id)
    validate_bindings(
        graph, node, node.proto.inputs, node.interface.inputs, True, direction, errors.scope()
    )


def validate_bindings(
    graph: Graph,
    node: NodeInfo,
    bindings: Sequence[literals_pb2.Binding],
    params: interface_pb2.VariableMap,
    check_types: bool,
    direction: EdgeDirection,
    errors: e.Collector,
) -> interface_pb2.VariableMap:
    """Checks ``bindings`` against ``params``, adds the implied edges, and returns the bound
    variables with their resolved types. With ``check_types=False`` (branch and approve nodes,
    whose inputs *are* their bindings) unknown names are accepted."""
    resolved = interface_pb2.VariableMap()
    bound: set[str] = set()
    for binding in bindings:
        param = params.variables.get(binding.var)
        if param is None and check_types:
            errors.add(e.variable_name_not_found(node.id, node.id, binding.var))
        elif not binding.HasField("binding"):
            errors.add(e.value_required(node.id, "Binding"))
        elif binding.var in bound:
            errors.add(e.parameter_bound_more_than_once(node.id, binding.var))
        else:
            bound.add(binding.var)
            expected = (
                param.type if param is not None else types_pb2.LiteralType(simple=types_pb2.NONE)
            )
            found_type, upstream, ok = validate_binding(
                graph, node, binding.var, binding.binding, expected, errors.scope(), check_types
            )
            if ok:
                for provider in upstream:
                    graph.add_edge(provider, node.id, direction)
                variable = resolved.variables[binding.var]
                if found_type is not None:
                    variable.type.CopyFrom(found_type)
    for name in sorted(params.variables):
        if name not in bound and not is_optional(params.variables[name]):
            errors.add(e.parameter_not_bound(node.id, name))
    return resolved


def validate_binding(
    graph: Graph,
    node: NodeInfo,
    param: str,
    binding: literals_pb2.BindingData,
    expected: types_pb2.LiteralType,
    errors: e.Collector,
    check_types: bool,
) -> Resolved:
    kind = binding.WhichOneof("value")
    if kind not in ("scalar", "promise") and expected.WhichOneof("type") == "union_type":
        return _bind_to_union(graph, node, param, binding, expected, errors, check_types)
    if kind in ("collection", "map"):
        return _bind_container(graph, node, param, binding, expected, errors, check_types)
    if kind == "promise":
        return _bind_promise(graph, node, param, binding.promise, expected, errors, check_types)
    if kind == "scalar":
        return _bind_scalar(node, param, binding.scalar, expected, errors, check_types)
    errors.add(e.mismatching_bindings(node.id, param, proto_text(expected), ""))
    return None, [], errors.ok


def _bind_to_union(
    graph: Graph,
    node: NodeInfo,
    param: str,
    binding: literals_pb2.BindingData,
    expected: types_pb2.LiteralType,
    errors: e.Collector,
    check_types: bool,
) -> Resolved:
    """A collection or map bound to a union: exactly one variant must accept it."""
    match: types_pb2.LiteralType | None = None
    result: Resolved = (None, [], False)
    for variant in expected.union_type.variants:
        trial = validate_binding(graph, node, param, binding, variant, e.Collector(), check_types)
        if not trial[2]:
            continue
        if match is not None:
            errors.add(
                e.ambiguous_binding_union_value(
                    node.id,
                    param,
                    proto_text(expected),
                    proto_text(binding),
                    proto_text(match),
                    proto_text(variant),
                )
            )
            return None, [], errors.ok
        match, result = variant, trial
    if match is not None:
        return result
    errors.add(
        e.incompatible_binding_union_value(
            node.id, param, proto_text(expected), proto_text(binding)
        )
    )
    return None, [], errors.ok


def _bind_container(
    graph: Graph,
    node: NodeInfo,
    param: str,
    binding: literals_pb2.BindingData,
    expected: types_pb2.LiteralType,
    errors: e.Collector,
    check_types: bool,
) -> Resolved:
    kind = binding.WhichOneof("value")
    field = "collection_type" if kind == "collection" else "map_value_type"
    container = binding.collection if kind == "collection" else binding.map
    if expected.WhichOneof("type") != field:
        received = proto_text(container)
        errors.add(e.mismatching_bindings(node.id, param, proto_text(expected), received))
        return None, [], errors.ok
    if kind == "collection":
        items = list(binding.collection.bindings)
    else:
        items = [binding.map.bindings[k] for k in sorted(binding.map.bindings)]
    upstream: list[str] = []
    element: types_pb2.LiteralType | None = None
    inner = getattr(expected, field)
    for item in items:
        found, ids, ok = validate_binding(
            graph, node, param, item, inner, errors.scope(), check_types
        )
        if ok:
            upstream += ids
            element = found
    result = types_pb2.LiteralType()
    getattr(result, field).CopyFrom(element or types_pb2.LiteralType())
    return result, upstream, errors.ok


def _bind_promise(
    graph: Graph,
    node: NodeInfo,
    param: str,
    promise: types_pb2.OutputReference,
    expected: types_pb2.LiteralType,
    errors: e.Collector,
    check_types: bool,
) -> Resolved:
    upstream = graph.nodes.get(promise.node_id or START_NODE_ID)
    if upstream is None:
        errors.add(e.node_reference_not_found(promise.node_id, promise.node_id))
    else:
        matches = _VAR_NAME.findall(promise.var)
        if len(matches) != 1:
            errors.add(e.syntax_error(node.id, promise.var))
            return None, [], errors.ok
        _, index, name = matches[0]
        input_var, output_var = param, promise.var
        if node.proto.HasField("metadata"):
            input_var = f"{node.proto.metadata.name}.{param}"
        if upstream.proto.HasField("metadata"):
            output_var = f"{upstream.proto.metadata.name}.{promise.var}"
        variable = output_variable(upstream, name, errors.scope())
        if variable is not None:
            source = variable.type
            if index:
                if source.WhichOneof("type") != "collection_type":
                    errors.add(
                        e.mismatching_variables(
                            node.id,
                            output_var,
                            literal_type_text(source),
                            input_var,
                            literal_type_text(expected),
                        )
                    )
                else:
                    source = source.collection_type
            for attr in promise.attr_path:
                source, missing = _attribute_type(source, attr)
                if missing is not None:
                    errors.add(e.field_not_found(node.id, promise.var, proto_text(source), missing))
                    return None, [], errors.ok
            if not check_types or castable(source, expected):
                promise.node_id = upstream.id  # "" becomes "start-node" in the closure
                return variable.type, [upstream.id], True
            errors.add(
                e.mismatching_variables(
                    node.id,
                    output_var,
                    literal_type_text(source),
                    input_var,
                    literal_type_text(expected),
                )
            )
            return None, [], errors.ok
    errors.add(e.parameter_not_bound(node.id, param))
    return None, [], errors.ok


def _attribute_type(
    source: types_pb2.LiteralType, attr: types_pb2.PromiseAttribute
) -> tuple[types_pb2.LiteralType, str | None]:
    """The type one attribute step down (list element, map value, dataclass field), and the
    missing field name when a dataclass has no such field."""
    kind = source.WhichOneof("type")
    if kind == "collection_type":
        return source.collection_type, None
    if kind == "map_value_type":
        return source.map_value_type, None
    fields = source.structure.dataclass_type
    if len(fields) > 0:
        key = attr.string_value
        if key not in fields:
            return source, key
        return fields[key], None
    return source, None


def _bind_scalar(
    node: NodeInfo,
    param: str,
    scalar: literals_pb2.Scalar,
    expected: types_pb2.LiteralType,
    errors: e.Collector,
    check_types: bool,
) -> Resolved:
    found = literal_type_of_scalar(scalar)
    if found is None:
        kind = "".join(part.title() for part in (scalar.WhichOneof("value") or "nil").split("_"))
        errors.add(e.unrecognized_value(node.id, f"*core.Scalar_{kind}"))
    elif check_types and not castable(found, expected):
        errors.add(
            e.mismatching_types(
                node.id, param, literal_type_text(found), literal_type_text(expected)
            )
        )
    if expected.WhichOneof("type") == "enum_type":
        value = scalar.primitive.string_value
        if value not in expected.enum_type.values:
            errors.add(e.illegal_enum_value(node.id, param, value, list(expected.enum_type.values)))
    return found, [], errors.ok


def output_variable(
    node: NodeInfo, name: str, errors: e.Collector
) -> interface_pb2.Variable | None:
    """An output of ``node`` by its (possibly aliased) name; nothing when its aliases are
    broken (that error is reported instead)."""
    scope = errors.scope()
    outputs = effective_outputs(node, scope)
    if not scope.ok:
        return None
    variable = outputs.variables.get(name) if outputs is not None else None
    if variable is None:
        errors.add(e.variable_name_not_found(node.id, node.id, name))
    return variable


def effective_outputs(node: NodeInfo, errors: e.Collector) -> interface_pb2.VariableMap | None:
    """The node's outputs after its output aliases rename them."""
    aliases: dict[str, str] = {}
    for alias in node.proto.output_aliases:
        if alias.var in aliases:
            errors.add(e.duplicate_alias(node.id, alias.alias))
        else:
            aliases[alias.var] = alias.alias
    if node.interface is None:
        return None
    result = interface_pb2.VariableMap()
    for name, variable in node.interface.outputs.variables.items():
        result.variables[aliases.pop(name, name)].CopyFrom(variable)
    for unused in sorted(aliases.values()):  # aliases of outputs that do not exist
        errors.add(e.parameter_not_bound(node.id, unused))
    return result


def validate_condition(
    node: NodeInfo, expression: condition_pb2.BooleanExpression | None, errors: e.Collector
) -> None:
    """A branch condition: operands resolve (variables must be bound inputs of the branch node)
    and both sides of a comparison have the same type."""
    if expression is None:
        errors.add(e.branch_node_has_no_condition(node.id))
        return
    kind = expression.WhichOneof("expr")
    if kind == "comparison":
        right = _operand_type(node, "RightValue", expression.comparison, errors.scope())
        left = _operand_type(node, "LeftValue", expression.comparison, errors.scope())
        if right is not None and left is not None and right != left:
            errors.add(
                e.mismatching_types(
                    node.id, "RightValue", literal_type_text(right), literal_type_text(left)
                )
            )
    elif kind == "conjunction":
        conjunction = expression.conjunction
        for field in ("left_expression", "right_expression"):
            side = getattr(conjunction, field) if conjunction.HasField(field) else None
            validate_condition(node, side, errors.scope())
    else:
        errors.add(e.value_required(node.id, "Expr"))


def _operand_type(
    node: NodeInfo, label: str, comparison: condition_pb2.ComparisonExpression, errors: e.Collector
) -> types_pb2.LiteralType | None:
    field = "right_value" if label == "RightValue" else "left_value"
    if not comparison.HasField(field):
        errors.add(e.value_required(node.id, label))
        return None
    operand: condition_pb2.Operand = getattr(comparison, field)
    kind = operand.WhichOneof("val")
    if kind == "primitive":
        return literal_type_of_primitive(operand.primitive)
    if kind == "var" and operand.var:
        if node.interface is None:
            errors.add(e.value_required(node.id, operand.var))
            return None
        variable = node.interface.inputs.variables.get(operand.var)
        if variable is None:
            # Branch inputs come from its bindings, so an unbound variable is unknown.
            if not any(b.var == operand.var for b in node.proto.inputs):
                errors.add(e.variable_name_not_found(node.id, node.id, operand.var))
            return None
        return variable.type
    errors.add(e.value_required(node.id, f"{label}.Val"))
    return None
