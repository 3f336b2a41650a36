"""How Go writes the values propeller's types hold, so our JSON is byte-for-byte comparable.

Three encoders meet in a FlyteWorkflow: ``jsonpb`` (camelCase, enum names, int64 as strings) for
the wrapped protobuf types with a custom MarshalJSON; plain ``encoding/json`` over generated proto
structs (proto field names, enums as ints) where a wrapper has none; and Go's own ``String()``
methods (durations, ``prototext`` identifiers used as map keys).
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from typing import Any

from flyteidl.core import identifier_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

_INVALID_LABEL_CHARS = re.compile(r"[^-a-z0-9]+")
_DNS1123_LABEL_MAX = 63
_SECOND = 1_000_000_000


def jsonpb(message: Message) -> dict[str, Any]:
    """``flytestdlib/utils.MarshalPbToBytes``: jsonpb.Marshaler{} defaults."""
    return json_format.MessageToDict(message)


def go_struct_json(message: Message) -> dict[str, Any]:
    """``encoding/json`` over a generated proto struct: json tags are the proto names with
    omitempty, enums are plain ints. Exact for messages without oneofs, int64 or WKTs."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, use_integers_for_enums=True
    )


def go_duration(nanos: int) -> str:
    """``time.Duration.String()`` (what ``metav1.Duration`` marshals to): ``1h0m0s``, ``1.5s``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    u = abs(nanos)
    if u < _SECOND:
        unit, prec = ("ns", 0) if u < 1_000 else ("µs", 3) if u < 1_000_000 else ("ms", 6)
        return sign + _with_fraction(u, prec) + unit
    seconds, frac = divmod(u, _SECOND)
    out = f"{seconds % 60}{_fraction(frac, 9)}s"
    minutes = seconds // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        if minutes // 60:
            out = f"{minutes // 60}h{out}"
    return sign + out


def _with_fraction(value: int, prec: int) -> str:
    whole, frac = divmod(value, 10**prec)
    return f"{whole}{_fraction(frac, prec)}"


def _fraction(frac: int, prec: int) -> str:
    return "." + f"{frac:0{prec}d}".rstrip("0") if frac else ""


def float32_json(value: float) -> float:
    """A Go ``float32`` marshals with the fewest digits that round-trip at 32 bits (0.7, not
    Python's 0.699999988079071)."""
    exact: float = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        short = float(f"{exact:.{digits}g}")
        if struct.unpack("f", struct.pack("f", short))[0] == exact:
            return short
    return exact


def metav1_time(when: dt.datetime) -> str:
    """``metav1.Time`` JSON: RFC 3339 in UTC, whole seconds."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text_string(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def identifier_key(ident: identifier_pb2.Identifier) -> str:
    """Go's ``Identifier.String()`` (compact prototext), propeller's key for tasks and
    sub-workflows. Go randomly doubles some separators per binary (detrand); propeller only
    looks keys up in the same object, so the single-space form is equivalent."""
    parts = []
    if ident.resource_type:
        parts.append(f"resource_type:{identifier_pb2.ResourceType.Name(ident.resource_type)}")
    for name in ("project", "domain", "name", "version", "org"):
        value = getattr(ident, name)
        if value:
            parts.append(f"{name}:{_text_string(value)}")
    return " ".join(parts)


def workflow_id_string(ident: identifier_pb2.Identifier) -> str:
    """``WorkflowIDAsString``: ``project:domain:name`` (no version)."""
    return f"{ident.project}:{ident.domain}:{ident.name}"


def sanitize_label_value(name: str) -> str:
    """``utils.SanitizeLabelValue``: lower case, runs of invalid characters -> ``-``, cut to 63,
    then dashes trimmed from both ends."""
    name = _INVALID_LABEL_CHARS.sub("-", name.lower())[:_DNS1123_LABEL_MAX]
    return name.strip("-")


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value
