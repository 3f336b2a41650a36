"""Readiness of a process that holds watch caches (the API server, the operator): what
``/readyz`` of the metrics port (flyteadmin/metrics_server.py) answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

READY_TIMEOUT_SECONDS = 2.0
# Probes come every few seconds from each kubelet and scraper; one apiserver check serves
# the probes of this long.
READY_CACHE_SECONDS = 1.0


class Readiness:
    """Ready: every watch cache synced, kube-apiserver reachable (through ``http``, the store's
    own client where there is one, so its credentials and network path are the ones checked),
    and ``also`` (any further check) reporting nothing."""

    def __init__(
        self,
        collections: Sequence[Any],
        http: Any,
        also: Callable[[], list[str]] | None = None,
    ) -> None:
        self.collections = collections  # read at each check: a Backend may add one
        self.http = http
        self.also = also
        self._last: tuple[float, list[str]] | None = None

    async def problems(self) -> list[str]:
        """Why this process is not ready; empty when it is."""
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < READY_CACHE_SECONDS:
            return self._last[1]
        found = [
            f"the {c.kind.plural} cache has not synced" for c in self.collections
            if not c.wait_synced(0)
        ]  # fmt: skip
        if self.also is not None:
            found += self.also()
        try:
            await asyncio.wait_for(self.http.request("GET", "/readyz"), READY_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - any failure means not reachable
            found.append(f"kube-apiserver is not reachable: {exc!r}")
        self._last = (time.monotonic(), found)
        return found
