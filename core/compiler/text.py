"""Literal types and messages as Go prints them in compiler messages.

``proto_text`` (Go's compact ``String()``, shared with the identifier checks) and
``literal_type_text``, propeller's ``LiteralTypeToStr``, which spells out dataclass structures.
"""

from __future__ import annotations

from flyteidl.core import types_pb2

from flyteadmin.core.validation.identifiers import proto_text

__all__ = ["literal_type_text", "proto_text"]


def literal_type_text(literal_type: types_pb2.LiteralType | None) -> str:
    """propeller's ``LiteralTypeToStr``: dataclass structures are spelled out for STRUCTs."""
    if literal_type is None:
        return "None"
    if literal_type.WhichOneof("type") == "simple" and literal_type.simple == types_pb2.STRUCT:
        fields = literal_type.structure.dataclass_type
        inner = ", ".join(
            f"dataclass_type:{{key:{key} value:{{{literal_type_text(fields[key])}}}"
            for key in sorted(fields)
        )
        return f"simple: STRUCT structure{{{inner}}}"
    return proto_text(literal_type)
