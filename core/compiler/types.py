"""Literal types: castability and type inference, by flytepropeller's rules
(``compiler/validators/typing.go`` and ``validators/utils.go``).

``castable(source, target)`` answers "may a value of type ``source`` feed an input of type
``target``?". The checker is chosen by the *target* type; a union target accepts a source only
when exactly one variant does (so the variant at run time is unambiguous).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from flyteidl.core import interface_pb2, literals_pb2, types_pb2
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from flyteadmin.core.compiler.text import proto_text

MESSAGEPACK = "msgpack"  # the Binary tag flytekit gives dataclasses, dicts and BaseModels

_COLUMN_TO_SIMPLE = {
    types_pb2.SchemaType.SchemaColumn.INTEGER: types_pb2.INTEGER,
    types_pb2.SchemaType.SchemaColumn.FLOAT: types_pb2.FLOAT,
    types_pb2.SchemaType.SchemaColumn.STRING: types_pb2.STRING,
    types_pb2.SchemaType.SchemaColumn.BOOLEAN: types_pb2.BOOLEAN,
    types_pb2.SchemaType.SchemaColumn.DATETIME: types_pb2.DATETIME,
    types_pb2.SchemaType.SchemaColumn.DURATION: types_pb2.DURATION,
}


def simple(kind: int) -> types_pb2.LiteralType:
    return types_pb2.LiteralType(simple=kind)  # type: ignore[arg-type]


def is_none(literal_type: types_pb2.LiteralType) -> bool:
    return literal_type.WhichOneof("type") == "simple" and literal_type.simple == types_pb2.NONE


def is_optional(variable: interface_pb2.Variable) -> bool:
    """A union with a NONE variant: such an input may be left unbound."""
    if variable.type.WhichOneof("type") != "union_type":
        return False
    return any(
        v.WhichOneof("type") == "simple" and v.simple == types_pb2.NONE
        for v in variable.type.union_type.variants
    )


def castable(source: types_pb2.LiteralType, target: types_pb2.LiteralType) -> bool:
    # A single-variant union source is first tried as its variant.
    if source.WhichOneof("type") == "union_type" and len(source.union_type.variants) == 1:
        if _casts_from(target, source.union_type.variants[0]):
            return True
    return _casts_from(target, source)


def _casts_from(target: types_pb2.LiteralType, source: types_pb2.LiteralType) -> bool:
    kind = target.WhichOneof("type")
    if kind == "collection_type":
        if source.WhichOneof("type") != "collection_type":
            return False
        # An empty collection (collection of NONE) feeds any collection.
        inner = source.collection_type
        return is_none(inner) or _casts_from(target.collection_type, inner)
    if kind == "map_value_type":
        if source.WhichOneof("type") != "map_value_type":
            return False
        inner = source.map_value_type
        return is_none(inner) or _casts_from(target.map_value_type, inner)
    if kind == "blob":
        return _blob_casts(target.blob, source)
    if kind == "schema":
        return _schema_casts(target.schema, source)
    if kind == "union_type":
        return _union_casts(target.union_type, source)
    if kind == "structured_dataset_type":
        return _structured_dataset_casts(target.structured_dataset_type, source)
    if is_none(target):
        return is_none(source)
    return _trivial_casts(target, source)


def _tag(literal_type: types_pb2.LiteralType) -> str:
    return literal_type.structure.tag if literal_type.HasField("structure") else ""


def _trivial_casts(target: types_pb2.LiteralType, source: types_pb2.LiteralType) -> bool:
    # Enums are constrained strings: they cast to and from STRING.
    if source.WhichOneof("type") == "enum_type" and _is_simple(target, types_pb2.STRING):
        return True
    if target.WhichOneof("type") == "enum_type" and _is_simple(source, types_pb2.STRING):
        return True
    if _tag(source) and _tag(target) != _tag(source):
        return False
    if _is_simple(source, types_pb2.STRUCT) and _is_simple(target, types_pb2.STRUCT):
        # The JSON schema of a dataclass / BaseModel lives in metadata; without it (generic
        # structs, old flytekit) any struct is accepted.
        if not source.HasField("metadata") or not target.HasField("metadata"):
            return True
        src, tgt = _struct_json(source.metadata), _struct_json(target.metadata)
        return src == tgt or schema_is_subtype(src, tgt)
    return _without_metadata(source) == _without_metadata(target)


def _is_simple(literal_type: types_pb2.LiteralType, kind: int) -> bool:
    return literal_type.WhichOneof("type") == "simple" and literal_type.simple == kind


def _without_metadata(literal_type: types_pb2.LiteralType) -> types_pb2.LiteralType:
    stripped = types_pb2.LiteralType()
    stripped.CopyFrom(literal_type)
    for field in ("structure", "metadata", "annotation"):
        stripped.ClearField(field)
    return stripped


def _struct_json(struct: Struct) -> Any:
    return json.loads(json_format.MessageToJson(struct))


def _blob_casts(target: types_pb2.BlobType, source: types_pb2.LiteralType) -> bool:
    # propeller compares formats only; an empty format on either side is generic.
    if source.WhichOneof("type") != "blob":
        return False
    if not source.blob.format or not target.format:
        return True
    return source.blob.format == target.format


def _union_casts(target: types_pb2.UnionType, source: types_pb2.LiteralType) -> bool:
    if source.WhichOneof("type") == "union_type":
        # Every source variant must land in some target variant.
        return all(any(castable(u, d) for d in target.variants) for u in source.union_type.variants)
    matches = sum(1 for variant in target.variants if castable(source, variant))
    return matches == 1


def _schema_casts(target: types_pb2.SchemaType, source: types_pb2.LiteralType) -> bool:
    kind = source.WhichOneof("type")
    if kind == "schema":
        return _columns_subset(
            {c.name: c.type for c in source.schema.columns},
            [(c.name, c.type) for c in target.columns],
            lambda up, down: up == down,
        )
    if kind != "structured_dataset_type":
        return False
    upstream = source.structured_dataset_type
    # A FlyteSchema can only be read from parquet.
    if upstream.format and upstream.format.lower() != "parquet":
        return False
    return _columns_subset(
        {c.name: c.literal_type.simple for c in upstream.columns},
        [(c.name, c.type) for c in target.columns],
        lambda up, down: _COLUMN_TO_SIMPLE.get(down) == up,
    )


def _structured_dataset_casts(
    target: types_pb2.StructuredDatasetType, source: types_pb2.LiteralType
) -> bool:
    if is_none(source):
        return True  # structured datasets are nullable
    kind = source.WhichOneof("type")
    if kind == "schema":
        if target.format and target.format.lower() != "parquet":
            return False
        return _columns_subset(
            {c.name: c.type for c in source.schema.columns},
            [(c.name, c.literal_type.simple) for c in target.columns],
            lambda up, down: _COLUMN_TO_SIMPLE.get(up) == down,
        )
    if kind != "structured_dataset_type":
        return False
    upstream = source.structured_dataset_type
    if upstream.format and target.format and upstream.format.lower() != target.format.lower():
        return False
    return _columns_subset(
        {c.name: c.literal_type for c in upstream.columns},
        [(c.name, c.literal_type) for c in target.columns],
        lambda up, down: _casts_from(down, up),
    )


def _columns_subset(
    upstream: dict[str, Any],
    downstream: list[tuple[str, Any]],
    match: Callable[[Any, Any], bool],
) -> bool:
    """Generic (column-less) on either side matches; otherwise the downstream columns must be a
    subset of the upstream ones, each matching."""
    if not upstream or not downstream:
        return True
    return all(name in upstream and match(upstream[name], kind) for name, kind in downstream)


# --- JSON schemas of dataclasses -----------------------------------------------------------


def schema_is_subtype(source: Any, target: Any) -> bool:
    """Does every instance of ``source`` validate against ``target``? (A structural
    approximation of the json-schema-compare check propeller runs: types, required properties,
    property schemas, items, additionalProperties, anyOf/oneOf and enums; titles and defaults are
    ignored, so a child dataclass casts to its parent but not the other way round.)"""
    return _subtype(source, target, source, target, 0)


def _resolve(schema: Any, root: Any) -> Any:
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return schema
        node = root
        for part in ref[2:].split("/"):
            if not isinstance(node, dict) or part not in node:
                return schema
            node = node[part]
        schema = node
    return schema


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    return set(kind) if isinstance(kind, list) else set()


def _subtype(src: Any, tgt: Any, src_root: Any, tgt_root: Any, depth: int) -> bool:
    if depth > 32:  # recursive schemas: assume compatible past this depth
        return True
    src, tgt = _resolve(src, src_root), _resolve(tgt, tgt_root)
    if tgt is True or tgt == {} or src == tgt:
        return True
    if not isinstance(src, dict) or not isinstance(tgt, dict):
        return False

    def sub(s: Any, t: Any) -> bool:
        return _subtype(s, t, src_root, tgt_root, depth + 1)

    for key in ("anyOf", "oneOf"):
        if isinstance(src.get(key), list):
            return all(sub(v, tgt) for v in src[key])
    for key in ("anyOf", "oneOf"):
        if isinstance(tgt.get(key), list):
            return any(sub(src, v) for v in tgt[key])
    tgt_types, src_types = _types(tgt), _types(src)
    if tgt_types and not (
        src_types
        and all(t in tgt_types or (t == "integer" and "number" in tgt_types) for t in src_types)
    ):
        return False
    if "enum" in tgt:
        allowed = {json.dumps(v, sort_keys=True) for v in tgt["enum"]}
        offered = src.get("enum")
        if (
            not isinstance(offered, list)
            or not {json.dumps(v, sort_keys=True) for v in offered} <= allowed
        ):
            return False
    if not set(tgt.get("required", [])) <= set(src.get("required", [])):
        return False
    src_props, tgt_props = src.get("properties", {}), tgt.get("properties", {})
    if not all(sub(src_props[name], tgt_props[name]) for name in tgt_props if name in src_props):
        return False
    for key in ("items", "additionalProperties"):
        if isinstance(src.get(key), dict) and isinstance(tgt.get(key), dict):
            if not sub(src[key], tgt[key]):
                return False
    return True


# --- Type inference ------------------------------------------------------------------------


def literal_type_of(literal: literals_pb2.Literal) -> types_pb2.LiteralType | None:
    """The type of a literal value (propeller's ``LiteralTypeForLiteral``); ``None`` when the
    value is unknown (e.g. an unset literal, a blob without metadata)."""
    kind = literal.WhichOneof("value")
    if kind == "scalar":
        return literal_type_of_scalar(literal.scalar)
    if kind == "collection":
        inner = _common_type(literal.collection.literals)
        return None if inner is None else types_pb2.LiteralType(collection_type=inner)
    if kind == "map":
        inner = _common_type(literal.map.literals[k] for k in sorted(literal.map.literals))
        return None if inner is None else types_pb2.LiteralType(map_value_type=inner)
    if kind == "offloaded_metadata":
        inferred = literal.offloaded_metadata.inferred_type
        return inferred if literal.offloaded_metadata.HasField("inferred_type") else None
    return None


def literal_type_of_primitive(primitive: literals_pb2.Primitive) -> types_pb2.LiteralType:
    kinds = {
        "integer": types_pb2.INTEGER,
        "float_value": types_pb2.FLOAT,
        "string_value": types_pb2.STRING,
        "boolean": types_pb2.BOOLEAN,
        "datetime": types_pb2.DATETIME,
        "duration": types_pb2.DURATION,
    }
    return simple(kinds.get(primitive.WhichOneof("value") or "", types_pb2.NONE))


def literal_type_of_scalar(scalar: literals_pb2.Scalar) -> types_pb2.LiteralType | None:
    kind = scalar.WhichOneof("value")
    if kind == "primitive":
        return literal_type_of_primitive(scalar.primitive)
    if kind == "blob":
        if not scalar.blob.HasField("metadata"):
            return None
        return types_pb2.LiteralType(blob=scalar.blob.metadata.type)
    if kind == "binary":
        # msgpack-tagged binaries carry dataclasses, dicts and BaseModels.
        return simple(types_pb2.STRUCT if scalar.binary.tag == MESSAGEPACK else types_pb2.BINARY)
    if kind == "schema":
        return types_pb2.LiteralType(schema=scalar.schema.type)
    if kind == "structured_dataset":
        result = types_pb2.LiteralType()
        dataset = scalar.structured_dataset
        if dataset.HasField("metadata"):
            result.structured_dataset_type.CopyFrom(dataset.metadata.structured_dataset_type)
        else:
            result.structured_dataset_type.SetInParent()
        return result
    if kind == "none_type":
        return simple(types_pb2.NONE)
    if kind == "error":
        return simple(types_pb2.ERROR)
    if kind == "generic":
        return simple(types_pb2.STRUCT)
    if kind == "union":
        return types_pb2.LiteralType(union_type=types_pb2.UnionType(variants=[scalar.union.type]))
    return None


def _common_type(literals: Iterable[literals_pb2.Literal]) -> types_pb2.LiteralType | None:
    """One type for a collection's (or map's) elements: the single distinct type, or a union of
    the distinct types sorted by their text; empty collections count only when nothing else is
    there."""
    distinct: dict[str, types_pb2.LiteralType] = {}
    empty_collection: types_pb2.LiteralType | None = None
    for literal in literals:
        inferred = literal_type_of(literal)
        if inferred is None:
            return None
        if literal.WhichOneof("value") == "collection" and not literal.collection.literals:
            empty_collection = inferred
            continue
        distinct.setdefault(proto_text(inferred), inferred)
    if not distinct and empty_collection is not None:
        return empty_collection
    if not distinct:
        return simple(types_pb2.NONE)
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    return _union_of([distinct[key] for key in sorted(distinct)])


def _union_of(types: list[types_pb2.LiteralType]) -> types_pb2.LiteralType:
    variants: list[types_pb2.LiteralType] = []
    nested = False
    for each in types:
        inner = each.collection_type if each.WhichOneof("type") == "collection_type" else None
        if inner is not None and inner.WhichOneof("type") == "union_type":
            nested = True
            variants.extend(inner.union_type.variants)
        else:
            variants.append(each)
    union = types_pb2.LiteralType(union_type=types_pb2.UnionType(variants=variants))
    return types_pb2.LiteralType(collection_type=union) if nested else union
