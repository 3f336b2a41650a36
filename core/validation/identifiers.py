"""Identifier checks (flyteadmin-behaviour.md §1.3, "IV"), pure.

Messages are flyteadmin's. Where it prints a proto message with Go's ``%v`` (an identifier in
brackets, a literal type), ``proto_text`` renders Go's compact text format, so clients see the
same ``[resource_type:TASK project:"p" ...]`` as from flyteadmin.
"""

from __future__ import annotations

from flyteidl.admin import common_pb2
from flyteidl.core import identifier_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from flyteadmin.core.errors import invalid_argument, invalid_value, missing

ResourceType = identifier_pb2.ResourceType


def resource_type_name(resource_type: int) -> str:
    """Lower-case enum name as flyteadmin prints it (``launch_plan``); the number if unknown."""
    try:
        return ResourceType.Name(resource_type).lower()
    except ValueError:
        return str(resource_type)


def validate_identifier_fields(identifier: identifier_pb2.Identifier | None) -> None:
    if identifier is None:
        raise missing("id")
    for field in ("project", "domain", "name", "version"):
        if not getattr(identifier, field):
            raise missing(field)


def validate_identifier(
    identifier: identifier_pb2.Identifier | None, expected: identifier_pb2.ResourceType
) -> None:
    """IV: present, of the expected type, and project, domain, name and version set."""
    if identifier is None:
        raise missing("id")
    if identifier.resource_type != expected:
        raise invalid_argument(
            f"unexpected resource type {resource_type_name(identifier.resource_type)} for "
            f"identifier [{proto_text(identifier)}], expected {resource_type_name(expected)} "
            "instead"
        )
    validate_identifier_fields(identifier)


def fill_resource_type(
    identifier: identifier_pb2.Identifier, resource_type: identifier_pb2.ResourceType
) -> identifier_pb2.Identifier:
    """A copy with ``resource_type`` set when UNSPECIFIED: the Get RPCs' URLs imply the type."""
    filled = identifier_pb2.Identifier()
    filled.CopyFrom(identifier)
    if filled.resource_type == ResourceType.UNSPECIFIED:
        filled.resource_type = resource_type
    return filled


def validate_object_get_request(
    request: common_pb2.ObjectGetRequest,
    default: identifier_pb2.ResourceType,
    *,
    any_type: bool = False,
) -> identifier_pb2.Identifier:
    """GetTask/GetWorkflow/GetLaunchPlan (``default`` is their type) and GetDescriptionEntity
    (``default`` TASK, ``any_type=True``): fill an UNSPECIFIED type, then IV. Returns the filled id.

    flyteadmin only logs these errors for GetTask (§15 quirk 1); we return them.
    """
    if not request.HasField("id"):
        raise missing("id")
    identifier = fill_resource_type(request.id, default)
    if any_type:
        validate_identifier_fields(identifier)
    else:
        validate_identifier(identifier, default)
    return identifier


def validate_named_entity_identifier(
    identifier: common_pb2.NamedEntityIdentifier | None,
) -> None:
    if identifier is None:
        raise missing("id")
    for field in ("project", "domain", "name"):
        if not getattr(identifier, field):
            raise missing(field)


def validate_resource_type(resource_type: int) -> None:
    """A resource type a request names must be a real one (not UNSPECIFIED)."""
    if resource_type == ResourceType.UNSPECIFIED:
        raise invalid_value("resource_type")


def proto_text(message: Message) -> str:
    """Go's compact prototext (``%v`` of a message): ``name:value`` pairs, set fields only."""
    parts = []
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry_class = message_factory.GetMessageClass(field.message_type)
            for key in sorted(value):
                entry = entry_class(key=key, value=value[key])
                parts.append(f"{field.name}:{{{proto_text(entry)}}}")
        elif field.is_repeated:
            parts.extend(f"{field.name}:{_scalar_text(field, item)}" for item in value)
        else:
            parts.append(f"{field.name}:{_scalar_text(field, value)}")
    return " ".join(parts)


def _scalar_text(field: FieldDescriptor, value: object) -> str:
    if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        assert isinstance(value, Message)
        return f"{{{proto_text(value)}}}"
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None and isinstance(value, int)
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else str(value)
    if field.type == FieldDescriptor.TYPE_STRING:
        return _quote(str(value))
    if field.type == FieldDescriptor.TYPE_BYTES:
        assert isinstance(value, bytes)
        return _quote(value.decode("latin-1"))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
