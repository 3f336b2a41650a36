"""What a handler knows about the call it serves, whichever door (gRPC or HTTP) it came through."""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from google.protobuf.message import Message

_ALPHABET = string.ascii_lowercase + string.digits


def new_request_id() -> str:
    """flyteadmin's format: ``a-`` and 20 random characters."""
    return "a-" + "".join(secrets.choice(_ALPHABET) for _ in range(20))


@dataclass
class CallContext:
    # Lower-cased metadata keys (gRPC metadata or HTTP headers).
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The authenticated subject; empty when authentication is off.
    principal: str = ""
    request_id: str = field(default_factory=new_request_id)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> CallContext:
        lowered = {k.lower(): v for k, v in metadata.items()}
        return cls(metadata=lowered, request_id=lowered.get("x-request-id") or new_request_id())


# A transport-neutral RPC implementation: request message in, response message out; failures
# are raised as core.errors.AdminError.
Handler = Callable[[Message, CallContext], Awaitable[Message]]
