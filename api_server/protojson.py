"""Messages as JSON the way flyteadmin's grpc-gateway marshalers write them (protojson with
EmitUnpopulated): every field, unset ones with their zero value, and an unset message field
outside a oneof as ``null``.

Python's printer (``always_print_fields_with_no_presence``) matches that except for the nulls:
it leaves unset message fields out. They are added here, at every depth.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

# Well-known types print as a string, a number or a bare value: no fields of theirs to add.
_OPAQUE = frozenset(
    f"google.protobuf.{name}"
    for name in (
        "Struct", "Value", "ListValue", "Empty", "Timestamp", "Duration", "FieldMask",
        "DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value",
        "BoolValue", "StringValue", "BytesValue",
    )
)  # fmt: skip
_ANY = "google.protobuf.Any"


def to_json(message: Message, *, proto_names: bool) -> bytes:
    """``message`` as compact UTF-8 JSON, keyed by proto field names or lowerCamelCase names."""
    tree = json_format.MessageToDict(
        message, preserving_proto_field_name=proto_names, always_print_fields_with_no_presence=True
    )
    _add_nulls(message, tree, proto_names)
    return json.dumps(tree, ensure_ascii=False, separators=(",", ":")).encode()


@functools.cache
def _message_fields(descriptor: Descriptor) -> tuple[tuple[FieldDescriptor, bool], ...]:
    """(field, is a map) for every field holding messages (maps: whose values are messages)."""
    fields = []
    for fd in descriptor.fields:
        if fd.message_type is None:
            continue
        is_map = fd.message_type.GetOptions().map_entry
        if is_map and fd.message_type.fields_by_name["value"].message_type is None:
            continue
        fields.append((fd, is_map))
    return tuple(fields)


def _add_nulls(message: Message, tree: dict[str, Any], proto_names: bool) -> None:
    name = message.DESCRIPTOR.full_name
    if name in _OPAQUE:
        return
    if name == _ANY:
        assert isinstance(message, any_pb2.Any)
        _add_nulls_in_any(message, tree, proto_names)
        return
    for fd, is_map in _message_fields(message.DESCRIPTOR):
        key = fd.name if proto_names else fd.json_name
        value = getattr(message, fd.name)
        if is_map:
            for map_key, item in value.items():
                text = str(map_key).lower() if isinstance(map_key, bool) else str(map_key)
                _add_nulls(item, tree[key][text], proto_names)
        elif fd.is_repeated:
            for item, item_tree in zip(value, tree[key], strict=True):
                _add_nulls(item, item_tree, proto_names)
        elif message.HasField(fd.name):
            _add_nulls(value, tree[key], proto_names)
        elif fd.containing_oneof is None:
            tree[key] = None


def _add_nulls_in_any(message: any_pb2.Any, tree: dict[str, Any], proto_names: bool) -> None:
    """An Any prints its message's fields beside ``@type`` (a well-known type: under ``value``)."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(message.TypeName())
    except KeyError:
        return  # the printer could not have resolved it either
    inner = message_factory.GetMessageClass(descriptor)()
    if descriptor.full_name not in _OPAQUE and message.Unpack(inner):
        _add_nulls(inner, tree, proto_names)
