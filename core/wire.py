"""List answers in protobuf's wire form, assembled from bytes each stored version keeps.

A list RPC answers up to 100 records. Building the response message copies every item into
it (upb copies a message it is given for a repeated field), and grpc then serializes the
whole list again: 0.7 ms of a 100-execution ListExecutions, about half of what the API server
spent on the call (bench/README.md, "List answers from wire bytes"). A stored version never
changes (core/store.py ``Stored``), so each item's serialized form is made once, kept in the
version's ``memo``, and a page is the concatenation of its items' bytes: a repeated message
field on the wire is just one length-delimited entry per item, in order.

``Encoded`` is what such a list handler returns. The gRPC door sends its bytes as they are;
the HTTP gateway, which answers JSON, parses them back into the message first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class Encoded(Generic[M]):
    """A response already serialized: ``data`` is a valid ``message_type`` on the wire."""

    message_type: type[M]
    data: bytes

    def message(self) -> M:
        return self.message_type.FromString(self.data)


def message_of(response: Message | Encoded[Any]) -> Message:
    """The response as a message, whichever form a handler returned it in."""
    return response.message() if isinstance(response, Encoded) else response


def serialized(response: Message | Encoded[Any]) -> bytes:
    return response.data if isinstance(response, Encoded) else response.SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _field(message_type: type[Message], name: str, kind: int) -> int:
    field = message_type.DESCRIPTOR.fields_by_name[name]
    if field.type != kind:
        raise TypeError(f"{message_type.__name__}.{name} is not of the expected type")
    return field.number


def page(
    message_type: type[M], items_field: str, items: Iterable[bytes], token: str = ""
) -> Encoded[M]:
    """``message_type(<items_field>=items, token=token)`` on the wire, ``items`` each an item
    message's serialized bytes. The same bytes as serializing the built message: fields in
    number order (items before the token in every flyteidl list), an empty token left out."""
    number = _field(message_type, items_field, FieldDescriptor.TYPE_MESSAGE)
    parts = [_length_delimited(number, item) for item in items]
    if token:
        token_number = _field(message_type, "token", FieldDescriptor.TYPE_STRING)
        if token_number < number:
            raise TypeError(f"{message_type.__name__}: the token comes before the items")
        parts.append(_length_delimited(token_number, token.encode()))
    return Encoded(message_type, b"".join(parts))


def kept(memo: dict[Any, Any], key: Any, make: Callable[[], Message]) -> bytes:
    """``make()`` serialized, made once per stored version (``memo`` is its ``Stored.memo``)."""
    try:
        data: bytes = memo[key]
    except KeyError:
        data = memo[key] = make().SerializeToString()
    return data


async def kept_async(
    memo: dict[Any, Any], key: Any, make: Callable[[], Awaitable[Message]]
) -> bytes:
    """``kept`` for an item that takes a wait to make (e.g. a payload from the blob store)."""
    try:
        data: bytes = memo[key]
    except KeyError:
        data = memo[key] = (await make()).SerializeToString()
    return data
