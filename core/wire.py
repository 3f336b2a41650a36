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

from collections.abc import Callable, Iterable
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


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(message_type: type[Message], name: str, kind: int) -> tuple[int, bytes]:
    """(number, the tag of a length-delimited field ``name``), checking the field's type."""
    field = message_type.DESCRIPTOR.fields_by_name[name]
    if field.type != kind:
        raise TypeError(f"{message_type.__name__}.{name} is not of the expected type")
    return field.number, _varint(field.number << 3 | 2)


class ListShape(Generic[M]):
    """A flyteidl list message (``message_type``: repeated ``items_field``, then ``token``) put
    together from its items' bytes. An item is kept framed (its field's tag and length before
    it), so a page is one join."""

    def __init__(self, message_type: type[M], items_field: str) -> None:
        self.message_type = message_type
        number, self._item_tag = _tag(message_type, items_field, FieldDescriptor.TYPE_MESSAGE)
        token_number, self._token_tag = _tag(message_type, "token", FieldDescriptor.TYPE_STRING)
        if token_number < number:  # serializers write fields in number order
            raise TypeError(f"{message_type.__name__}: the token comes before the items")

    def item(self, data: bytes) -> bytes:
        """An item message's serialized bytes, framed as one entry of the list."""
        return self._item_tag + _varint(len(data)) + data

    def kept(self, memo: dict[Any, Any], make: Callable[[], Message], *variant: Any) -> bytes:
        """``item(make())``, made once per stored version (``memo`` is its ``Stored.memo``) and
        ``variant``: what else than the version the item's form depends on, if anything."""
        key = (self, *variant)
        try:
            entry: bytes = memo[key]
        except KeyError:
            entry = memo[key] = self.item(make().SerializeToString())
        return entry

    def page(self, items: Iterable[bytes], token: str = "") -> Encoded[M]:
        """``message_type(<items>, token=token)`` on the wire, ``items`` framed by ``item`` or
        ``kept``: the bytes serializing the built message gives (an empty token left out)."""
        data = b"".join(items)
        if token:
            text = token.encode()
            data += self._token_tag + _varint(len(text)) + text
        return Encoded(self.message_type, data)
