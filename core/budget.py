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

A kind that a process never reads (the operator never reads task or description versions) is
not watched there: its live bytes and objects are kube-apiserver's own figures, from the same
metrics (``measure_on_apiserver``; Kubernetes 1.34 and later report them), and its revisions are
not in that process's recent bytes. Where the metrics do not report them, that process watches
the kind after all (``unmeasured``).

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
import re
import threading
import time
from collections.abc import Callable, Mapping
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
        # Kinds whose live figures are kube-apiserver's own: kind -> (its "plural.group", when
        # the metrics last reported it)
        self._on_apiserver: dict[str, tuple[str, float]] = {}

    # ----------------------------------------------------------------------------- reports

    def set_live(self, kind: str, size: int, objects: int) -> None:
        self._live[kind] = (size, objects)

    def live(self, kind: str) -> tuple[int, int]:
        """``kind``'s live bytes and objects, as last reported."""
        return self._live.get(kind, (0, 0))

    def measure_on_apiserver(self, kinds: Mapping[str, str]) -> None:
        """Take the live figures of ``kinds`` (kind -> "plural.group") from kube-apiserver's
        metrics (``read_metrics``) instead of a cache of this process."""
        now = time.monotonic()
        for kind, resource in kinds.items():
            self._on_apiserver[kind] = (resource, now)  # the grace for a first report starts now

    def measured_on_apiserver(self) -> list[str]:
        return list(self._on_apiserver)

    def count_in_cache(self, kind: str) -> None:
        """``kind``'s figures come from its cache again (call before starting its watch)."""
        self._on_apiserver.pop(kind, None)
        self._live.pop(kind, None)

    def read_metrics(self, text: str) -> None:
        """Take what decides from kube-apiserver's metrics text: etcd's database size, the
        FlyteWorkflow count, and the figures of the kinds measured there (a kind it does not
        report keeps its last figures)."""
        self.etcd_db_bytes = database_size(text)
        figures = resource_figures(text)
        self.flyteworkflows = figures.objects.get(FLYTEWORKFLOWS, 0)
        now = time.monotonic()
        for kind, (resource, _) in self._on_apiserver.items():
            if resource in figures.objects and resource in figures.bytes:
                self.set_live(kind, figures.bytes[resource], figures.objects[resource])
                self._on_apiserver[kind] = (resource, now)

    def unmeasured(self, grace: float) -> list[str]:
        """The kinds measured on kube-apiserver that it has not reported for ``grace``
        seconds."""
        now = time.monotonic()
        return [kind for kind, (_, at) in self._on_apiserver.items() if now - at > grace]

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
# Objects per resource: Kubernetes 1.34 renamed the count (the old name, whose resource label
# is "plural.group", is deprecated since) and added the stored size (alpha; -1 when unknown).
_OBJECTS = ("apiserver_resource_objects{", "apiserver_storage_objects{")
_BYTES = "apiserver_resource_size_estimate_bytes{"
_LABEL = re.compile(r'(\w+)="([^"]*)"')
FLYTEWORKFLOWS = "flyteworkflows.flyte.lyft.com"


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


@dataclass(frozen=True)
class ResourceFigures:
    """kube-apiserver's figures per resource, by "plural.group" (a core resource: "plural")."""

    objects: dict[str, int]
    bytes: dict[str, int]


def resource_figures(metrics_text: str) -> ResourceFigures:
    objects: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for line in metrics_text.splitlines():
        if line.startswith(_OBJECTS):
            into = objects
        elif line.startswith(_BYTES):
            into = sizes
        else:
            continue
        value = _value(line)
        if value is None or value < 0:
            continue
        labels = dict(_LABEL.findall(line[: line.rfind("}")]))
        group = labels.get("group")
        resource = f"{labels.get('resource', '')}.{group}" if group else labels.get("resource", "")
        into[resource] = max(into.get(resource, 0), int(value))
    return ResourceFigures(objects, sizes)


# kube-apiserver counts objects every minute by default (--etcd-count-metric-poll-period)
METRICS_GRACE_SECONDS = 180.0


async def follow_apiserver_metrics(
    budget: StorageBudget,
    http: KubeHttp,
    watch_instead: Callable[[list[str]], None],
    interval: float = 30.0,
    grace: float = METRICS_GRACE_SECONDS,
) -> None:
    """Poll kube-apiserver's ``/metrics`` for the budget (``read_metrics``), until cancelled.
    The kinds measured there that it has not reported for ``grace`` seconds go to
    ``watch_instead`` (their caches count them from then on). Without the permission (``get``
    on the non-resource URL ``/metrics``) it logs once, hands every such kind over and stops:
    the estimate alone then decides."""
    while True:
        try:
            status, _, text = await http.request_text("GET", "/metrics", accept="text/plain")
        except Exception as exc:  # noqa: BLE001 - the apiserver is unreachable for now
            log.debug("reading kube-apiserver metrics: %s", exc)
        else:
            if status in (401, 403):
                log.info(
                    "kube-apiserver's metrics are not readable (HTTP %s): etcd's database size "
                    "is not followed, and every kind is counted from its cache",
                    status,
                )
                _hand_over(budget, budget.measured_on_apiserver(), watch_instead)
                return
            if status == 200:
                budget.read_metrics(text)
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
        if late := budget.unmeasured(grace):
            log.info(
                "kube-apiserver's metrics did not report the size of %s for %ss: watching them",
                ", ".join(late),
                grace,
            )
            _hand_over(budget, late, watch_instead)
        await asyncio.sleep(interval)


def _hand_over(
    budget: StorageBudget, kinds: list[str], watch_instead: Callable[[list[str]], None]
) -> None:
    if kinds:
        for kind in kinds:
            budget.count_in_cache(kind)
        watch_instead(kinds)
