"""Castability and type inference, rule by rule (propeller's ``typing_test.go`` cases and more)."""

from __future__ import annotations

import pytest
from flyteidl.core import literals_pb2 as L
from flyteidl.core import types_pb2 as T
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from flyteadmin.core.compiler import castable, is_optional, literal_type_of
from flyteadmin.core.compiler.types import schema_is_subtype
from tests.unit.compiler.builders import (
    BOOL,
    DATETIME,
    FLOAT,
    INT,
    NONE,
    STR,
    STRUCT,
    enum_of,
    int_value,
    list_of,
    map_of,
    optional,
    str_value,
    tagged,
    union,
)

Col = T.SchemaType.SchemaColumn


def schema(**columns: int) -> T.LiteralType:
    return T.LiteralType(
        schema=T.SchemaType(columns=[Col(name=n, type=t) for n, t in columns.items()])
    )


def dataset(fmt: str = "", **columns: T.LiteralType) -> T.LiteralType:
    return T.LiteralType(
        structured_dataset_type=T.StructuredDatasetType(
            format=fmt,
            columns=[
                T.StructuredDatasetType.DatasetColumn(name=n, literal_type=t)
                for n, t in columns.items()
            ],
        )
    )


def blob(fmt: str, dimensionality: int = T.BlobType.SINGLE) -> T.LiteralType:
    return T.LiteralType(blob=T.BlobType(format=fmt, dimensionality=dimensionality))


def struct_with(schema_json: dict) -> T.LiteralType:
    result = T.LiteralType(simple=T.STRUCT)
    result.metadata.update(schema_json)
    return result


def with_metadata(literal_type: T.LiteralType) -> T.LiteralType:
    copy = T.LiteralType()
    copy.CopyFrom(literal_type)
    copy.metadata.update({"a": 1})
    copy.annotation.annotations.update({"x": "y"})
    return copy


POINT_A = {
    "type": "object",
    "title": "A",
    "required": ["a"],
    "properties": {"a": {"type": "integer"}},
}
POINT_B = {  # class B(A): b: Optional[str] = None
    "type": "object",
    "title": "B",
    "required": ["a", "b"],
    "properties": {
        "a": {"type": "integer"},
        "b": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    },
}
OTHER = {
    "type": "object",
    "title": "D",
    "required": ["d"],
    "properties": {"d": {"type": "string"}},
}
WITH_REFS = {
    "type": "object",
    "required": ["p"],
    "properties": {"p": {"$ref": "#/$defs/A"}},
    "$defs": {"A": POINT_A},
}
WITH_REFS_WIDER = {
    "type": "object",
    "required": ["p"],
    "properties": {"p": {"$ref": "#/$defs/B"}},
    "$defs": {"B": POINT_B},
}

CASTS = [
    # simple types: exact match only
    ("int-int", INT, INT, True),
    ("int-float", INT, FLOAT, False),
    ("float-int", FLOAT, INT, False),
    ("str-bool", STR, BOOL, False),
    ("none-int", NONE, INT, False),
    ("int-none", INT, NONE, False),
    ("none-none", NONE, NONE, True),
    ("binary-binary", T.LiteralType(simple=T.BINARY), T.LiteralType(simple=T.BINARY), True),
    ("binary-struct", T.LiteralType(simple=T.BINARY), STRUCT, False),
    ("error-error", T.LiteralType(simple=T.ERROR), T.LiteralType(simple=T.ERROR), True),
    ("error-str", T.LiteralType(simple=T.ERROR), STR, False),
    ("datetime-datetime", DATETIME, DATETIME, True),
    ("metadata ignored", with_metadata(INT), INT, True),
    ("metadata ignored, reverse", INT, with_metadata(INT), True),
    ("source tag must match", tagged(INT, "a"), tagged(INT, "b"), False),
    ("untagged source casts to tagged", INT, tagged(INT, "b"), True),
    # enums are constrained strings
    ("enum-str", enum_of("x", "y"), STR, True),
    ("str-enum", STR, enum_of("x", "y"), True),
    ("enum-same enum", enum_of("x", "y"), enum_of("x", "y"), True),
    ("enum-other enum", enum_of("x", "y"), enum_of("m", "n"), False),
    ("enum-int", enum_of("x"), INT, False),
    # collections and maps: element-wise; empty (NONE elements) feeds any
    ("[int]-[int]", list_of(INT), list_of(INT), True),
    ("[]-[int]", list_of(NONE), list_of(INT), True),
    ("[int]-[float]", list_of(INT), list_of(FLOAT), False),
    ("[int]-int", list_of(INT), INT, False),
    ("int-[int]", INT, list_of(INT), False),
    ("[int]-[[int]]", list_of(INT), list_of(list_of(INT)), False),
    ("none-[int]", NONE, list_of(INT), False),
    ("{int}-{int}", map_of(INT), map_of(INT), True),
    ("{}-{int}", map_of(NONE), map_of(INT), True),
    ("{int}-{float}", map_of(INT), map_of(FLOAT), False),
    ("{int}-int", map_of(INT), INT, False),
    ("{int}-{{int}}", map_of(INT), map_of(map_of(INT)), False),
    ("[int]-{int}", list_of(INT), map_of(INT), False),
    # unions
    ("str-union(str,int)", STR, union(STR, INT), True),
    ("str-union(str,str) is ambiguous", STR, union(tagged(STR, "a"), tagged(STR, "b")), False),
    ("none-optional", NONE, optional(INT), True),
    ("int-optional", INT, optional(INT), True),
    ("float-optional int", FLOAT, optional(INT), False),
    ("optional-int", optional(INT), INT, False),
    (
        "union-superset union",
        union(tagged(STR, "s1"), tagged(STR, "s2")),
        union(tagged(STR, "s1"), tagged(INT, "i1"), tagged(STR, "s2")),
        True,
    ),
    (
        "union-union, tags differ",
        union(tagged(STR, "s1"), tagged(STR, "s2")),
        union(tagged(INT, "s2"), tagged(STR, "s3")),
        False,
    ),
    ("union-union, types differ", union(tagged(STR, "t")), union(tagged(INT, "t")), False),
    ("singular union-its variant", union(tagged(STR, "s")), tagged(STR, "s"), True),
    ("union(int,str)-int", union(INT, STR), INT, False),
    # blobs: the format only (empty is generic); dimensionality is not compared
    ("csv-csv", blob("csv"), blob("csv"), True),
    ("csv-generic", blob("csv"), blob(""), True),
    ("generic-csv", blob(""), blob("csv"), True),
    ("csv-pdf", blob("csv"), blob("pdf"), False),
    ("single-multipart", blob("", T.BlobType.SINGLE), blob("", T.BlobType.MULTIPART), True),
    ("none-blob", NONE, blob("csv"), False),
    ("str-blob", STR, blob(""), False),
    # schemas: downstream columns a subset of upstream ones
    ("schema()-schema()", schema(), schema(), True),
    ("schema()-schema(a)", schema(), schema(a=Col.INTEGER), True),
    ("schema(a)-schema()", schema(a=Col.INTEGER), schema(), True),
    ("schema(a,b)-schema(a)", schema(a=Col.INTEGER, b=Col.FLOAT), schema(a=Col.INTEGER), True),
    ("schema(a)-schema(a,b)", schema(a=Col.INTEGER), schema(a=Col.INTEGER, b=Col.FLOAT), False),
    ("schema(a:int)-schema(a:float)", schema(a=Col.INTEGER), schema(a=Col.FLOAT), False),
    ("schema(a:float)-schema(a:int)", schema(a=Col.FLOAT), schema(a=Col.INTEGER), False),
    ("none-schema", NONE, schema(a=Col.INTEGER), False),
    ("dataset()-schema(a)", dataset(), schema(a=Col.INTEGER), True),
    ("dataset(a,b)-schema(a)", dataset("parquet", a=INT, b=FLOAT), schema(a=Col.INTEGER), True),
    ("csv dataset-schema", dataset("csv", a=INT), schema(a=Col.INTEGER), False),
    ("dataset(a:float)-schema(a:int)", dataset("", a=FLOAT), schema(a=Col.INTEGER), False),
    ("int-schema", INT, schema(), False),
    # structured datasets: format (empty is generic, case-insensitive) and column subset
    ("dataset()-dataset()", dataset("parquet"), dataset("parquet"), True),
    ("parquet-generic", dataset("parquet"), dataset(""), True),
    ("generic-parquet", dataset(""), dataset("parquet"), True),
    ("PARQUET-parquet", dataset("PARQUET"), dataset("parquet"), True),
    ("csv-parquet", dataset("csv"), dataset("parquet"), False),
    (
        "dataset(a,b,c)-dataset(a,b)",
        dataset("parquet", a=INT, b=list_of(INT), c=map_of(INT)),
        dataset("parquet", a=INT, b=list_of(INT)),
        True,
    ),
    ("dataset(a)-dataset(a,b)", dataset("", a=INT), dataset("", a=INT, b=FLOAT), False),
    ("dataset(a:int)-dataset(a:float)", dataset("", a=INT), dataset("", a=FLOAT), False),
    ("none-dataset (nullable)", NONE, dataset("parquet", a=INT), True),
    ("schema(a)-dataset(a)", schema(a=Col.INTEGER), dataset("parquet", a=INT), True),
    ("schema(a:int)-dataset(a:float)", schema(a=Col.INTEGER), dataset("", a=FLOAT), False),
    ("schema-csv dataset", schema(a=Col.INTEGER), dataset("csv", a=INT), False),
    ("int-dataset", INT, dataset(), False),
    # structs: generic structs match anything; dataclass schemas by JSON schema
    ("struct-struct", STRUCT, STRUCT, True),
    ("dataclass-generic struct", struct_with(POINT_A), STRUCT, True),
    ("generic struct-dataclass", STRUCT, struct_with(POINT_A), True),
    ("same dataclass", struct_with(POINT_A), struct_with(POINT_A), True),
    ("child-parent dataclass", struct_with(POINT_B), struct_with(POINT_A), True),
    ("parent-child dataclass", struct_with(POINT_A), struct_with(POINT_B), False),
    ("unrelated dataclasses", struct_with(POINT_A), struct_with(OTHER), False),
    ("nested refs, child-parent", struct_with(WITH_REFS_WIDER), struct_with(WITH_REFS), True),
    ("nested refs, parent-child", struct_with(WITH_REFS), struct_with(WITH_REFS_WIDER), False),
    ("struct-int", STRUCT, INT, False),
]


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [case[1:] for case in CASTS],
    ids=[case[0] for case in CASTS],
)
def test_castable(source: T.LiteralType, target: T.LiteralType, expected: bool) -> None:
    assert castable(source, target) is expected


SCHEMA_CASES = [
    ("integer into number", {"type": "integer"}, {"type": "number"}, True),
    ("number into integer", {"type": "number"}, {"type": "integer"}, False),
    ("enum subset", {"enum": ["a"]}, {"enum": ["a", "b"]}, True),
    ("enum superset", {"enum": ["a", "b"]}, {"enum": ["a"]}, False),
    ("unbounded into enum", {"type": "string"}, {"type": "string", "enum": ["a"]}, False),
    ("array items", {"type": "array", "items": POINT_B}, {"type": "array", "items": POINT_A}, True),
    ("array items, reverse", {"type": "array", "items": POINT_A}, {"items": POINT_B}, False),
    ("anything into {}", {"type": "string"}, {}, True),
    ("typeless into typed", {}, {"type": "string"}, False),
    (
        "anyOf target",
        {"type": "string"},
        {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        True,
    ),
    (
        "anyOf source",
        {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        {"type": "integer"},
        False,
    ),
    (
        "additionalProperties",
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"type": "object", "additionalProperties": {"type": "string"}},
        False,
    ),
]


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [case[1:] for case in SCHEMA_CASES],
    ids=[case[0] for case in SCHEMA_CASES],
)
def test_schema_is_subtype(source: dict, target: dict, expected: bool) -> None:
    assert schema_is_subtype(source, target) is expected


def test_is_optional() -> None:
    from flyteidl.core import interface_pb2

    assert is_optional(interface_pb2.Variable(type=optional(INT)))
    assert not is_optional(interface_pb2.Variable(type=union(INT, STR)))
    assert not is_optional(interface_pb2.Variable(type=INT))


def primitive(**value: object) -> L.Literal:
    return L.Literal(scalar=L.Scalar(primitive=L.Primitive(**value)))  # type: ignore[arg-type]


def scalar(**value: object) -> L.Literal:
    return L.Literal(scalar=L.Scalar(**value))  # type: ignore[arg-type]


def collection(*items: L.Literal) -> L.Literal:
    return L.Literal(collection=L.LiteralCollection(literals=items))


def literal_map(**items: L.Literal) -> L.Literal:
    return L.Literal(map=L.LiteralMap(literals=items))


BLOB_TYPE = T.BlobType(format="csv", dimensionality=T.BlobType.MULTIPART)
DATASET_TYPE = T.StructuredDatasetType(format="parquet")

INFERENCE = [
    ("integer", int_value(1), INT),
    ("float", primitive(float_value=1.5), FLOAT),
    ("string", str_value("x"), STR),
    ("boolean", primitive(boolean=True), BOOL),
    ("datetime", primitive(datetime=timestamp_pb2.Timestamp(seconds=1)), DATETIME),
    (
        "duration",
        primitive(duration=duration_pb2.Duration(seconds=1)),
        T.LiteralType(simple=T.DURATION),
    ),
    ("empty primitive", primitive(), NONE),
    ("none", scalar(none_type=L.Void()), NONE),
    ("error", scalar(error=T.Error(message="x")), T.LiteralType(simple=T.ERROR)),
    ("generic", scalar(generic=struct_pb2.Struct()), STRUCT),
    ("msgpack binary", scalar(binary=L.Binary(value=b"\x80", tag="msgpack")), STRUCT),
    ("raw binary", scalar(binary=L.Binary(value=b"x")), T.LiteralType(simple=T.BINARY)),
    (
        "blob",
        scalar(blob=L.Blob(uri="s3://x", metadata=L.BlobMetadata(type=BLOB_TYPE))),
        T.LiteralType(blob=BLOB_TYPE),
    ),
    (
        "schema",
        scalar(schema=L.Schema(uri="s3://x", type=T.SchemaType())),
        T.LiteralType(schema=T.SchemaType()),
    ),
    (
        "structured dataset",
        scalar(
            structured_dataset=L.StructuredDataset(
                uri="s3://x",
                metadata=L.StructuredDatasetMetadata(structured_dataset_type=DATASET_TYPE),
            )
        ),
        T.LiteralType(structured_dataset_type=DATASET_TYPE),
    ),
    (
        "structured dataset without metadata",
        scalar(structured_dataset=L.StructuredDataset(uri="s3://x")),
        T.LiteralType(structured_dataset_type=T.StructuredDatasetType()),
    ),
    (
        "union",
        scalar(union=L.Union(value=int_value(1), type=tagged(INT, "int"))),
        union(tagged(INT, "int")),
    ),
    ("homogeneous collection", collection(int_value(1), int_value(2)), list_of(INT)),
    ("empty collection", collection(), list_of(NONE)),
    ("nested empty", collection(collection(), collection(int_value(1))), list_of(list_of(INT))),
    ("only empty nested", collection(collection()), list_of(list_of(NONE))),
    # mixed elements: a union of the distinct types, sorted by their text
    ("mixed collection", collection(str_value("a"), int_value(1)), list_of(union(INT, STR))),
    (
        "mixed nested collections flatten their unions",
        collection(collection(str_value("a"), int_value(1)), collection(primitive(boolean=True))),
        list_of(list_of(union(list_of(BOOL), INT, STR))),
    ),
    ("map", literal_map(a=int_value(1), b=int_value(2)), map_of(INT)),
    ("empty map", literal_map(), map_of(NONE)),
    (
        "offloaded",
        L.Literal(offloaded_metadata=L.LiteralOffloadedMetadata(inferred_type=list_of(INT))),
        list_of(INT),
    ),
]


@pytest.mark.parametrize(
    ("literal", "expected"),
    [case[1:] for case in INFERENCE],
    ids=[case[0] for case in INFERENCE],
)
def test_literal_type_of(literal: L.Literal, expected: T.LiteralType) -> None:
    assert literal_type_of(literal) == expected


@pytest.mark.parametrize(
    "literal",
    [
        L.Literal(),
        scalar(blob=L.Blob(uri="s3://x")),
        collection(int_value(1), L.Literal()),
        L.Literal(offloaded_metadata=L.LiteralOffloadedMetadata(uri="s3://x")),
    ],
    ids=["unset", "blob without metadata", "collection with unknown", "offloaded without type"],
)
def test_literal_type_of_unknown(literal: L.Literal) -> None:
    assert literal_type_of(literal) is None
