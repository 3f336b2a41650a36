"""Waiting for the cluster to converge: a liveness bound, never a timing assertion."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None],
    what: str = "the condition",
    timeout: float = 30.0,
    interval: float = 0.05,
) -> T:
    """Call ``check`` until it returns something truthy and return that; fail the test with
    ``what`` if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
