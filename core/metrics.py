"""Every Prometheus metric of the control plane: names, help, labels and buckets, in one place.

Code elsewhere calls the small helpers below (``rpc_finished``, ``kube_call``, ``watch_event``,
...), never ``prometheus_client`` directly, so a name or a label set changes here only.

Label values are always bounded: gRPC method names, HTTP route templates, Kubernetes verbs and
plural resource names, status codes, and fixed outcome words. Never an execution id, a project
name, a user's text or a raw path.

Several processes (API-server workers, the operator beside them in ``flyteadmin dev``): when
``PROMETHEUS_MULTIPROC_DIR`` is set *before this module is imported*, prometheus-client keeps
every value in memory-mapped files in that folder and ``registry()`` aggregates them (each gauge
declares how: ``livesum``, ``livemin``, ...), so one process serves the page for all
(docs/operations.md). That is why the cache state is kept in plain gauges refreshed every few
seconds (``follow_store``) rather than computed at scrape time.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import os
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Buckets. Latencies of RPCs and Kubernetes calls span a millisecond (a cache read) to tens of
# seconds (a large registration); launches and event delivery span seconds to minutes.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_BYTES = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

# ---------------------------------------------------------------------------- API server

RPC_REQUESTS = Counter(
    "flyteadmin_rpc_requests_total",
    "RPCs served, by service, method, transport (grpc, http) and gRPC status code name.",
    ["service", "method", "transport", "code"],
)
RPC_DURATION = Histogram(
    "flyteadmin_rpc_duration_seconds",
    "Time to serve an RPC, from the request received to the response ready.",
    ["service", "method", "transport"],
    buckets=_FAST,
)
RPC_IN_FLIGHT = Gauge(
    "flyteadmin_rpc_in_flight",
    "RPCs being served right now.",
    ["transport"],
    multiprocess_mode="livesum",
)
RPC_REQUEST_BYTES = Histogram(
    "flyteadmin_rpc_request_bytes",
    "Size of RPC requests (the serialized message; the HTTP body).",
    ["service", "method", "transport"],
    buckets=_BYTES,
)
RPC_RESPONSE_BYTES = Histogram(
    "flyteadmin_rpc_response_bytes",
    "Size of RPC responses (the serialized message; the HTTP body).",
    ["service", "method", "transport"],
    buckets=_BYTES,
)
AUTH_FAILURES = Counter(
    "flyteadmin_auth_failures_total",
    "Calls refused by authentication (UNAUTHENTICATED) or authorization (permission_denied), "
    "by reason.",
    ["reason"],
)

# ---------------------------------------------------------------------------- store

KUBE_REQUESTS = Counter(
    "flyteadmin_kube_requests_total",
    "Calls to the Kubernetes API by verb, resource (plural, with /subresource) and HTTP status "
    "(0: the API server could not be reached). 409 on update is a lost optimistic-concurrency "
    "race.",
    ["verb", "resource", "code"],
)
KUBE_DURATION = Histogram(
    "flyteadmin_kube_request_duration_seconds",
    "Latency of calls to the Kubernetes API.",
    ["verb", "resource"],
    buckets=_FAST,
)
KUBE_CONNECTIONS = Counter(
    "flyteadmin_kube_connections_opened_total",
    "Connections opened to the Kubernetes API (kept alive and reused: a count that keeps "
    "growing under steady load means something between closes them).",
)
KUBE_REPEATS = Counter(
    "flyteadmin_kube_requests_repeated_total",
    "GET, PUT and DELETE calls sent again on a new connection because the kept one closed "
    "before any answer came.",
)
STORE_CONFLICT_RETRIES = Counter(
    "flyteadmin_store_conflict_retries_total",
    "Read-modify-write attempts repeated after an optimistic-concurrency conflict.",
    ["resource"],
)
STORE_LISTS = Counter(
    "flyteadmin_store_lists_total",
    "Full lists of a kind by its watch cache: the first one, then one per relist.",
    ["resource"],
)
STORE_LIST_DURATION = Histogram(
    "flyteadmin_store_list_duration_seconds",
    "Time to list (all pages) and load a kind into its watch cache.",
    ["resource"],
    buckets=_SLOW,
)
STORE_RELISTS = Counter(
    "flyteadmin_store_relists_total",
    "Watches that ended with 410 Gone (their resourceVersion expired), so the kind was relisted.",
    ["resource"],
)
STORE_WATCH_ERRORS = Counter(
    "flyteadmin_store_watch_errors_total",
    "Watch or list failures of a watch cache (retried with backoff).",
    ["resource"],
)
STORE_WATCH_EVENTS = Counter(
    "flyteadmin_store_watch_events_total",
    "Watch events received, by type (ADDED, MODIFIED, DELETED, BOOKMARK).",
    ["resource", "type"],
)
STORE_WATCH_LAST_EVENT = Gauge(
    "flyteadmin_store_watch_last_event_timestamp_seconds",
    "Unix time of the last watch event (bookmarks included) or list of a kind; with several "
    "processes, the stalest one.",
    ["resource"],
    multiprocess_mode="livemin",
)

# ---------------------------------------------------------------------------- operator

RECONCILES = Counter(
    "flyteadmin_operator_reconciles_total",
    "Operator handler runs by handler and outcome (ok, error).",
    ["handler", "outcome"],
)
RECONCILE_DURATION = Histogram(
    "flyteadmin_operator_reconcile_duration_seconds",
    "Time of one operator handler run.",
    ["handler"],
    buckets=_FAST,
)
RESYNC_DURATION = Histogram(
    "flyteadmin_operator_resync_duration_seconds",
    "Time of one periodic pass of an operator loop over every object it keeps in step.",
    ["loop"],
    buckets=_SLOW,
)
LAUNCHES = Counter(
    "flyteadmin_execution_launches_total",
    "FlyteWorkflow creations by outcome: created, exists (created before), failed (the "
    "execution became FAILED).",
    ["outcome"],
)
LAUNCH_LATENCY = Histogram(
    "flyteadmin_execution_launch_latency_seconds",
    "Time from CreateExecution (the execution's created_at) to its FlyteWorkflow object.",
    buckets=_SLOW,
)
SCHEDULE_FIRES = Counter(
    "flyteadmin_schedule_fires_total",
    "Scheduled times handled, by outcome: created, exists, skipped (would never succeed), "
    "retry (failed, retried at the next tick).",
    ["outcome"],
)
SCHEDULE_LAG = Histogram(
    "flyteadmin_schedule_lag_seconds",
    "Time from a scheduled time to its execution created.",
    buckets=_SLOW,
)
NOTIFICATIONS = Counter(
    "flyteadmin_notifications_total",
    "Notification deliveries by sender (smtp, webhook) and outcome (delivered, failed: after "
    "every retry).",
    ["sender", "outcome"],
)
CLUSTER_RESOURCE_SYNCS = Counter(
    "flyteadmin_cluster_resource_syncs_total",
    "Cluster resources of one project-domain rendered and applied, by outcome: changed (new "
    "content applied), reapplied (unchanged content applied again after reapply_seconds, "
    "which repairs drift), unchanged (not sent again), failed, skipped (its cluster is "
    "unavailable).",
    ["outcome"],
)

# ---------------------------------------------------------------------------- events, blobs

EVENTS = Counter(
    "flyteadmin_events_total",
    "Events from flytepropeller by kind (workflow, node, task) and outcome: accepted, "
    "duplicate (ALREADY_EXISTS), rejected (any other client error), error (a failure of ours).",
    ["kind", "outcome"],
)
EVENT_LATENCY = Histogram(
    "flyteadmin_event_latency_seconds",
    "Time from an accepted event's occurred_at to the event stored.",
    ["kind"],
    buckets=_SLOW,
)
JOURNAL_RECORDS = Counter(
    "flyteadmin_journal_records_total",
    "Node and task execution states from events, by how they were written: journal (in a "
    "batch of the event journal), direct (into the object: the journal is off or over "
    "journal.max_unfolded).",
    ["path"],
)
JOURNAL_BATCH_RECORDS = Histogram(
    "flyteadmin_journal_batch_records",
    "Records per event-journal batch (group commit: they grow with the event rate).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
JOURNAL_FOLDS = Counter(
    "flyteadmin_journal_folds_total",
    "Journal states written into their objects, by outcome: written, retry (a conflict: "
    "again on the next pass), error.",
    ["outcome"],
)
JOURNAL_UNFOLDED = Gauge(
    "flyteadmin_journal_unfolded",
    "Journal states this process has still to write into their objects.",
    multiprocess_mode="livesum",
)
JOURNAL_OLDEST_BATCH = Gauge(
    "flyteadmin_journal_oldest_batch_seconds",
    "Age of the oldest event-journal batch not deleted yet (0: none); batches are deleted "
    "once folded, so a growing age is a fold that is stuck.",
    multiprocess_mode="livemax",
)
BLOB_REQUESTS = Counter(
    "flyteadmin_blob_requests_total",
    "Blob store operations (read, write, check, delete) by outcome (ok, not_found, error).",
    ["operation", "outcome"],
)
BLOB_DURATION = Histogram(
    "flyteadmin_blob_request_duration_seconds",
    "Latency of blob store operations (retries included).",
    ["operation"],
    buckets=_FAST,
)

# ---------------------------------------------------------------------------- helpers

_CHILDREN: dict[tuple[Any, tuple[str, ...]], Any] = {}


def _of(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: ``labels`` takes a lock and validates on every
    call (a few microseconds, several times per RPC), and every label set here is bounded."""
    key = (metric, values)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*values)
    return child


# ---------------------------------------------------------------------------- recorded later

# Every RPC, Kubernetes call, watch event, propeller event and blob request changes values, and
# prometheus-client takes a few microseconds for each (a lock, checks; in multiprocess mode a
# write into a shared file too): a fifth of an API worker's CPU per GetProject (bench/README.md,
# "The cost of telemetry"). Those values are added up in plain fields instead (``_later``; a
# gauge's newest value: ``_latest``) and written to their metrics by ``flush``:
# every FLUSH_SECONDS from a thread, before this process collects a page, and at exit. A page
# collected by another process (multiprocess mode) is at most FLUSH_SECONDS behind.
FLUSH_SECONDS = 0.1
_PENDING_LOCK = threading.Lock()
_PENDING: list[_Pending | _Latest] = []  # those with changes not written yet
_R = TypeVar("_R", "_Pending", "_Latest")
# (recorder class, metric, label values) -> its one recorder
_RECORDERS: dict[tuple[type, Any, tuple[str, ...]], _Pending | _Latest] = {}
_flusher: threading.Thread | None = None


class _Pending:
    """What one child of a counter, gauge (increments only) or histogram was given since the
    last flush."""

    __slots__ = ("child", "bounds", "amount", "buckets", "queued")

    def __init__(self, child: Any) -> None:
        self.child = child
        # A histogram's upper bounds (+Inf last), as its ``observe`` compares them.
        self.bounds: list[float] | None = getattr(child, "_upper_bounds", None)
        self.amount = 0.0  # the increments; a histogram's sum of observations
        self.buckets = [0] * len(self.bounds) if self.bounds is not None else []
        self.queued = False

    def add(self, amount: float) -> None:
        """``inc(amount)`` of a counter or gauge, ``observe(amount)`` of a histogram."""
        with _PENDING_LOCK:
            self.amount += amount
            if self.bounds is not None:
                self.buckets[bisect_left(self.bounds, amount)] += 1
            if not self.queued:
                self.queued = True
                _PENDING.append(self)

    def write(self) -> None:
        """Hand the changes to the metric (under _PENDING_LOCK)."""
        if self.bounds is None:
            self.child.inc(self.amount)
        else:
            # What ``observe`` does, per bucket instead of per observation: the child keeps
            # its sum and one count per bucket (prometheus-client 0.26; the unit test compares
            # the page with one made by ``observe``).
            self.child._sum.inc(self.amount)
            for value, count in zip(self.child._buckets, self.buckets, strict=True):
                if count:
                    value.inc(count)
        self.drop()

    def drop(self) -> None:
        """Forget the changes (written, or not this process's to write)."""
        self.amount, self.queued = 0.0, False
        if self.bounds is not None:
            self.buckets = [0] * len(self.bounds)


def _recorder(kind: type[_R], metric: Any, values: tuple[str, ...]) -> _R:
    """The one ``kind`` recorder of ``metric.labels(*values)`` (the metric's own when it has no
    labels); the first one made starts the flushing thread."""
    key = (kind, metric, values)
    recorder = _RECORDERS.get(key)
    if recorder is None:
        recorder = _RECORDERS[key] = kind(_of(metric, *values) if values else metric)
        _start_flushing()
    return cast(_R, recorder)


def _later(metric: Any, *values: str) -> _Pending:
    """The recorder of ``metric.labels(*values)``'s changes, written at the next flush."""
    return _recorder(_Pending, metric, values)


class _Latest:
    """A gauge child's newest value, set at the next flush."""

    __slots__ = ("child", "value", "queued")

    def __init__(self, child: Any) -> None:
        self.child, self.value, self.queued = child, 0.0, False

    def set(self, value: float) -> None:
        with _PENDING_LOCK:
            self.value = value
            if not self.queued:
                self.queued = True
                _PENDING.append(self)

    def write(self) -> None:
        self.child.set(self.value)
        self.queued = False

    def drop(self) -> None:
        self.queued = False


def _latest(metric: Any, *values: str) -> _Latest:
    """The setter of gauge ``metric.labels(*values)``, written at the next flush."""
    return _recorder(_Latest, metric, values)


def flush() -> None:
    """Write every change recorded since the last flush to its metric."""
    with _PENDING_LOCK:
        for pending in _PENDING:
            pending.write()
        _PENDING.clear()


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        flush()


def _start_flushing() -> None:
    global _flusher
    if _flusher is None or not _flusher.is_alive():
        _flusher = threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True)
        _flusher.start()


def _forked() -> None:
    """In a forked child: the parent's changes are the parent's to write, and the flushing
    thread did not come along (nor the lock's holder, if any)."""
    global _PENDING_LOCK, _flusher
    _PENDING_LOCK = threading.Lock()
    for pending in _PENDING:
        pending.drop()
    _PENDING.clear()
    _flusher = None
    if _RECORDERS:
        _start_flushing()


atexit.register(flush)
os.register_at_fork(
    before=lambda: _PENDING_LOCK.acquire(), after_in_parent=lambda: _PENDING_LOCK.release()
)
os.register_at_fork(after_in_child=_forked)


class RpcMeter:
    """The metrics of one RPC method on one transport, resolved once: the gRPC door keeps one
    per method, so that a call costs no label lookups."""

    def __init__(self, service: str, method: str, transport: str) -> None:
        self._labels = (service, method, transport)
        self.in_flight = _later(RPC_IN_FLIGHT, transport)
        self._duration = _later(RPC_DURATION, service, method, transport)
        self._request_bytes = _later(RPC_REQUEST_BYTES, service, method, transport)
        self._response_bytes = _later(RPC_RESPONSE_BYTES, service, method, transport)
        self._requests: dict[str, _Pending] = {}  # by status code name

    def finished(self, code: str, seconds: float) -> None:
        """The call (counted in flight since it started) ended with ``code``."""
        requests = self._requests.get(code)
        if requests is None:
            requests = self._requests[code] = _later(RPC_REQUESTS, *self._labels, code)
        self.in_flight.add(-1)
        requests.add(1)
        self._duration.add(seconds)

    def request_bytes(self, size: int) -> None:
        self._request_bytes.add(size)

    def response_bytes(self, size: int) -> None:
        self._response_bytes.add(size)


_METERS: dict[tuple[str, str, str], RpcMeter] = {}


def rpc_meter(service: str, method: str, transport: str) -> RpcMeter:
    key = (service, method, transport)
    meter = _METERS.get(key)
    if meter is None:
        meter = _METERS[key] = RpcMeter(service, method, transport)
    return meter


def rpc_started(transport: str) -> None:
    _later(RPC_IN_FLIGHT, transport).add(1)


def rpc_finished(service: str, method: str, transport: str, code: str, seconds: float) -> None:
    rpc_meter(service, method, transport).finished(code, seconds)


def rpc_request_bytes(service: str, method: str, transport: str, size: int) -> None:
    rpc_meter(service, method, transport).request_bytes(size)


def rpc_response_bytes(service: str, method: str, transport: str, size: int) -> None:
    rpc_meter(service, method, transport).response_bytes(size)


def auth_failure(reason: str) -> None:
    _of(AUTH_FAILURES, reason).inc()


_K8S_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def kube_labels(method: str, path: str) -> tuple[str, str]:
    """(verb, resource) of a Kubernetes API call, from its method and path: ``GET
    /apis/g/v/namespaces/ns/executions/x/status`` -> ``("get", "executions/status")``. Paths
    outside /api and /apis (``/readyz``, ``/version``) are ``nonresource``."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if segments[:1] == ["api"]:
        rest = segments[2:]
    elif segments[:1] == ["apis"]:
        rest = segments[3:]
    else:
        return method.lower(), "nonresource"
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # a namespaced resource
    resource = rest[0] if rest else ""
    if len(rest) >= 3:
        resource += "/" + rest[2]
    named = len(rest) >= 2
    verb = _K8S_VERBS.get(method.upper()) or ("get" if named else "list")
    return verb, resource


def kube_call(method: str, path: str, status: int, seconds: float) -> None:
    verb, resource = kube_labels(method, path)
    _later(KUBE_REQUESTS, verb, resource, str(status)).add(1)
    _later(KUBE_DURATION, verb, resource).add(seconds)


def kube_connection_opened() -> None:
    KUBE_CONNECTIONS.inc()


def kube_request_repeated() -> None:
    KUBE_REPEATS.inc()


def conflict_retry(resource: str) -> None:
    _of(STORE_CONFLICT_RETRIES, resource).inc()


def listed(resource: str, started: float) -> None:
    """A watch cache loaded a full list; ``started`` is its ``time.monotonic()`` at the start."""
    _of(STORE_LISTS, resource).inc()
    _of(STORE_LIST_DURATION, resource).observe(time.monotonic() - started)
    _latest(STORE_WATCH_LAST_EVENT, resource).set(time.time())


def watch_ended(resource: str, status: int | None) -> None:
    """A watch or list failed: 410 Gone (a relist follows) or anything else (``None``)."""
    _of(STORE_RELISTS if status == 410 else STORE_WATCH_ERRORS, resource).inc()


def watch_event(resource: str, event_type: str) -> None:
    _later(STORE_WATCH_EVENTS, resource, event_type).add(1)
    _latest(STORE_WATCH_LAST_EVENT, resource).set(time.time())


@contextmanager
def reconciling(handler: str) -> Iterator[None]:
    """Time one operator handler run and count it as ``ok`` or ``error`` (it re-raises)."""
    started = time.monotonic()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        _later(RECONCILES, handler, outcome).add(1)
        _later(RECONCILE_DURATION, handler).add(time.monotonic() - started)


@contextmanager
def resync(loop: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        _of(RESYNC_DURATION, loop).observe(time.monotonic() - started)


def _since(moment: dt.datetime) -> float:
    return max(0.0, (dt.datetime.now(dt.UTC) - moment).total_seconds())


def launched(outcome: str, created_at: dt.datetime | None = None) -> None:
    _of(LAUNCHES, outcome).inc()
    if outcome == "created" and created_at is not None:
        LAUNCH_LATENCY.observe(_since(created_at))


def schedule_fired(outcome: str, lag_seconds: float | None = None) -> None:
    """A scheduled time handled; ``lag_seconds``: from the time to its execution created."""
    _of(SCHEDULE_FIRES, outcome).inc()
    if lag_seconds is not None:
        SCHEDULE_LAG.observe(max(0.0, lag_seconds))


def notification(sender: str, outcome: str) -> None:
    _of(NOTIFICATIONS, sender, outcome).inc()


def cluster_resource_synced(outcome: str) -> None:
    _of(CLUSTER_RESOURCE_SYNCS, outcome).inc()


def event_ingested(kind: str, outcome: str, occurred_at: dt.datetime | None = None) -> None:
    _later(EVENTS, kind, outcome).add(1)
    if outcome == "accepted" and occurred_at is not None:
        _later(EVENT_LATENCY, kind).add(_since(occurred_at))


def journal_records(path: str, count: int = 1) -> None:
    _later(JOURNAL_RECORDS, path).add(count)


def journal_batch(records: int) -> None:
    _later(JOURNAL_BATCH_RECORDS).add(records)
    journal_records("journal", records)


def journal_fold(outcome: str) -> None:
    _of(JOURNAL_FOLDS, outcome).inc()


def journal_state(unfolded: int, oldest_batch_seconds: float) -> None:
    JOURNAL_UNFOLDED.set(unfolded)
    JOURNAL_OLDEST_BATCH.set(oldest_batch_seconds)


def blob_call(operation: str, outcome: str, seconds: float) -> None:
    _later(BLOB_REQUESTS, operation, outcome).add(1)
    _later(BLOB_DURATION, operation).add(seconds)


# ---------------------------------------------------------------------------- the heap

GC_PASSES = Histogram(
    "flyteadmin_gc_pass_seconds",
    "Passes of Python's cyclic garbage collector, by generation: each holds the process's GIL "
    "throughout (core/heap.py).",
    ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GC_FROZEN = Gauge(
    "flyteadmin_gc_frozen_objects",
    "Objects the collector no longer visits (core/heap.py): cached entities, and any cyclic "
    "garbage frozen with them.",
    multiprocess_mode="livesum",
)
_GENERATIONS = ("0", "1", "2")
# What the collector's callback reported, published by ``record_store``. The callback runs
# inside whatever allocation started the pass, prometheus-client's own code included, whose
# values take a lock (one for every value in multiprocess mode): recording there would wait
# for a lock its own thread holds. So the callback only appends here (no lock is taken).
_GC_PASSES_SEEN: deque[tuple[int, float]] = deque(maxlen=10_000)
_gc_frozen_seen: int | None = None


def gc_pass(generation: int, seconds: float) -> None:
    """A collector pass (safe in a gc callback)."""
    _GC_PASSES_SEEN.append((generation, seconds))


def gc_frozen(objects: int) -> None:
    """The objects frozen now (safe in a gc callback)."""
    global _gc_frozen_seen
    _gc_frozen_seen = objects


def _publish_gc() -> None:
    while _GC_PASSES_SEEN:
        generation, seconds = _GC_PASSES_SEEN.popleft()
        _of(GC_PASSES, _GENERATIONS[generation]).observe(seconds)
    if _gc_frozen_seen is not None:
        GC_FROZEN.set(_gc_frozen_seen)


# ---------------------------------------------------------------------------- the caches

STORE_OBJECTS = Gauge(
    "flyteadmin_store_objects",
    "Objects in a watch cache, by resource.",
    ["resource"],
    multiprocess_mode="livemax",
)
STORE_SYNCED = Gauge(
    "flyteadmin_store_synced",
    "1 when a watch cache has loaded its first list, else 0 (with several processes, the least).",
    ["resource"],
    multiprocess_mode="livemin",
)
STORE_BYTES = Gauge(
    "flyteadmin_store_bytes",
    "Bytes of a kind's objects as the apiserver returned them (JSON): what they take in etcd, "
    "without etcd's own per-key overhead.",
    ["resource"],
    multiprocess_mode="livemax",
)
ETCD_ESTIMATE = Gauge(
    "flyteadmin_etcd_estimated_bytes",
    "The etcd byte budget's estimate of what the control plane holds in etcd (core/budget.py): "
    "live objects, their overhead, recent revisions and FlyteWorkflow objects.",
    multiprocess_mode="livemax",
)
ETCD_QUOTA = Gauge(
    "flyteadmin_etcd_quota_bytes",
    "The etcd quota the budget works against (etcd.quota_bytes).",
    multiprocess_mode="livemax",
)
ETCD_DATABASE = Gauge(
    "flyteadmin_etcd_database_bytes",
    "etcd's database file size, from kube-apiserver's metrics (0: not readable); reported, "
    "not deciding: it keeps its peak until defragmented.",
    multiprocess_mode="livemax",
)
EXECUTIONS_WAITING = Gauge(
    "flyteadmin_executions_waiting",
    "Executions accepted but waiting for their execution cluster (unreachable or not "
    "configured: docs/multicluster.md), by cluster.",
    ["cluster"],
    multiprocess_mode="livemax",
)
STORE_REFRESH_SECONDS = 5.0


def record_store(
    collections: Iterable[Any],
    budget: Any = None,
    waiting: Callable[[], dict[str, int]] | None = None,
) -> None:
    """Set the cache and budget gauges from ``collections`` (store Collections) and ``budget``
    (a core.budget.StorageBudget), the waiting executions by cluster (``waiting``), and what the
    garbage collector reported since the last call."""
    _publish_gc()
    for collection in collections:
        plural = collection.kind.plural
        _of(STORE_OBJECTS, plural).set(len(collection))
        _of(STORE_SYNCED, plural).set(1 if collection.wait_synced(0) else 0)
        _of(STORE_BYTES, plural).set(collection.stored_bytes())
    if budget is not None:
        usage = budget.usage()
        ETCD_ESTIMATE.set(usage.estimate)
        ETCD_QUOTA.set(usage.quota)
        ETCD_DATABASE.set(usage.etcd_db_bytes)
    if waiting is not None:
        counts = waiting()
        for cluster in {*counts, *_WAITING_SEEN}:
            _of(EXECUTIONS_WAITING, cluster or "local").set(counts.get(cluster, 0))
        _WAITING_SEEN.update(counts)


_WAITING_SEEN: set[str] = set()  # clusters reported once go back to 0, not off the page


async def follow_store(
    collections: Sequence[Any],
    budget: Any = None,
    waiting: Callable[[], dict[str, int]] | None = None,
) -> None:
    """``record_store`` every few seconds, until cancelled (a Backend runs it): plain gauges,
    so that several processes' values combine in multiprocess mode. ``collections`` is read at
    each refresh (a Backend adds one it starts to watch later)."""
    while True:
        record_store(collections, budget, waiting)
        await asyncio.sleep(STORE_REFRESH_SECONDS)


def process_ended(pid: int) -> None:
    """A process that wrote metrics is gone: its live gauges leave the page (multiprocess)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


def registry() -> CollectorRegistry:
    """What ``/metrics`` serves: this process's registry (with the library's process and GC
    collectors), or, in multiprocess mode, every process's values aggregated."""
    flush()  # this process's recent changes
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated)
    return aggregated
