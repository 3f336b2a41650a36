"""The one error type of the control plane.

Everything a handler or the core raises for a client is an ``AdminError``: a status code, a
message written for the client (flyteadmin's wording where clients or users know it), and
optional proto ``details`` (e.g. ``admin.CreateWorkflowFailureReason``). The front doors turn it
into a gRPC status or a ``google.rpc.Status`` HTTP body in one place each; anything else that
escapes a handler is a bug and becomes INTERNAL, never UNKNOWN (flytekit treats UNKNOWN as an
expired token and starts a login).

The core does not import grpc: ``Code`` mirrors the gRPC code numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from google.protobuf.message import Message

# gRPC truncates nothing itself, but flyteadmin caps messages so that status trailers stay small.
MAX_MESSAGE_BYTES = 32_000


class Code(enum.IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class AdminError(Exception):
    """A failure with a status code meant for the client."""

    def __init__(self, code: Code, message: str, details: Sequence[Message] = ()) -> None:
        encoded = message.encode()
        if len(encoded) > MAX_MESSAGE_BYTES:
            # Like flyteadmin: a truncated message drops its details.
            message = encoded[:MAX_MESSAGE_BYTES].decode(errors="ignore")
            details = ()
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)

    def __repr__(self) -> str:
        return f"AdminError({self.code.name}, {self.message!r})"


QUOTE_LIMIT = 100


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Client input as a message may show it: at most ``limit`` characters, then "...". A
    message must stay readable (gRPC sends it in a trailer, where a default client accepts
    8-16 KiB in all) whatever the input's size."""
    return text if len(text) <= limit else text[:limit] + "..."


def invalid_argument(message: str, *details: Message) -> AdminError:
    return AdminError(Code.INVALID_ARGUMENT, message, details)


def not_found(message: str) -> AdminError:
    return AdminError(Code.NOT_FOUND, message)


def already_exists(message: str, *details: Message) -> AdminError:
    return AdminError(Code.ALREADY_EXISTS, message, details)


def failed_precondition(message: str, *details: Message) -> AdminError:
    return AdminError(Code.FAILED_PRECONDITION, message, details)


def unimplemented(message: str) -> AdminError:
    return AdminError(Code.UNIMPLEMENTED, message)


def missing(field: str) -> AdminError:
    """flyteadmin's wording for an absent required field."""
    return invalid_argument(f"missing {field}")


def invalid_value(field: str) -> AdminError:
    """flyteadmin's wording for a present but unacceptable field."""
    return invalid_argument(f"invalid value for {field}")
