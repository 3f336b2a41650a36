"""What a handler knows about the call it serves, whichever door (gRPC or HTTP) it came through."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

from google.protobuf.message import Message

from flyteadmin.core.auth.tokens import Identity

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
            request_id=lowered.get("x-request-id") or new_request_id(),
            identity=identity,
        )


# A transport-neutral RPC implementation: request message in, response message out; failures
# are raised as core.errors.AdminError.
Handler = Callable[[Message, CallContext], Awaitable[Message]]
