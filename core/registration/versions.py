"""What every registered version shares: digests, the identity rule, and readable diffs.

The identity rule (flyteadmin §3.1 step 13, §3.2 step 9, §4.1 step 12): registering an id
that exists with an identical definition is AlreadyExists (clients treat it as success); with a
different definition it is InvalidArgument naming what differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from google.protobuf.message import Message

from flyteadmin.core.crmap.protojson import to_json
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import AdminError, Code, already_exists, invalid_argument
from flyteadmin.core.registration.payloads import Offloader
from flyteadmin.core.store import AlreadyExists, Collection, Stored

MAX_DIFF_LINES = 40


def digest(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()


def _walk_diff(old: Any, new: Any, path: str) -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _walk_diff(old.get(key), new.get(key), f"{path}/{key}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _walk_diff(a, b, f"{path}/{i}")
    elif old != new:
        yield f"{path or '/'}:\n\t- {old!r}\n\t+ {new!r}"


def describe_diff(old: Message, new: Message) -> str:
    lines = list(_walk_diff(to_json(old), to_json(new), ""))
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"... and {len(lines) - MAX_DIFF_LINES} more"]
    return "\n".join(lines)


_REFUSALS = frozenset(
    {Code.INVALID_ARGUMENT, Code.RESOURCE_EXHAUSTED, Code.FAILED_PRECONDITION, Code.NOT_FOUND}
)


@dataclass(frozen=True)
class IdentityRule:
    what: str
    """"task", "workflow", "launch plan": used in the messages."""
    payload: Callable[[Registered[Any]], Message]
    """The part of a version whose differences are reported."""
    identical_details: Sequence[Message] = ()
    different_details: Sequence[Message] = ()


async def create_version(
    collection: Collection[Registered[Any]],
    value: Registered[Any],
    rule: IdentityRule,
    offloader: Offloader[Any] | None = None,
    first: Callable[[], Awaitable[None]] | None = None,
) -> Stored[Registered[Any]]:
    """Create ``value``; on a name conflict apply the identity rule against what is stored.

    A version that exists is refused before anything is written. Otherwise ``first`` runs
    (e.g. writing a description too large to keep in the version), then a large closure goes to
    the blob store (``offloader``), then the object is created; a blob written for a create that
    fails is deleted again."""
    name = collection.codec.name(value)
    existing = collection.get(name)
    if existing is None:
        if first is not None:
            await first()
        stored = await offloader.offload(value) if offloader else value
        try:
            return await collection.create(stored)
        except AlreadyExists:
            existing = collection.get(name) or await collection.read_through(name)
            if offloader:
                await offloader.discard(stored, existing.value if existing else None)
            if existing is None:  # deleted in between: the client's retry will create it
                raise
        except AdminError as error:
            # Only a refusal is known not to have stored the object; after a timeout or an
            # unavailable apiserver it may exist, and it would lose its closure.
            if offloader and error.code in _REFUSALS:
                await offloader.discard(stored, None)
            raise
    await _refuse(existing, value, rule, offloader, name)


async def _refuse(
    existing: Stored[Registered[Any]],
    value: Registered[Any],
    rule: IdentityRule,
    offloader: Offloader[Any] | None,
    name: str,
) -> NoReturn:
    """The identity rule for a version that exists: AlreadyExists when identical, else
    InvalidArgument with what differs (from the whole stored definition)."""
    if existing.value.key != value.key:
        raise AdminError(
            Code.INTERNAL, f"object name {name} is taken by {existing.value.key} (hash collision)"
        )
    if existing.value.digest == value.digest:
        raise already_exists(
            f"{rule.what} with identical structure already exists", *rule.identical_details
        )
    full = await offloader.full(existing.value) if offloader else existing.value.message
    diff = describe_diff(rule.payload(replace(existing.value, message=full)), rule.payload(value))
    raise invalid_argument(
        f"{value.id.name} {rule.what} with different structure already exists. "
        f"(Please register a new version of the {rule.what}):\n{diff}",
        *rule.different_details,
    )
