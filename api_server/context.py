"""What a handler knows about the call it serves, whichever door (gRPC or HTTP) it came through."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from flyteadmin.core.auth.tokens import Identity
from flyteadmin.core.logs import current_request_id
from flyteadmin.core.wire import Encoded

# The caller that the door's authentication (gRPC interceptor, HTTP middleware) verified for the
# call in progress; None when authentication is off or the method is anonymous.
CALLER: ContextVar[Identity | None] = ContextVar("flyteadmin_caller", default=None)

# With authentication off every call is made by one local user (docs/auth.md): executions record
# it as their principal and `/me` describes it, so flyteconsole's "only my executions" filter
# (`eq(user,<subject of /me>)`) finds what was started here.
ANONYMOUS = Identity(
    subject="anonymous",
    claims={"sub": "anonymous", "name": "Anonymous", "preferred_username": "anonymous"},
)


def metadata_of(pairs: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    """gRPC invocation metadata as a dict with lower-cased keys (binary values left out)."""
    return {k.lower(): v for k, v in pairs or () if isinstance(v, str)}


# Where a call's request id travels: gRPC metadata key (lower case), HTTP header.
REQUEST_ID_KEY = "x-request-id"
REQUEST_ID_HEADER = "X-Request-Id"


def new_request_id() -> str:
    """flyteadmin's format: ``a-`` and 20 random characters (here hex digits: cheap to make)."""
    return "a-" + secrets.token_hex(10)


@dataclass
class CallContext:
    # Lower-cased metadata keys (gRPC metadata or HTTP headers).
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The authenticated subject; ANONYMOUS.subject when authentication is off.
    principal: str = ""
    request_id: str = field(default_factory=new_request_id)
    # The authenticated caller (claims, scopes); None when authentication is off.
    identity: Identity | None = None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> CallContext:
        lowered = {k.lower(): v for k, v in metadata.items()}
        identity = CALLER.get()
        return cls(
            metadata=lowered,
            principal=(identity or ANONYMOUS).subject,
            # The door's (api_server/telemetry.py), which it returned to the caller.
            request_id=current_request_id() or lowered.get(REQUEST_ID_KEY) or new_request_id(),
            identity=identity,
        )


# A transport-neutral RPC implementation: request message in, response message out (a list may
# answer with its message already serialized: core/wire.py, which each door handles); failures
# are raised as core.errors.AdminError. The request is the RPC's own message type (each door
# parses it from the method's descriptor), narrower than Message, so it is Any here: a
# Callable's parameter types cannot be narrowed per entry of one registry.
Response = Message | Encoded[Any]
Handler = Callable[[Any, CallContext], Awaitable[Response]]
