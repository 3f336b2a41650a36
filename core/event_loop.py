"""The event loop every process of the product runs its coroutines on (``event_loop``).

uvloop (libuv) by default: the API server, its workers and the operator spend much of each
call in the loop's own machinery (callbacks, transports, the Kubernetes API's TLS sockets), and
uvloop does that in C (bench/README.md, "Event loop"). ``asyncio`` is the standard library's
loop, for a platform uvloop does not support or to rule it out when debugging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOOPS = ("uvloop", "asyncio")


def run(main: Coroutine[Any, Any, T], loop: str) -> T:
    """``asyncio.run`` on the configured loop."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
