"""Request generation for the fuzz test (pure): random, mutated and malformed requests of any
message type, built from its descriptor with a seeded ``random.Random`` so every run sends the
same bounded set of cases."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

F = FieldDescriptor
_INT_EXTREMES = {
    F.TYPE_INT32: (2**31 - 1, -(2**31), -1),
    F.TYPE_SINT32: (2**31 - 1, -(2**31), -1),
    F.TYPE_SFIXED32: (2**31 - 1, -(2**31), -1),
    F.TYPE_INT64: (2**63 - 1, -(2**63), -1),
    F.TYPE_SINT64: (2**63 - 1, -(2**63), -1),
    F.TYPE_SFIXED64: (2**63 - 1, -(2**63), -1),
    F.TYPE_UINT32: (2**32 - 1, 0),
    F.TYPE_FIXED32: (2**32 - 1, 0),
    F.TYPE_UINT64: (2**64 - 1, 0),
    F.TYPE_FIXED64: (2**64 - 1, 0),
}
BIG = 1_000_000  # a 1 MB string, like the 1 MB id
_STRINGS = (
    "x" * 20_000,  # 20 KB: more than a default client's metadata limit if echoed
    "é" * 6_000,  # non-ASCII: percent-encoded threefold in grpc-message
    "(" * 1500 + ")" * 1500,  # the filter parser's old worst case
    "eq(a,b" * 100,
    "a%a%a%a%a%a%a%a%b",
    "../../etc/passwd",
    "UPPER_case.Name",
    "",
)
_WELL_KNOWN_OUT_OF_RANGE = {
    "google.protobuf.Timestamp": [{"seconds": 2**62}, {"nanos": -1}, {"seconds": -(2**40)}],
    "google.protobuf.Duration": [{"seconds": 2**62}, {"seconds": -5}, {"nanos": 2_000_000_000}],
}


@dataclass(frozen=True)
class Case:
    label: str  # what kind of case (counted in the report)
    data: bytes  # the serialized request (possibly not a valid message)
    message: Message | None  # the request when it is a valid message (for HTTP/JSON)


def _scalar(fd: FieldDescriptor, rng: random.Random):
    kind = fd.type
    if kind == F.TYPE_STRING:
        return rng.choice(("a", "flytesnacks", "development", "x.y-z", "0", "é"))
    if kind == F.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 24))
    if kind == F.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == F.TYPE_ENUM:
        values = [v.number for v in fd.enum_type.values]
        return rng.choice(values + [99])
    if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return rng.choice((0.0, 1.5, -3.0, 1e9))
    if kind in _INT_EXTREMES:
        return rng.choice((0, 1, 7, *_INT_EXTREMES[kind]))
    raise AssertionError(f"unexpected field type {kind}")


def random_message(descriptor: Descriptor, rng: random.Random, depth: int = 3) -> Message:
    """A message with a random subset of its fields set, nested ``depth`` levels deep."""
    message = GetMessageClass(descriptor)()
    _fill(message, rng, depth)
    return message


def _fill(message: Message, rng: random.Random, depth: int) -> None:
    for fd in message.DESCRIPTOR.fields:
        if rng.random() < 0.5:
            continue
        if fd.containing_oneof is not None and message.WhichOneof(fd.containing_oneof.name):
            continue
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if depth <= 0:
                continue
            entry = fd.message_type.fields_by_name
            key_fd, value_fd = entry["key"], entry["value"]
            container = getattr(message, fd.name)
            key = _scalar(key_fd, rng)
            if value_fd.message_type is not None:
                _fill(container[key], rng, depth - 1)
            else:
                container[key] = _scalar(value_fd, rng)
        elif fd.message_type is not None:
            if depth <= 0:
                continue
            if fd.is_repeated:
                for _ in range(rng.randint(1, 2)):
                    _fill(getattr(message, fd.name).add(), rng, depth - 1)
            else:
                sub = getattr(message, fd.name)
                sub.SetInParent()
                _fill(sub, rng, depth - 1)
        elif fd.is_repeated:
            getattr(message, fd.name).extend(_scalar(fd, rng) for _ in range(rng.randint(1, 3)))
        else:
            setattr(message, fd.name, _scalar(fd, rng))


Leaf = tuple[Message, FieldDescriptor, tuple[str, ...]]


def _leaves(message: Message, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """Every singular scalar field of ``message`` and of its set singular sub-messages, and every
    unset one at the top level (so an empty seed still has something to mutate)."""
    for fd in message.DESCRIPTOR.fields:
        if fd.is_repeated:
            if fd.message_type is not None and not fd.message_type.GetOptions().map_entry:
                for i, item in enumerate(getattr(message, fd.name)):
                    yield from _leaves(item, (*path, f"{fd.name}[{i}]"))
            continue
        if fd.message_type is not None:
            if message.HasField(fd.name):
                sub = getattr(message, fd.name)
                if sub.DESCRIPTOR.full_name in _WELL_KNOWN_OUT_OF_RANGE:
                    yield message, fd, (*path, fd.name)
                else:
                    yield from _leaves(sub, (*path, fd.name))
            elif fd.message_type.full_name in _WELL_KNOWN_OUT_OF_RANGE and not path:
                yield message, fd, (*path, fd.name)
            continue
        yield message, fd, (*path, fd.name)


def mutants(seed: Message, rng: random.Random, count: int) -> list[tuple[str, Message]]:
    """``count`` copies of ``seed``, each with one leaf set to an extreme or invalid value: an
    enum number no enum defines, integer bounds, NaN, huge or hostile strings, out-of-range
    timestamps and durations."""
    out: list[tuple[str, Message]] = []
    paths = [p for _, _, p in _leaves(seed)]
    if not paths:
        return out
    for _ in range(count):
        copy = type(seed)()
        copy.CopyFrom(seed)
        target = rng.choice(paths)
        parent, fd = _resolve(copy, target)
        label = _mutate(parent, fd, rng)
        out.append((f"{label} {'.'.join(target)}", copy))
    return out


def _resolve(message: Message, path: tuple[str, ...]) -> tuple[Message, FieldDescriptor]:
    for part in path[:-1]:
        if part.endswith("]"):
            name, index = part[:-1].split("[")
            message = getattr(message, name)[int(index)]
        else:
            message = getattr(message, part)
    return message, message.DESCRIPTOR.fields_by_name[path[-1]]


def _mutate(parent: Message, fd: FieldDescriptor, rng: random.Random) -> str:
    if fd.message_type is not None:  # Timestamp or Duration
        values = rng.choice(_WELL_KNOWN_OUT_OF_RANGE[fd.message_type.full_name])
        sub = getattr(parent, fd.name)
        for key, value in values.items():
            setattr(sub, key, value)
        return "out-of-range"
    kind = fd.type
    if kind == F.TYPE_ENUM:
        setattr(parent, fd.name, rng.choice((99, -7)))
        return "unknown-enum"
    if kind == F.TYPE_STRING:
        value = "y" * BIG if rng.random() < 0.15 else rng.choice(_STRINGS)
        setattr(parent, fd.name, value)
        return "oversized" if len(value) >= 20_000 else "hostile-string"
    if kind == F.TYPE_BYTES:
        setattr(parent, fd.name, rng.randbytes(rng.choice((0, 15, 17, 70_000))))
        return "bytes"
    if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        setattr(parent, fd.name, rng.choice((math.nan, math.inf, -1e300)))
        return "out-of-range"
    if kind == F.TYPE_BOOL:
        setattr(parent, fd.name, not getattr(parent, fd.name))
        return "flipped"
    setattr(parent, fd.name, rng.choice(_INT_EXTREMES[kind]))
    return "out-of-range"


def malformed(descriptor: Descriptor, seed: bytes, rng: random.Random) -> list[Case]:
    """Bytes that are not a valid serialization of the message."""
    cases = [
        Case("garbage", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01" + rng.randbytes(40), None),
        Case("garbage", rng.randbytes(64), None),
        # Field 1 as a length-delimited field with invalid UTF-8 (a string field must be UTF-8).
        Case("malformed-utf8", b"\x0a\x02\xff\xfe", None),
        # A length prefix running past the end.
        Case("malformed-truncated", b"\x0a\x7f\x61", None),
    ]
    if len(seed) > 4:
        cases.append(Case("malformed-truncated", seed[: len(seed) // 2 + 1], None))
    return cases
