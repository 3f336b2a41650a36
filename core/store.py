"""The store: custom resources through the Kubernetes API, read from a watch-fed memory cache.

One ``Collection`` per kind. Writes go to the API server (create, optimistic-concurrency update,
delete) in a bounded thread pool, because the official client is synchronous. Reads are served
from memory: a background thread lists the kind, then watches from the list's resourceVersion
(with bookmarks), relisting on 410 Gone, the way an informer does. After a write returns, its
result is applied to the cache at once ("write-through"), so a read on the same replica sees its
own writes; the watch later delivers the same object, which is then a no-op. Other replicas see
the write when their watch delivers it. Nothing lives only in memory: a restart rebuilds the
cache from the cluster.

resourceVersions are compared as integers. Kubernetes calls them opaque, but for etcd-backed
resources they are etcd revisions, which only grow; the comparison is what keeps an older watch
event from overwriting a newer write-through.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import json
import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flyteadmin.core import kube, metrics
from flyteadmin.core.budget import StorageBudget
from flyteadmin.core.crds import Kind
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.watermarks import Watermarks

log = logging.getLogger(__name__)

T = TypeVar("T")
Body = dict[str, Any]
# The change that made a journal state, made again from a newer object (None: it no longer
# applies).
Rebase = Callable[[T], T | None]

_LIST_PAGE = 500
_WATCH_SECONDS = 300
# How long a deletion is remembered after the watch has passed it: long enough for any write
# response still in flight at the time of the delete (they come back within SYNC_TIMEOUT).
TOMBSTONE_SECONDS = 120.0


class AlreadyExists(AdminError):
    def __init__(self, message: str) -> None:
        super().__init__(Code.ALREADY_EXISTS, message)


class NotFound(AdminError):
    def __init__(self, message: str) -> None:
        super().__init__(Code.NOT_FOUND, message)


class Conflict(AdminError):
    """The object changed since it was read (a lost optimistic-concurrency race)."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.ABORTED, message)


class Codec(Protocol[T]):
    """How one kind's domain value maps onto a custom-resource body (see core/crmap)."""

    kind: Kind

    def name(self, value: T) -> str: ...

    def encode(self, value: T) -> Body:
        """``{"metadata": {"labels": ...}, "spec": ..., "status": ...}`` for ``value``."""
        ...

    def decode(self, body: Body) -> T: ...


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A decoded object with the metadata the store needs to write it back."""

    name: str
    resource_version: int
    uid: str
    created_at: dt.datetime
    value: T
    size: int = 0  # bytes of the object as the apiserver returned it (JSON): the etcd budget
    # The etcd revision this value became durable at, when not resource_version: the event
    # journal's batch revision (core/events/journal.py), kept in the object when folded.
    origin: int = 0
    # Derived values of this version (e.g. list columns), computed once: a Stored is never
    # changed, every write makes a new one, so nothing here goes stale.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def revision(self) -> int:
        """Which of two states of one object is newer: the higher revision."""
        return self.origin or self.resource_version


# Tests set this: every write-through kept without decoding is decoded anyway and compared, so
# a codec whose decode(encode(v)) differs from v fails the suite instead of serving stale data.
_VERIFY_WRITE_THROUGH = os.environ.get("FLYTEADMIN_VERIFY_WRITE_THROUGH") == "1"


def _same_content(sent: Body, got: Body) -> bool:
    """Whether the apiserver stored what was sent (the parts a codec reads)."""
    return (
        got.get("spec") == sent.get("spec")
        and got.get("status") == sent.get("status")
        and (got.get("metadata") or {}).get("labels") == (sent.get("metadata") or {}).get("labels")
    )


# The annotation of a folded object: the revision of the journal batch its body came from.
ORIGIN_ANNOTATION = "flyteadmin.io/origin"


def _origin(meta: Body) -> int:
    text = (meta.get("annotations") or {}).get(ORIGIN_ANNOTATION)
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


_ENVELOPE = '{"type":"","object":}'  # a watch event line around its object's JSON


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-separated lines of a streamed response, as they arrive."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line)
    if pending:
        yield pending


def _retry_after(exc: ApiException) -> float | None:
    """The Retry-After of a refused request (429/503), in seconds, capped."""
    value = (exc.headers or {}).get("Retry-After") if exc.status in (429, 503) else None
    try:
        return min(max(float(value), 0.1), 30.0) if value is not None else None
    except ValueError:
        return 1.0


def _json_size(body: Body) -> int:
    return len(json.dumps(body, separators=(",", ":")))


def _parse_time(text: str | None) -> dt.datetime:
    if not text:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Index:
    """A secondary index: forward key -> names, and reverse name -> keys, so updates are cheap."""

    def __init__(self, fn: Callable[[Any], Iterable[Hashable]]) -> None:
        self.fn = fn
        self.forward: dict[Hashable, set[str]] = {}
        self.reverse: dict[str, tuple[Hashable, ...]] = {}

    def put(self, name: str, value: Any) -> None:
        self.remove(name)
        try:
            keys = tuple(self.fn(value))
        except Exception:  # noqa: BLE001 - an index function must never break the cache
            log.exception("index function failed for %s", name)
            keys = ()
        self.reverse[name] = keys
        for key in keys:
            self.forward.setdefault(key, set()).add(name)

    def remove(self, name: str) -> None:
        for key in self.reverse.pop(name, ()):
            names = self.forward.get(key)
            if names is not None:
                names.discard(name)
                if not names:
                    del self.forward[key]

    def clear(self) -> None:
        self.forward.clear()
        self.reverse.clear()


class _SortedIndex:
    """Names per partition in the order of a sort key, so a scan can read the first rows of a
    list in its order without sorting all of them (e.g. a project-domain's newest executions).
    ``fn(value)`` gives ``(partition, (sort value, tiebreak))`` or None (not indexed)."""

    def __init__(self, fn: Callable[[Any], tuple[Hashable, tuple[Any, Any]] | None]) -> None:
        self.fn = fn
        self.lists: dict[Hashable, list[tuple[tuple[Any, Any], str]]] = {}
        self.where: dict[str, tuple[Hashable, tuple[Any, Any]]] = {}

    def put(self, name: str, value: Any) -> None:
        try:
            entry = self.fn(value)
        except Exception:  # noqa: BLE001 - an index function must never break the cache
            log.exception("sorted index function failed for %s", name)
            entry = None
        if self.where.get(name) == entry:
            return  # most updates (events) leave the key alone
        self.remove(name)
        if entry is not None:
            partition, key = entry
            bisect.insort(self.lists.setdefault(partition, []), (key, name))
            self.where[name] = entry

    def remove(self, name: str) -> None:
        entry = self.where.pop(name, None)
        if entry is None:
            return
        partition, key = entry
        items = self.lists[partition]
        i = bisect.bisect_left(items, (key, name))
        if i < len(items) and items[i] == (key, name):
            del items[i]
        if not items:
            del self.lists[partition]

    def clear(self) -> None:
        self.lists.clear()
        self.where.clear()

    def snapshot(self, partition: Hashable) -> list[tuple[tuple[Any, Any], str]]:
        return list(self.lists.get(partition, ()))


def in_sorted_order(items: list[tuple[tuple[Any, Any], str]], descending: bool) -> Iterator[str]:
    """Names of a sorted index's snapshot by sort value (descending if asked), ties always by
    ascending tiebreak; lazily, so a scan that stops early pays only for what it read."""
    if not descending:
        for _, name in items:
            yield name
        return
    end = len(items)
    while end:
        value = items[end - 1][0][0]
        # ((value,),) sorts just before every entry ((value, tiebreak), name) of this value.
        start = bisect.bisect_left(items, ((value,),), 0, end)
        for _, name in items[start:end]:
            yield name
        end = start


def _journal_state(
    name: str, value: T, origin: int, under: Stored[T] | None, created_at: dt.datetime
) -> Stored[T]:
    """A journal state (``value``, durable at ``origin``) served over ``under``, the object as
    stored if there is one: its version (for the next write of it), uid, creation time and
    size (what etcd holds) are the object's."""
    return Stored(
        name=name,
        resource_version=under.resource_version if under else 0,
        uid=under.uid if under else "",
        created_at=under.created_at if under else created_at,
        value=value,
        size=under.size if under else 0,
        origin=origin,
    )


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter that timed out meanwhile
        future.set_result(None)


class Collection(Generic[T]):
    """All objects of one kind in the store namespace."""

    def __init__(
        self, api: client.ApiClient, namespace: str, codec: Codec[T], http: kube.KubeHttp
    ) -> None:
        self.codec = codec
        self.kind = codec.kind
        self.namespace = namespace
        # Lists and the watch run on the collection's own thread, with a client that never
        # sleeps inside urllib3 (kube.watch_client).
        self._custom = client.CustomObjectsApi(kube.watch_client(api))
        # group, version, namespace, plural: the leading arguments of every custom-object call
        self._coords = (codec.kind.group, codec.kind.version, namespace, codec.kind.plural)
        self._http = http
        kind = codec.kind
        self._path = f"/apis/{kind.group}/{kind.version}/namespaces/{namespace}/{kind.plural}"
        self._lock = threading.RLock()
        self._objects: dict[str, Stored[T]] = {}
        # name -> origin of a journal state newer than the object (or of an object not written
        # yet): the cache serves it, and the journal's fold writes it (core/events/journal.py).
        self._pending: dict[str, int] = {}
        # name -> (the object's resourceVersion the journal state was made from, the change
        # that makes it again from a newer object): for kinds other writers change too
        # (``stamps_origin``), so that a journal state and their write both count.
        self._replays: dict[str, tuple[int, Rebase[T]]] = {}
        # Every update says, in the origin annotation, the newest state it was made from: a
        # journal state it did not see is then told apart from one it includes (set by
        # Journal.replayable).
        self.stamps_origin = False
        # name -> (resourceVersion of the deletion, monotonic time): see _bury
        self._tombstones: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._indexes: dict[str, _Index | _SortedIndex] = {}
        self._listeners: list[Callable[[str, Stored[T]], None]] = []
        self._synced = threading.Event()
        self._stopping = threading.Event()
        # The newest resourceVersion the watch delivered (or the list started from): every
        # write of this kind up to it is in the cache (core/watermarks.py). Set under
        # _seen_lock, which also guards the callers waiting for it to pass a version.
        self.seen_version = 0
        self._seen_lock = threading.Lock()
        self._seen_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._budget: StorageBudget | None = None
        self._bytes = 0  # sum of the cached objects' sizes
        # Counts every change of what the cache holds (listing.PageMemo keeps answers made
        # while it stays the same).
        self.changes = 0
        self._watermarks: Watermarks | None = None
        self._kind_slot = -1
        self._response: Any = None  # the open watch response (urllib3), for stop()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- reads

    def get(self, name: str) -> Stored[T] | None:
        return self._objects.get(name)

    def values(self) -> list[Stored[T]]:
        with self._lock:
            return list(self._objects.values())

    def add_index(self, name: str, fn: Callable[[T], Iterable[Hashable]]) -> None:
        """Register before ``start``; ``fn`` must be fast and must not raise."""
        self._indexes[name] = _Index(fn)

    def index_count(self, index: str, key: Hashable) -> int:
        """How many objects ``by_index`` would return, without building the list."""
        return len(self._indexes[index].forward.get(key, ()))  # type: ignore[union-attr]

    def by_index(self, index: str, key: Hashable) -> list[Stored[T]]:
        with self._lock:
            names = self._indexes[index].forward.get(key, ())  # type: ignore[union-attr]
            return [self._objects[n] for n in names]

    def add_sorted_index(
        self, name: str, fn: Callable[[T], tuple[Hashable, tuple[Any, Any]] | None]
    ) -> None:
        """Register before ``start``; ``fn(value)`` -> ``(partition, (sort value, tiebreak))``."""
        self._indexes[name] = _SortedIndex(fn)

    def sorted_count(self, index: str, partition: Hashable) -> int:
        """How many objects a sorted index holds in ``partition``."""
        return len(self._indexes[index].lists.get(partition, ()))  # type: ignore[union-attr]

    def in_order(self, index: str, partition: Hashable, descending: bool) -> Iterator[Stored[T]]:
        """A partition's objects in the sorted index's order (a snapshot of the names; objects
        deleted since are skipped)."""
        with self._lock:
            items = self._indexes[index].snapshot(partition)  # type: ignore[union-attr]
        for name in in_sorted_order(items, descending):
            stored = self._objects.get(name)
            if stored is not None:
                yield stored

    def __len__(self) -> int:
        return len(self._objects)

    def use_budget(self, budget: StorageBudget) -> None:
        """Report sizes to ``budget`` and ask it before every write (core/budget.py)."""
        self._budget = budget
        budget.set_live(self.kind.kind, self._bytes, len(self._objects))

    def stored_bytes(self) -> int:
        return self._bytes

    def share_writes(self, watermarks: Watermarks, slot: int) -> None:
        """Publish this worker's writes in ``watermarks`` (slot ``slot``), so other API-server
        workers wait for them before serving reads (core/watermarks.py)."""
        self._watermarks, self._kind_slot = watermarks, slot

    def catch_up_version(self) -> int:
        """The version this cache must see to hold every write another worker acknowledged,
        or 0 when it already does."""
        marks = self._watermarks
        if marks is None:
            return 0
        wanted = marks.others(self._kind_slot)
        return wanted if wanted > self.seen_version else 0

    async def wait_seen(self, version: int, timeout: float) -> bool:
        """Wait until the watch has delivered ``version`` (every write of this kind up to it is
        in the cache); False after ``timeout``. Woken by the watch thread, not by polling: a
        poll every millisecond cost 8% of a worker's CPU during bursts of CreateTask from two
        workers, where nearly every call waits a millisecond or two for the other's write."""
        loop = asyncio.get_running_loop()
        waiter: tuple[int, asyncio.Future[None]] = (version, loop.create_future())
        with self._seen_lock:
            if self.seen_version >= version:
                return True
            self._seen_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter[1], timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._seen_lock:
                if waiter in self._seen_waiters:
                    self._seen_waiters.remove(waiter)

    def _saw(self, version: int) -> None:
        """The watch (or a list) has delivered everything up to ``version`` (watch thread)."""
        with self._seen_lock:
            if version <= self.seen_version:
                return
            self.seen_version = version
            if not self._seen_waiters:
                return
            ready = [w for w in self._seen_waiters if w[0] <= version]
            self._seen_waiters = [w for w in self._seen_waiters if w[0] > version]
        for _, future in ready:
            try:
                future.get_loop().call_soon_threadsafe(_set_done, future)
            except RuntimeError:  # its loop is closed: nobody waits any more
                pass

    # ----------------------------------------------------------------------------- writes

    async def create(self, value: T) -> Stored[T]:
        if self._budget is not None:
            self._budget.admit(self.kind.kind, new_work=not self.kind.progress)
        body = self._full_body(value)
        try:
            created, size = await self._http.request_sized("POST", self._path, body)
        except kube.KubeError as exc:
            if exc.status == 409:
                name = body["metadata"]["name"]
                raise AlreadyExists(f"{self.kind.kind} {name} already exists") from exc
            raise kube.translate(exc, creating=True) from exc
        if self.kind.separate_status and body.get("status"):
            # The status subresource ignores status on create; write it in a second call.
            created["status"] = body["status"]
            created, size = await self._replace_status(created)
        return self._apply_write(created, size, body, value)

    async def update(self, current: Stored[T], value: T) -> Stored[T]:
        """Replace spec (and status) if the object is still at ``current.resource_version``.

        With a status subresource, only the parts that changed are written: the status alone
        (most event-driven updates) or the main part alone take one call, both take two."""
        if not current.resource_version:
            # A journal state whose object is not written yet (core/events/journal.py).
            try:
                return await self.create(value)
            except AlreadyExists as exc:  # written meanwhile: mutate reads it and retries
                raise Conflict(str(exc)) from exc
        if self._budget is not None:
            self._budget.admit(self.kind.kind, new_work=False)
        body = self._full_body(value)
        body["metadata"]["resourceVersion"] = str(current.resource_version)
        if self.stamps_origin:
            annotations = {**body["metadata"].get("annotations", {})}
            annotations[ORIGIN_ANNOTATION] = str(current.revision)
            body["metadata"]["annotations"] = annotations
        has_status = self.kind.separate_status and body.get("status") is not None
        try:
            if not has_status:
                updated, size = await self._http.request_sized(
                    "PUT", f"{self._path}/{current.name}", body
                )
            else:
                before = self._full_body(current.value)
                if self._same_main_part(before, body):
                    body["metadata"]["name"] = current.name
                    updated, size = await self._replace_status(body)
                else:
                    updated, size = await self._http.request_sized(
                        "PUT", f"{self._path}/{current.name}", body
                    )
                    if before.get("status") != body["status"]:
                        updated["status"] = body["status"]
                        updated, size = await self._replace_status(updated)
        except kube.KubeError as exc:
            raise self._update_error(exc, current.name) from exc
        return self._apply_write(updated, size, body, value)

    @staticmethod
    def _same_main_part(before: Body, body: Body) -> bool:
        labels_before, labels = before["metadata"].get("labels"), body["metadata"].get("labels")
        return bool(before["spec"] == body["spec"] and labels_before == labels)

    async def mutate(self, name: str, change: Callable[[T], T], attempts: int = 16) -> Stored[T]:
        """Read-modify-write with retries on conflicts; ``change`` may raise to abort, or
        return its argument itself to write nothing.

        Between attempts it waits a random, growing moment, so that many writers of one object
        (e.g. racing launch-plan activations) spread out instead of colliding again."""
        current = self.get(name)
        for attempt in range(attempts):
            if current is None:
                raise NotFound(f"{self.kind.kind} {name} not found")
            try:
                changed = change(current.value)
                if changed is current.value:
                    return current  # nothing to write
                return await self.update(current, changed)
            except Conflict:
                metrics.conflict_retry(self.kind.plural)
                await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))
                current = await self.read_through(name)
        raise Conflict(f"{self.kind.kind} {name} kept changing; gave up after {attempts} tries")

    async def delete(self, name: str) -> None:
        try:
            await self._http.request("DELETE", f"{self._path}/{name}")
        except kube.KubeError as exc:
            if exc.status == 404:
                raise NotFound(f"{self.kind.kind} {name} not found") from exc
            raise kube.translate(exc) from exc
        with self._lock:
            stored = self._objects.get(name)
            if stored is not None:
                self._bury(name, stored.resource_version)
                self._remove(name)
        if stored is not None:
            self._notify("DELETED", stored)

    async def delete_matching(self, labels: dict[str, str], names: Iterable[str]) -> None:
        """Delete every object with these labels in one call (kube-apiserver's delete
        collection), then drop ``names`` (what the caller knows matched) from the cache."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        try:
            await self._http.request("DELETE", f"{self._path}?labelSelector={quote(selector)}")
        except kube.KubeError as exc:
            raise kube.translate(exc) from exc
        for name in names:
            with self._lock:
                stored = self._objects.get(name)
                if stored is not None:
                    self._bury(name, stored.resource_version)
                    self._remove(name)
            if stored is not None:
                self._notify("DELETED", stored)

    async def read_through(self, name: str) -> Stored[T] | None:
        """Read one object from the API server (not the cache) and refresh the cache with it."""
        try:
            body, size = await self._http.request_sized("GET", f"{self._path}/{name}")
        except kube.KubeError as exc:
            if exc.status == 404:
                return self.get(name) if name in self._pending else None
            raise kube.translate(exc) from exc
        self._apply_write(body, size)
        return self.get(name)  # the object, or a newer journal state over it

    async def fold(self, name: str) -> bool:
        """Write the journal state served for ``name`` into its object, marked with its origin
        (one create or update); True when the object holds it (or nothing is pending). A
        conflict refreshes the object's version from the API server and returns False: the
        journal tries again on its next pass."""
        with self._lock:
            origin = self._pending.get(name)
            current = self._objects.get(name)
        if origin is None or current is None:
            return True
        body = self._full_body(current.value)
        body["metadata"]["annotations"] = {ORIGIN_ANNOTATION: str(origin)}
        try:
            if current.resource_version:
                body["metadata"]["resourceVersion"] = str(current.resource_version)
                got, size = await self._http.request_sized("PUT", f"{self._path}/{name}", body)
            else:
                got, size = await self._http.request_sized("POST", self._path, body)
        except kube.KubeError as exc:
            if exc.status == 404 and current.resource_version:
                # Deleted under it (by hand: the archiver waits for the journal): gone.
                with self._lock:
                    if self._pending.get(name) == origin:
                        self._remove(name)
                return True
            if exc.status != 409:
                raise kube.translate(exc) from exc
            await self.read_through(name)
            return False
        # Not admitted by the budget: folding is what lets the journal's batches go.
        self._apply_write(got, size, body, current.value)
        return name not in self._pending or self._pending[name] != origin

    def body(self, value: T) -> Body:
        """The object body ``value`` is written as (the event journal records it)."""
        return self._full_body(value)

    async def drop_journal_state(self, name: str, origin: int) -> None:
        """Stop serving the journal state at ``origin`` (its batch is gone without the object
        holding it: see Journal._check_retired) and serve what the API server has."""
        with self._lock:
            if self._pending.get(name) != origin:
                return
            stored = self._objects.get(name)
            self._remove(name)
        if stored is not None:
            self._notify("DELETED", stored)
        await self.read_through(name)

    def _full_body(self, value: T) -> Body:
        body = self.codec.encode(value)
        metadata = dict(body.get("metadata") or {})
        # One empty entry makes kube-apiserver drop managedFields at an update and track none
        # after it: nobody applies our objects server-side, and the bookkeeping was ~40% of a
        # stored object and of the apiserver's work per update. (A create is always tracked;
        # docs/storage.md.)
        metadata.update(name=self.codec.name(value), namespace=self.namespace, managedFields=[{}])
        return {
            **body,
            "apiVersion": self.kind.api_version,
            "kind": self.kind.kind,
            "metadata": metadata,
        }

    async def _replace_status(self, body: Body) -> tuple[Body, int]:
        return await self._http.request_sized(
            "PUT", f"{self._path}/{body['metadata']['name']}/status", body
        )

    def _update_error(self, exc: kube.KubeError, name: str) -> AdminError:
        if exc.status == 409:
            return Conflict(f"{self.kind.kind} {name} was modified concurrently")
        if exc.status == 404:
            return NotFound(f"{self.kind.kind} {name} not found")
        return kube.translate(exc)

    # ----------------------------------------------------------------------------- cache

    def _decode(self, body: Body, size: int | None = None) -> Stored[T] | None:
        """The cached form of an object; ``size`` is its JSON's length when known (a watch
        line, an answer's text), else the object is encoded to measure it."""
        meta = body.get("metadata", {})
        try:
            value = self.codec.decode(body)
        except Exception:  # noqa: BLE001 - e.g. an object hand-edited with kubectl
            log.exception("cannot decode %s %s; ignoring it", self.kind.kind, meta.get("name"))
            return None
        return Stored(
            name=meta["name"],
            resource_version=int(meta["resourceVersion"]),
            uid=meta.get("uid", ""),
            created_at=_parse_time(meta.get("creationTimestamp")),
            value=value,
            size=_json_size(body) if size is None else size,
            origin=_origin(meta),
        )

    def _put(self, stored: Stored[T]) -> None:
        old = self._objects.get(stored.name)
        self._objects[stored.name] = stored
        self._bytes += stored.size - (old.size if old is not None else 0)
        for index in self._indexes.values():
            index.put(stored.name, stored.value)
        self.changes += 1  # after the indexes: whoever reads the new count finds the change
        self._report()

    def _remove(self, name: str) -> None:
        self._pending.pop(name, None)
        self._replays.pop(name, None)
        old = self._objects.pop(name, None)
        if old is not None:
            self._bytes -= old.size
        for index in self._indexes.values():
            index.remove(name)
        if old is not None:
            self.changes += 1
        self._report()

    def _report(self) -> None:
        if self._budget is not None:
            self._budget.set_live(self.kind.kind, self._bytes, len(self._objects))

    def _apply_write(
        self, body: Body, size: int, sent: Body | None = None, value: T | None = None
    ) -> Stored[T]:
        """Cache what a write returned. When the server stored exactly the ``sent`` body (no
        defaulting, no pruning: compared as plain dicts, which is cheap), the ``value`` that
        was encoded is what decoding would give, so it is kept without decoding."""
        if sent is not None and value is not None and _same_content(sent, body):
            meta = body["metadata"]
            stored: Stored[T] | None = Stored(
                name=meta["name"],
                resource_version=int(meta["resourceVersion"]),
                uid=meta.get("uid", ""),
                created_at=_parse_time(meta.get("creationTimestamp")),
                value=value,
                size=size,
                origin=_origin(meta),
            )
            if _VERIFY_WRITE_THROUGH and (decoded := self._decode(body, size)) is not None:
                if decoded.value != value:  # the test suite runs with this check on
                    raise AdminError(
                        Code.INTERNAL,
                        f"{self.kind.kind} {meta['name']}: the codec does not round-trip "
                        f"({value!r} was written, {decoded.value!r} reads back)",
                    )
        else:
            stored = self._decode(body, size)
        if stored is None:
            raise AdminError(Code.INTERNAL, f"stored {self.kind.kind} could not be read back")
        self._apply("MODIFIED", stored)
        if self._watermarks is not None:
            self._watermarks.publish(self._kind_slot, stored.resource_version)
        return stored

    def _apply(self, event: str, stored: Stored[T]) -> None:
        """Apply one change of the object unless the cache already holds something newer. A
        journal state newer than the object's body stays what is served; the object's version
        is taken under it, for the fold's next write."""
        with self._lock:
            if stored.resource_version <= self._tombstones.get(stored.name, (-1, 0.0))[0]:
                return
            current = self._objects.get(stored.name)
            if current is not None and current.resource_version > stored.resource_version:
                return
            if event == "DELETED":
                self._bury(stored.name, stored.resource_version)
                self._remove(stored.name)
            elif (
                current is not None
                and self._pending.get(stored.name, 0) > self.holds_up_to(stored)
                # (None: the journal state's change does not apply to what the object became)
                and (value := self._rebased(stored)) is not None
            ):
                # The object's body does not hold the journal state served over it.
                kept = (value, current.origin, stored, stored.created_at)
                self._put(served := _journal_state(stored.name, *kept))
                if value is current.value:
                    return  # the value served is unchanged
                stored, event = served, "MODIFIED"
            else:
                self._pending.pop(stored.name, None)
                self._replays.pop(stored.name, None)
                self._put(stored)
        self._notify(event, stored)

    def holds_up_to(self, stored: Stored[T]) -> int:
        """The journal states ``stored``'s body holds: those up to this revision. Every writer
        of a ``stamps_origin`` kind says which state it wrote from; an object without that
        (a create, or an edit with kubectl) holds none."""
        if self.stamps_origin and not stored.origin:
            return 0
        return stored.revision

    def _rebased(self, under: Stored[T]) -> T | None:
        """The journal state served for ``under.name`` over the object ``under`` (lock held):
        as it is, unless another writer changed the object after the state was made from it
        without seeing it; then the state's change made again from the object (None when it
        no longer applies)."""
        current = self._objects[under.name]
        replay = self._replays.get(under.name)
        if replay is None or under.resource_version <= replay[0]:
            return current.value
        value = replay[1](under.value)
        if value is not None:
            self._replays[under.name] = (under.resource_version, replay[1])
        return value

    def overlay(
        self,
        name: str,
        value: T,
        origin: int,
        created_at: dt.datetime,
        replay: tuple[int, Rebase[T]] | None = None,
    ) -> bool:
        """Serve ``value``, made durable in the event journal at revision ``origin``, unless
        the cache holds a state at least as new; whether it was taken. ``replay``: the
        resourceVersion of the object ``value`` was made from, and the change that made it
        (made again from the object when another writer has changed it since)."""
        with self._lock:
            if origin <= self._tombstones.get(name, (-1, 0.0))[0]:
                return False
            current = self._objects.get(name)
            if current is not None and self.holds_up_to(current) >= origin:
                return False
            if replay is not None:
                based_on, rebase = replay
                # The object written since the state was made from it, without it:
                if (
                    current is not None
                    and name not in self._pending
                    and current.resource_version > based_on
                ):
                    rebased = rebase(current.value)
                    if rebased is None:
                        return False
                    value, based_on = rebased, current.resource_version
                self._replays[name] = (based_on, rebase)
            else:
                self._replays.pop(name, None)
            stored = _journal_state(name, value, origin, current, created_at)
            self._put(stored)
            self._pending[name] = origin
        self._notify("MODIFIED", stored)
        return True

    def pending_origin(self, name: str) -> int:
        """The origin of the journal state served for ``name`` that its object does not
        hold yet, or 0."""
        return self._pending.get(name, 0)

    def pending_count(self) -> int:
        return len(self._pending)

    def _bury(self, name: str, resource_version: int) -> None:
        """Remember a deletion (lock held), so that an older watch event or a late write
        response cannot bring the object back. Deletions the watch has passed are forgotten
        after TOMBSTONE_SECONDS: every later event has a newer resourceVersion, and without
        this the map would grow with every object ever deleted (archiving deletes all the
        time)."""
        now = time.monotonic()
        self._tombstones[name] = (resource_version, now)
        self._tombstones.move_to_end(name)  # the map stays in time order
        while self._tombstones:
            version, at = next(iter(self._tombstones.values()))
            if now - at < TOMBSTONE_SECONDS or version > self.seen_version:
                break
            self._tombstones.popitem(last=False)

    def add_listener(self, listener: Callable[[str, Stored[T]], None]) -> None:
        """Call ``listener(event, stored)`` after each change the cache applies ("ADDED",
        "MODIFIED" or "DELETED", with the object as it was last); from the watch thread or
        the writer's task, so it must be quick and must not raise."""
        # Copied, not changed in place: the watch thread may be iterating the old list.
        self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Callable[[str, Stored[T]], None]) -> None:
        """No more calls of ``listener`` once the change the watch thread may be applying at
        this moment is done."""
        self._listeners = [known for known in self._listeners if known is not listener]

    def _notify(self, event: str, stored: Stored[T]) -> None:
        for listener in self._listeners:
            try:
                listener(event, stored)
            except Exception:  # noqa: BLE001 - a listener must never break the cache
                log.exception("listener of %s failed on %s", self.kind.plural, stored.name)

    def _replace_all(self, items: list[Stored[T]], list_rv: int) -> None:
        with self._lock:
            fresh = {s.name: s for s in items}
            # Keep write-throughs newer than the list: the watch will confirm them.
            for name, stored in self._objects.items():
                if stored.resource_version > list_rv and name not in fresh:
                    fresh[name] = stored
            # Keep journal states newer than what was listed (the journal's check of retired
            # batches drops one whose object was written and deleted meanwhile).
            pending = {}
            for name, origin in self._pending.items():
                listed = fresh.get(name)
                if listed is None or self.holds_up_to(listed) < origin:
                    was = self._objects[name]
                    value = self._rebased(listed) if listed is not None else was.value
                    if value is None:
                        continue  # the listed object stays; its replay goes below
                    fresh[name] = _journal_state(name, value, origin, listed, was.created_at)
                    pending[name] = origin
            self._replays = {n: r for n, r in self._replays.items() if n in pending}
            gone = [s for name, s in self._objects.items() if name not in fresh]
            self._objects = {}
            self.changes += 1
            self._bytes = 0
            self._tombstones = OrderedDict()
            for index in self._indexes.values():
                index.clear()
            for stored in fresh.values():
                self._put(stored)
            self._pending = pending
        if self._listeners:
            for stored in gone:
                self._notify("DELETED", stored)
            for stored in fresh.values():
                self._notify("ADDED", stored)

    # ----------------------------------------------------------------------------- watch

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run_watch, name=f"watch-{self.kind.plural}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Tell the watch thread to end and wake it wherever it waits: the open watch response
        is shut down, and backoff waits are on ``_stopping``. ``join`` then waits for it."""
        self._stopping.set()
        response = self._response
        if response is not None:
            response.shutdown()

    def join(self, timeout: float) -> bool:
        """Wait for the watch thread to end (after ``stop``), so no thread of the store runs
        Python code while the interpreter exits; False if it is still running."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the watch of %s did not stop within %ss", self.kind.plural, timeout)
                return False
        return True

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def _list(self) -> int:
        started = time.monotonic()  # metrics
        items: list[Stored[T]] = []
        token: str | None = None
        while True:
            # Annotated `object` by the client: a custom object list is a JSON object.
            page: Any = self._custom.list_namespaced_custom_object(
                *self._coords,
                limit=_LIST_PAGE,
                _continue=token,
                _request_timeout=kube.SYNC_TIMEOUT,
            )
            items.extend(s for s in map(self._decode, page.get("items", [])) if s is not None)
            token = page["metadata"].get("continue")
            if not token:
                list_rv = int(page["metadata"]["resourceVersion"])
                break
        self._replace_all(items, list_rv)
        self._saw(list_rv)
        metrics.listed(self.kind.plural, started)
        self._synced.set()
        return list_rv

    def _run_watch(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                rv = self._list()
                backoff = 0.2
                while not self._stopping.is_set():
                    rv = self._watch_once(rv)
            except ApiException as exc:
                if self._stopping.is_set():
                    return
                metrics.watch_ended(self.kind.plural, exc.status)
                if exc.status == 410:
                    continue  # too old: list again
                retry_after = _retry_after(exc)
                if retry_after is not None:
                    # e.g. 429 while a new kind's watch cache initialises: expected, quiet
                    log.debug(
                        "watch of %s: %s, again in %ss", self.kind.plural, exc.reason, retry_after
                    )
                    self._stopping.wait(retry_after)
                    continue
                log.warning("watch of %s failed: %s", self.kind.plural, exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:  # noqa: BLE001 - keep the cache alive through network hiccups
                if self._stopping.is_set():
                    return
                metrics.watch_ended(self.kind.plural, None)
                log.exception("watch of %s failed", self.kind.plural)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _watch_once(self, rv: int) -> int:
        """Watch from ``rv`` until the server ends the stream; return the last rv seen.

        Each event line is parsed once, with ``json.loads`` (the official client's ``Watch``
        parses it, serialises the object again and parses that a second time)."""
        response: Any = self._custom.list_namespaced_custom_object(
            *self._coords,
            watch=True,
            resource_version=str(rv),
            allow_watch_bookmarks=True,
            timeout_seconds=_WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(kube.SYNC_TIMEOUT[0], _WATCH_SECONDS + 30),
        )
        self._response = response
        try:
            if self._stopping.is_set():  # stop() ran before the response was published
                return rv
            for line in _lines(response):
                event = json.loads(line)
                kind = event["type"]
                body = event["object"]
                if kind == "ERROR":
                    raise ApiException(status=body.get("code"), reason=body.get("message"))
                metrics.watch_event(self.kind.plural, kind)
                rv = int(body["metadata"]["resourceVersion"])
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    size = len(line) - len(_ENVELOPE) - len(kind)  # the object's JSON
                    if self._budget is not None:
                        # Every revision stays in etcd until the next compaction (a deletion
                        # too).
                        self._budget.written(size if kind != "DELETED" else 0)
                    current = self._objects.get(body["metadata"]["name"])
                    if kind != "DELETED" and current and current.resource_version >= rv:
                        # our own write-through got here first: nothing to decode
                        self._saw(rv)
                        continue
                    stored = self._decode(body, size)
                    if stored is not None:
                        self._apply(kind, stored)
                self._saw(rv)
            return rv
        finally:
            self._response = None
            response.release_conn()
