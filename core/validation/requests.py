"""Checks every request passes before its handler, whatever the RPC (issue 12 §1, §2).

- Every enum field holds a number its enum defines. Protobuf 3 enums are open, so the wire
  carries any number; one the IDL does not define (``Project.state = 99``, an event's
  ``phase = 99``) would otherwise be stored and fail later, or be misread as something else.
- Identifier fields (project, domain, name, version, org, node and signal ids) are at most
  ``MAX_ID_LENGTH`` characters. flyteadmin's database columns take any text; the names are
  hashed into object names here, but ids are echoed in messages, labels and blob paths, and a
  megabyte id serves no one.

The walk visits only fields that are set, and skips google.protobuf's own types (Struct, Any,
...), whose only enum is NullValue; it is generated once per message type.
"""

from __future__ import annotations

from functools import cache

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from flyteadmin.core.errors import invalid_argument

MAX_ID_LENGTH = 255

# String fields bounded to MAX_ID_LENGTH: those of the identifier messages, and the project,
# domain and org of any message (requests name them at the top level too).
_ID_FIELDS: dict[str, frozenset[str]] = {
    "flyteidl.core.Identifier": frozenset({"project", "domain", "name", "version", "org"}),
    "flyteidl.core.WorkflowExecutionIdentifier": frozenset({"project", "domain", "name", "org"}),
    "flyteidl.core.NodeExecutionIdentifier": frozenset({"node_id"}),
    "flyteidl.core.SignalIdentifier": frozenset({"signal_id"}),
    "flyteidl.admin.NamedEntityIdentifier": frozenset({"project", "domain", "name", "org"}),
}
_EVERYWHERE = frozenset({"project", "domain", "org"})


def check_request(request: Message) -> None:
    """Raise InvalidArgument naming the first field that breaks a rule above."""
    problem = _problem(request)
    if problem is not None:
        what, path = problem
        raise invalid_argument(f"invalid value for {'.'.join(reversed(path))}: {what}")


# A problem: what is wrong, and the path to the field from the innermost name out (built only
# when there is one: every request is checked, and nearly all pass).
_Problem = tuple[str, list[str]]


def _problem(message: Message) -> _Problem | None:
    plan = _plan(message.DESCRIPTOR)
    for fd, value in message.ListFields():
        step = plan.get(fd)
        if step is None:
            continue
        kind, defined, repeated = step
        found: _Problem | None = None
        if kind is _ENUM:
            for number in value if repeated else (value,):
                if number not in defined:
                    assert fd.enum_type is not None  # an enum field has its enum's descriptor
                    found = (f"{number} is not a value of {fd.enum_type.full_name}", [])
                    break
        elif kind is _ID:
            if len(value) > MAX_ID_LENGTH:
                found = (f"{len(value)} characters, at most {MAX_ID_LENGTH}", [])
        else:
            items = value.values() if kind is _MAP else value if repeated else (value,)
            for item in items:
                found = _problem(item)
                if found is not None:
                    break
        if found is not None:
            found[1].append(fd.name)
            return found
    return None


_ENUM, _ID, _MESSAGE, _MAP = "enum", "id", "message", "map"
# What to check in a field: its kind, an enum's numbers, whether it is repeated.
_Step = tuple[str, frozenset[int], bool]


@cache
def _plan(descriptor: Descriptor) -> dict[FieldDescriptor, _Step]:
    """Field -> what to check, for the fields of ``descriptor`` that need a look (keyed by the
    descriptor object that ``ListFields`` hands out: no name to read per field)."""
    ids = _ID_FIELDS.get(descriptor.full_name, frozenset()) | _EVERYWHERE
    plan: dict[FieldDescriptor, _Step] = {}
    for fd in descriptor.fields:
        repeated = fd.is_repeated
        if fd.type == FieldDescriptor.TYPE_ENUM:
            assert fd.enum_type is not None  # an enum field has its enum's descriptor
            plan[fd] = (_ENUM, frozenset(v.number for v in fd.enum_type.values), repeated)
        elif fd.type == FieldDescriptor.TYPE_STRING and fd.name in ids:
            plan[fd] = (_ID, _NONE, repeated)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            target = fd.message_type
            assert target is not None  # a message field has its message's descriptor
            if target.GetOptions().map_entry:
                value = target.fields_by_name["value"]
                if (
                    value.type == FieldDescriptor.TYPE_MESSAGE
                    and value.message_type is not None
                    and _worth_visiting(value.message_type)
                ):
                    plan[fd] = (_MAP, _NONE, repeated)
            elif _worth_visiting(target):
                plan[fd] = (_MESSAGE, _NONE, repeated)
    return plan


_NONE: frozenset[int] = frozenset()


def _worth_visiting(descriptor: Descriptor) -> bool:
    return not descriptor.full_name.startswith("google.protobuf.")
