"""Object names of the custom resources: deterministic, DNS-1123, at most 63 characters.

Flyte ids are not DNS names (``my_module.my_task``, upper case, long versions), so a name is a
readable slug of the id plus a hash of *all* its fields (docs/storage.md). The same id always
gives the same name, so a duplicate create is an AlreadyExists from the apiserver itself; the
real id is kept in the object's spec, and callers compare it on AlreadyExists to tell a true
duplicate from a (40-bit) hash collision.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
_HASH_CHARS = 10
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


def slug(text: str) -> str:
    """``My_Module.my_task`` -> ``my-module-my-task``."""
    return _DASHES.sub("-", _NOT_DNS.sub("-", text.lower())).strip("-")


def id_hash(*fields: str) -> str:
    return hashlib.sha256("\x00".join(fields).encode()).hexdigest()[:_HASH_CHARS]


def object_name(readable: list[str], *fields: str) -> str:
    """``<slug of readable parts, cut to fit>-<hash of fields>``; ``fields`` is the full id."""
    room = MAX_NAME - _HASH_CHARS - 1
    parts = [s for s in (slug(p) for p in readable) if s]
    text = "-".join(parts)[:room].strip("-")
    digest = id_hash(*fields)
    return f"{text}-{digest}" if text else f"x-{digest}"
