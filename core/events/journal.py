"""The event journal (docs/event-journal.md): event results (node and task states, an
execution's phases on the way), written in batches.

kube-apiserver's cost of a write is mostly per request, not per byte, and every event was one
write of its object. Here an accepted event's resulting object body goes into an
``EventBatch``: one create holds the states of every event accepted while the previous batch
was being written (group commit), and the event is answered once its batch is in etcd, as
durable as a write of the object. The state is served at once from the cache
(``Collection.overlay``), in this process by the write, in every other process through its
watch of the batches. The writer then *folds* each state into its object: a terminal state at
once, others ``fold_delay_seconds`` after the object's oldest unfolded state, so a short node's
several states become one write. A batch is deleted when each of its states is in its object or
superseded by a newer batch. Which of two states is newer is decided by the etcd revision each
became durable at (``Stored.revision``), kept in a folded object as an annotation.

Executions have other writers too (the operator, TerminateExecution): their states carry their
event (``replayable``), made again from an Execution that such a writer changed without having
seen the state, so that both changes count (``Collection.overlay``).

A process that ends folds what it wrote (``close``); batches of one that crashed are folded by
any process once ``orphan_seconds`` old. Past ``max_unfolded`` states waiting, events are
written into their objects directly (back-pressure).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flyteadmin.core import metrics
from flyteadmin.core.config import JournalSettings
from flyteadmin.core.crmap.event_batches import GROUP_LABEL, WRITER_LABEL, EventBatch
from flyteadmin.core.names import slug
from flyteadmin.core.store import Collection, NotFound, Rebase, Stored

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25  # how often the fold looks for due states
RETIRED_GRACE_SECONDS = 5.0  # see _check_retired
FOLD_CONCURRENCY = 8
GROUP_SIZE = 16  # batches deleted together (see event_batches.GROUP_LABEL)

Key = tuple[str, str]  # (kind, object name)
# A record's replay field -> the change it made, to make it again from a newer object.
Replayer = Callable[[dict[str, Any]], Rebase[Any]]
# What a state of a kind that other writers change too is made of: the resourceVersion of the
# object it was made from, the replay field of its record, and the change itself.
Replay = tuple[int, dict[str, Any], Rebase[Any]]
REPLAY = "replay"  # the record's field (beside the object's body) for the replay


@dataclass
class _Pending:
    """A state queued for the next batch."""

    collection: Collection[Any]
    name: str
    value: Any
    text: str
    execution: tuple[str, str, str]
    terminal: bool
    future: asyncio.Future[int]
    replay: tuple[int, Rebase[Any]] | None = None


@dataclass
class _Unfolded:
    origin: int
    since: float  # monotonic time of the object's oldest unfolded state
    terminal: bool


@dataclass
class _Batch:
    """A batch not deleted yet: its revision, the objects it holds states of, when made."""

    origin: int
    keys: list[Key]
    created_at: dt.datetime
    executions: set[tuple[str, str, str]] = field(default_factory=set)
    group: int = -1  # its group (see GROUP_SIZE) when written here; -1: another process's

    @property
    def own(self) -> bool:
        return self.group >= 0


def _execution_of(body: dict[str, Any]) -> tuple[str, str, str]:
    spec = body["spec"]
    ex = spec["executionId"] if "executionId" in spec else spec["id"]  # (an Execution's own)
    return (ex.get("project", ""), ex.get("domain", ""), ex.get("name", ""))


class Journal:
    def __init__(
        self,
        batches: Collection[EventBatch],
        targets: Iterable[Collection[Any]],
        settings: JournalSettings,
    ) -> None:
        self.batches = batches
        self.settings = settings
        self.targets = {c.kind.kind: c for c in targets}
        # Batch names: <writer>-<sequence>; the writer is new in every process.
        host = slug(socket.gethostname())[:30].strip("-") or "host"
        self.writer = f"eb-{host}-{os.getpid()}-{secrets.token_hex(3)}"
        self._sequence = 0  # of the next batch
        self._writing: int | None = None  # the group of the batch being created
        self._queue: collections.deque[_Pending] = collections.deque()
        self._flusher: asyncio.Task[None] | None = None
        self._locks: dict[Key, tuple[asyncio.Lock, list[int]]] = {}  # lock, holders+waiters
        self._unfolded: dict[Key, _Unfolded] = {}
        self._live: dict[str, _Batch] = {}  # batch name -> what it holds
        # In the order they were retired (monotonic times), so the due ones are at the left.
        self._retired: collections.deque[tuple[float, Key, int]] = collections.deque()
        self._guard = threading.Lock()  # _live and _retired change on the watch thread too
        # Batches whose create failed without saying whether it was stored (e.g. a timeout):
        # if the watch shows one, its states are served and folded here like any other.
        self._uncertain: dict[str, None] = {}
        self._wake: asyncio.Event | None = None
        self._replayers: dict[str, Replayer] = {}
        batches.add_listener(self._on_batch)

    def replayable(self, collection: Collection[Any], replayer: Replayer) -> None:
        """States of ``collection``, which other writers change too, carry their change:
        when the object is written by one that had not seen the state, the change is made
        again from what it wrote (``Collection.overlay``), so both count. Every process's
        journal needs it (every process may write such objects)."""
        self._replayers[collection.kind.kind] = replayer
        collection.stamps_origin = True

    # ----------------------------------------------------------------------------- writing

    def accepts(self) -> bool:
        """Whether the next event goes through the journal (else: a direct write)."""
        return self.settings.enabled and len(self._unfolded) < self.settings.max_unfolded

    @contextlib.asynccontextmanager
    async def hold(self, collection: Collection[Any], name: str) -> AsyncIterator[None]:
        """Serialize this process's events of one object: the next one is checked against the
        state the previous one produced, once that is durable."""
        key = (collection.kind.kind, name)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    async def record(
        self,
        collection: Collection[Any],
        name: str,
        value: Any,
        terminal: bool,
        replay: Replay | None = None,
    ) -> int:
        """Make ``value`` (the new state of ``collection``'s object ``name``) durable in the
        next batch and serve it; the batch's revision. Call inside ``hold``. ``replay``: for
        a ``replayable`` collection."""
        body = collection.body(value)
        execution = _execution_of(body)
        if replay is not None:
            body[REPLAY] = {**replay[1], "basedOn": replay[0]}
        text = json.dumps(body, separators=(",", ":"))
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        rebase = None if replay is None else (replay[0], replay[2])
        self._queue.append(
            _Pending(collection, name, value, text, execution, terminal, future, rebase)
        )
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Write batches while states are queued, one at a time: whatever queues up while one
        is being written goes into the next."""
        limit_records, limit_bytes = self.settings.max_batch_records, self.settings.max_batch_bytes
        while self._queue:
            taken: list[_Pending] = []
            size = 0
            while self._queue and len(taken) < limit_records:
                if taken and size + len(self._queue[0].text) > limit_bytes:
                    break
                entry = self._queue.popleft()
                taken.append(entry)
                size += len(entry.text)
            name, group = f"{self.writer}-{self._sequence}", self._sequence // GROUP_SIZE
            self._sequence += 1
            batch = EventBatch(name, self.writer, tuple(e.text for e in taken), group)
            self._writing = group
            try:
                stored = await self.batches.create(batch)
            except BaseException as exc:  # the events fail (their states may still be stored)
                with self._guard:
                    self._uncertain[name] = None
                    while len(self._uncertain) > 1000:
                        del self._uncertain[next(iter(self._uncertain))]
                for entry in taken:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            finally:
                self._writing = None
            self._committed(stored, taken)

    def _committed(self, stored: Stored[EventBatch], taken: list[_Pending]) -> None:
        origin = stored.resource_version
        now = time.monotonic()
        keys: list[Key] = []
        executions = set()
        for entry in taken:
            collection = entry.collection
            collection.overlay(entry.name, entry.value, origin, stored.created_at, entry.replay)
            key = (collection.kind.kind, entry.name)
            keys.append(key)
            executions.add(entry.execution)
            before = self._unfolded.get(key)
            since = before.since if before else now
            self._unfolded[key] = _Unfolded(origin, since, entry.terminal)
            if not entry.future.done():
                entry.future.set_result(origin)
        with self._guard:
            batch = _Batch(origin, keys, stored.created_at, executions, stored.value.group)
            self._live[stored.name] = batch
        metrics.journal_batch(len(taken))
        if any(e.terminal for e in taken) and self._wake is not None:
            self._wake.set()

    # ----------------------------------------------------------------------------- reading

    def _on_batch(self, event: str, stored: Stored[EventBatch]) -> None:
        """A batch seen by the watch (or listed): serve its states; on deletion, remember to
        check that the objects it held states of are seen (watch thread)."""
        batch = stored.value
        if event == "DELETED":
            with self._guard:
                gone = self._live.pop(stored.name, None)
                if gone is not None and not gone.own:
                    now = time.monotonic()
                    self._retired.extend((now, key, gone.origin) for key in gone.keys)
            return
        with self._guard:
            if stored.name in self._live:
                return
            if batch.writer == self.writer:
                if stored.name not in self._uncertain:
                    return  # written here: served since its write
                # A create that failed but was stored: folded as an orphan, like a dead
                # process's batch.
                del self._uncertain[stored.name]
        origin = stored.resource_version
        keys: list[Key] = []
        executions = set()
        for text in batch.records:
            try:
                body = json.loads(text)
                collection = self.targets[body["kind"]]
                name = body["metadata"]["name"]
                executions.add(_execution_of(body))
                keys.append((body["kind"], name))
                current = collection.get(name)
                if current is None or collection.holds_up_to(current) < origin:
                    value = collection.codec.decode(body)
                    replay = None
                    if (field_ := body.get(REPLAY)) is not None:
                        replay = (field_["basedOn"], self._replayers[body["kind"]](field_))
                    collection.overlay(name, value, origin, stored.created_at, replay)
            except Exception:  # noqa: BLE001 - a record written by hand: skip it, say so
                log.exception("event batch %s: a record cannot be read; skipped", stored.name)
        with self._guard:
            self._live[stored.name] = _Batch(origin, keys, stored.created_at, executions)

    def _batches(self) -> list[tuple[str, _Batch]]:
        with self._guard:
            return list(self._live.items())

    def holds(self, execution: tuple[str, str, str]) -> bool:
        """Whether a batch not deleted yet holds states of this execution's objects (the
        archiver waits for it to go)."""
        return any(execution in b.executions for _, b in self._batches())

    # ----------------------------------------------------------------------------- folding

    async def run(self) -> None:
        """Fold due states and delete done batches, until cancelled."""
        self._wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)
            self._wake.clear()
            try:
                await self.fold_once()
            except Exception:  # noqa: BLE001 - the next pass tries again
                log.exception("journal fold pass failed")

    async def fold_once(self, everything: bool = False) -> None:
        now = time.monotonic()
        delay = self.settings.fold_delay_seconds
        for key, unfolded in list(self._unfolded.items()):
            if self._pending(key) < unfolded.origin:
                del self._unfolded[key]  # in its object already (a direct write, another fold)
        due = [
            key
            for key, u in self._unfolded.items()
            if everything or u.terminal or now - u.since >= delay
        ]
        orphans = self._orphans()
        for batch in orphans.values():
            due.extend(k for k in batch.keys if self._pending(k) >= batch.origin)
        await self._fold(due)
        await self._delete_done(orphans)
        await self._check_retired(now)
        self._report()

    def _orphans(self) -> dict[str, _Batch]:
        """Other processes' batches old enough to be theirs no more."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.settings.orphan_seconds)
        return {n: b for n, b in self._batches() if not b.own and b.created_at <= cutoff}

    def _pending(self, key: Key) -> int:
        return self.targets[key[0]].pending_origin(key[1])

    async def _fold(self, keys: list[Key]) -> None:
        if not keys:
            return
        limit = asyncio.Semaphore(FOLD_CONCURRENCY)

        async def one(key: Key) -> None:
            async with limit:
                try:
                    written = await self.targets[key[0]].fold(key[1])
                except Exception as exc:  # noqa: BLE001 - retried on the next pass
                    metrics.journal_fold("error")
                    log.warning("journal: %s %s not folded yet: %s", *key, exc)
                    return
                metrics.journal_fold("written" if written else "retry")
                unfolded = self._unfolded.get(key)
                if unfolded is not None and not self._pending(key) >= unfolded.origin:
                    del self._unfolded[key]

        await asyncio.gather(*(one(k) for k in dict.fromkeys(keys)))

    def _done(self, batch: _Batch) -> bool:
        """Each state of the batch is in its object, or superseded by a newer batch (which
        holds the whole state)."""
        return not any(self._pending(k) == batch.origin for k in batch.keys)

    async def _delete_done(self, orphans: dict[str, _Batch]) -> None:
        """Delete this process's groups of batches once all of their states are done (one
        call per group), and done orphans one by one."""
        groups: dict[int, list[tuple[str, _Batch]]] = {}
        for name, batch in self._batches():
            if batch.own:
                groups.setdefault(batch.group, []).append((name, batch))
            elif name in orphans and self._done(batch):
                await self._delete([name], self.batches.delete(name))
        idle = not self._queue and (self._flusher is None or self._flusher.done())
        for group, members in groups.items():
            if group == self._writing or not all(self._done(b) for _, b in members):
                continue
            if group == self._sequence // GROUP_SIZE:  # later batches would join it
                if not idle:
                    continue
                self._sequence = (group + 1) * GROUP_SIZE  # closed: the next starts a group
            labels = {WRITER_LABEL: self.writer, GROUP_LABEL: str(group)}
            names = [name for name, _ in members]
            await self._delete(names, self.batches.delete_matching(labels, names))

    async def _delete(self, names: list[str], call: Awaitable[None]) -> None:
        try:
            await call
        except NotFound:
            pass
        except Exception as exc:  # noqa: BLE001 - retried on the next pass
            log.warning("journal: batches %s not deleted yet: %s", names, exc)
            return
        with self._guard:
            for name in names:
                self._live.pop(name, None)

    async def _check_retired(self, now: float) -> None:
        """Another process deleted a batch, so each of its states is in its object, or
        superseded: normally this process's watch of the objects shows it within
        milliseconds. One still served from that batch after a grace is read from the API
        server (after a relist, the object may have been written and deleted meanwhile)."""
        due = []
        with self._guard:
            while self._retired and now - self._retired[0][0] >= RETIRED_GRACE_SECONDS:
                due.append(self._retired.popleft())
        for _, key, origin in due:
            if self._pending(key) == origin:
                await self.targets[key[0]].drop_journal_state(key[1], origin)

    def idle(self) -> bool:
        """Nothing queued, unfolded or undeleted that this process knows of."""
        return not (self._queue or self._unfolded or self._batches())

    async def close(self) -> None:
        """Fold and delete everything this process wrote (a process that stops)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        for _ in range(3):
            if not any(b.own for _, b in self._batches()):
                break
            await self.fold_once(everything=True)
        self._report()

    def _report(self) -> None:
        oldest = min((b.created_at for _, b in self._batches()), default=None)
        age = (dt.datetime.now(dt.UTC) - oldest).total_seconds() if oldest else 0.0
        metrics.journal_state(len(self._unfolded), max(age, 0.0))
