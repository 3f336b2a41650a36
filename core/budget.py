"""The etcd byte budget: never let the control plane fill etcd.

When etcd's database reaches its quota, etcd raises a NOSPACE alarm and refuses every write of
the whole cluster (Pods, leases, namespace deletions, not only ours) until someone compacts,
defragments and disarms it by hand. So the control plane estimates what it holds in etcd and acts
well before that:

- above ``etcd.archive_above`` (a share of the quota), finished executions move to history before
  their retention is over (the archiver asks ``pressure()``);
- above ``etcd.refuse_new_above``, new work (a new execution, project, registration, ...) is
  refused with RESOURCE_EXHAUSTED, while running executions still record their progress;
- above ``etcd.refuse_all_above``, every write but a delete is refused.

The estimate, from what the watch caches see (so every API-server worker and the operator agree):

    live bytes of every object + a per-object overhead
    + bytes of every revision written within two compaction intervals (etcd keeps old revisions
      until kube-apiserver compacts them: every 5 minutes by default, up to the revision it saw
      at the previous compaction)
    + FlyteWorkflow objects (kube-apiserver's count, from its metrics) x etcd.flyteworkflow_bytes:
      the operator creates one per execution in the control plane's cluster, and flytepropeller
      rewrites it while it runs, but no watch cache holds them

When kube-apiserver lets us read its metrics, etcd's real database size
(``apiserver_storage_size_bytes``) is followed too, but it does not decide: that file never
shrinks without a defragmentation (etcd reuses its free pages instead), so after a peak it would
refuse work for good even once archiving has freed the space. A large file is logged as an error
with the advice to defragment, and exported as a metric.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from dataclasses import dataclass

from flyteadmin.core.config import EtcdSettings
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.kube import KubeHttp

log = logging.getLogger(__name__)


class _Window:
    """Bytes written within the last ``seconds`` (a running sum over a queue)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: collections.deque[tuple[float, int]] = collections.deque()
        self._sum = 0
        self._lock = threading.Lock()

    def add(self, size: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._items.append((now, size))
            self._sum += size
            self._prune(now)

    def total(self, now: float | None = None) -> int:
        with self._lock:
            self._prune(time.monotonic() if now is None else now)
            return self._sum

    def _prune(self, now: float) -> None:
        items = self._items
        while items and now - items[0][0] > self.seconds:
            self._sum -= items.popleft()[1]


@dataclass(frozen=True)
class Usage:
    live_bytes: int
    objects: int
    recent_bytes: int  # revisions written within the compaction interval
    etcd_db_bytes: int  # etcd's database file size, 0 when unknown (reported, not deciding)
    estimate: int  # what decides
    quota: int

    @property
    def share(self) -> float:
        return self.estimate / self.quota if self.quota else 0.0


class StorageBudget:
    """Shared by the collections of one process: they report sizes, writers ask ``admit``."""

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        # kube-apiserver compacts, at each interval, up to the revision it saw at the previous
        # one: old revisions stay in etcd between one and two intervals.
        self._window = _Window(2 * settings.compaction_interval_seconds)
        self._live: dict[str, tuple[int, int]] = {}  # kind -> (bytes, objects)
        self.etcd_db_bytes = 0
        self.flyteworkflows = 0  # FlyteWorkflow objects in etcd (kube-apiserver's count)
        self._last_error_log = 0.0

    # ----------------------------------------------------------------------------- reports

    def set_live(self, kind: str, size: int, objects: int) -> None:
        self._live[kind] = (size, objects)

    def written(self, size: int) -> None:
        """A revision of ``size`` bytes was written (seen on a watch). Its value is what etcd
        keeps until compaction; the per-object overhead (key index, lease, bbolt pages) is
        counted for live objects only: with it on every revision too the estimate ran at about
        1.4 times etcd's in-use size under bench.archive's event load."""
        self._window.add(size)

    # ----------------------------------------------------------------------------- decisions

    def usage(self) -> Usage:
        live = sum(size for size, _ in self._live.values())
        live += self.flyteworkflows * self.settings.flyteworkflow_bytes
        objects = sum(count for _, count in self._live.values()) + self.flyteworkflows
        recent = self._window.total()
        estimate = live + objects * self.settings.object_overhead_bytes + recent
        return Usage(live, objects, recent, self.etcd_db_bytes, estimate, self.settings.quota_bytes)

    def pressure(self) -> float:
        """The estimate as a share of the quota."""
        return self.usage().share

    def admit(self, kind: str, *, new_work: bool) -> None:
        """Raise RESOURCE_EXHAUSTED when a write of ``kind`` must be refused now."""
        settings = self.settings
        usage = self.usage()
        limit = settings.refuse_new_above if new_work else settings.refuse_all_above
        if usage.share < limit:
            return
        what = "new work" if new_work else "writes"
        message = (
            f"the control plane's share of etcd is full: about {usage.estimate >> 20} MiB of the "
            f"{usage.quota >> 20} MiB quota is used ({usage.live_bytes >> 20} MiB in "
            f"{usage.objects} objects, {usage.recent_bytes >> 20} MiB of recent revisions"
            + (f", etcd's database {usage.etcd_db_bytes >> 20} MiB" if usage.etcd_db_bytes else "")
            + f"); {what} ({kind}) refused above {limit:.0%} until finished executions are "
            "archived; retry later"
        )
        now = time.monotonic()
        if now - self._last_error_log > 30:
            self._last_error_log = now
            log.error("%s", message)
        raise AdminError(Code.RESOURCE_EXHAUSTED, message)


_SIZE_METRICS = ("apiserver_storage_size_bytes", "apiserver_storage_db_total_size_in_bytes")
_FLYTEWORKFLOWS = 'resource="flyteworkflows.flyte.lyft.com"'


def _value(line: str) -> float | None:
    try:
        return float(line.rsplit(" ", 1)[1])
    except (IndexError, ValueError):
        return None


def database_size(metrics_text: str) -> int:
    """etcd's database size from kube-apiserver's Prometheus text (the largest of its etcd
    clusters); 0 when the metric is not there."""
    sizes = [_value(line) for line in metrics_text.splitlines() if line.startswith(_SIZE_METRICS)]
    return int(max((s for s in sizes if s is not None), default=0))


def flyteworkflow_count(metrics_text: str) -> int:
    """How many FlyteWorkflow objects kube-apiserver holds in etcd; 0 when not reported."""
    counts = [
        _value(line)
        for line in metrics_text.splitlines()
        if line.startswith("apiserver_storage_objects{") and _FLYTEWORKFLOWS in line
    ]
    return int(max((c for c in counts if c is not None), default=0))


async def follow_database_size(
    budget: StorageBudget, http: KubeHttp, interval: float = 30.0
) -> None:
    """Poll kube-apiserver's ``/metrics`` for etcd's database size, until cancelled. Without
    the permission (``get`` on the non-resource URL ``/metrics``) it logs once and stops: the
    estimate alone then decides."""
    while True:
        try:
            status, _, text = await http.request_text("GET", "/metrics", accept="text/plain")
        except Exception as exc:  # noqa: BLE001 - the apiserver is unreachable for now
            log.debug("reading kube-apiserver metrics: %s", exc)
        else:
            if status in (401, 403):
                log.info(
                    "etcd's database size is not readable (HTTP %s): using the estimate", status
                )
                return
            if status == 200:
                budget.etcd_db_bytes = database_size(text)
                budget.flyteworkflows = flyteworkflow_count(text)
                if (
                    budget.etcd_db_bytes
                    > budget.settings.quota_bytes * budget.settings.refuse_all_above
                ):
                    log.error(
                        "etcd's database file is %d MiB of a %d MiB quota (free pages are "
                        "reused, but the file only shrinks when defragmented): defragment it",
                        budget.etcd_db_bytes >> 20,
                        budget.settings.quota_bytes >> 20,
                    )
        await asyncio.sleep(interval)
