"""Delivering what executions are owed, off the event path.

The operator offers every execution it sees (each watch event, and the initial listing after a
restart). ``offer`` starts one background task per owed delivery that is not already in flight
and returns at once, so a slow or failing receiver holds up neither events nor other
executions. A task retries transient failures with exponential backoff, then records the
outcome (Delivered, or Failed after the last attempt or a permanent refusal) in the execution's
``status.notified`` with a status-only write; a recorded delivery is never attempted again.

At-least-once, with one small window: a crash after a receiver accepted a message and before
the record was written sends that message again after the restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from flyteadmin.core import metrics
from flyteadmin.core.config import NotificationRetrySettings, NotificationSettings
from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.notifications.due import Delivery, due, recorded
from flyteadmin.core.notifications.messages import Message, render
from flyteadmin.core.notifications.senders import DeliveryError, Routes, Sender
from flyteadmin.core.store import Collection, NotFound

log = logging.getLogger(__name__)
DELIVERED, FAILED = "Delivered", "Failed"


def backoff(retry: NotificationRetrySettings, failures: int) -> float:
    """Seconds to wait after the ``failures``-th failed attempt (1, 2, ...)."""
    growth: float = 2 ** (failures - 1)
    return min(retry.max_backoff_seconds, retry.initial_backoff_seconds * growth)


class _AlreadyRecorded(Exception):
    pass


class Notifier:
    def __init__(
        self,
        settings: NotificationSettings,
        records: Collection[ExecutionRecord],
        routes: Routes,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.records = records
        self._senders: dict[str, dict[str, Sender]] = {
            kind: {s.name: s for s in senders} for kind, senders in routes.items()
        }
        self._names: Mapping[str, tuple[str, ...]] = {
            kind: tuple(senders) for kind, senders in self._senders.items()
        }
        self._now = now
        self._max_age = (
            dt.timedelta(seconds=settings.max_age_seconds) if settings.max_age_seconds > 0 else None
        )
        self._slots = asyncio.Semaphore(max(1, settings.max_concurrent))
        self._tasks: dict[tuple[str, Delivery], asyncio.Task[None]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def offer(self, name: str, record: ExecutionRecord) -> list[Delivery]:
        """Start what ``record`` (object ``name``) is owed and not yet in flight; the deliveries
        started are returned. Call from the event loop; it never waits."""
        # The event may predate our own last record: the store's cache has read-your-writes.
        done = recorded(record.notified)
        cached = self.records.get(name)
        if cached is not None:
            done |= recorded(cached.value.notified)
        started = []
        for delivery in due(record, self._names, done=done, now=self._now(), max_age=self._max_age):
            key = (name, delivery)
            if key in self._tasks:
                continue
            notification = record.execution.closure.notifications[delivery.index]
            message = render(notification, record.execution, self.settings)
            sender = self._senders[message.kind][delivery.sender]
            task = asyncio.create_task(self._deliver(name, delivery, sender, message))
            self._tasks[key] = task
            task.add_done_callback(functools.partial(self._forget, key))
            started.append(delivery)
        return started

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        distinct = {id(s): s for senders in self._senders.values() for s in senders.values()}
        for sender in distinct.values():
            await sender.close()

    # ----------------------------------------------------------------------------- delivery

    def _forget(self, key: tuple[str, Delivery], _task: asyncio.Task[None]) -> None:
        self._tasks.pop(key, None)

    async def _deliver(
        self, name: str, delivery: Delivery, sender: Sender, message: Message
    ) -> None:
        retry = self.settings.retry
        attempts, outcome, error = 0, FAILED, ""
        try:
            while True:
                attempts += 1
                permanent = False
                try:
                    async with self._slots:
                        await sender.send(message)
                    outcome = DELIVERED
                    break
                except DeliveryError as exc:
                    error, permanent = str(exc), exc.permanent
                except Exception as exc:  # noqa: BLE001 - a sender bug: retried like any failure
                    log.exception("notification sender %s failed", sender.name)
                    error = repr(exc)
                if permanent or attempts >= max(1, retry.attempts):
                    break
                wait = backoff(retry, attempts)
                log.info(
                    "notification %s of execution %s via %s failed (attempt %d), retrying in "
                    "%.1fs: %s", delivery.index, name, sender.name, attempts, wait, error
                )  # fmt: skip
                await asyncio.sleep(wait)
            metrics.notification(sender.name, outcome.lower())
            if outcome == FAILED:
                log.warning(
                    "notification %s of execution %s via %s failed after %d attempt(s): %s",
                    delivery.index, name, sender.name, attempts, error,
                )  # fmt: skip
            await self._record(name, delivery, self._entry(delivery, outcome, attempts, error))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a background task: report, never crash the loop
            log.exception("notification %s of execution %s", delivery, name)

    def _entry(self, delivery: Delivery, outcome: str, attempts: int, error: str) -> dict[str, Any]:
        at = self._now().astimezone(dt.UTC).replace(microsecond=0)
        entry: dict[str, Any] = {
            "index": delivery.index,
            "phase": delivery.phase,
            "sender": delivery.sender,
            "outcome": outcome,
            "attempts": attempts,
            "at": at.isoformat().replace("+00:00", "Z"),
        }
        if error:
            entry["error"] = error[:500]
        return entry

    async def _record(self, name: str, delivery: Delivery, entry: dict[str, Any]) -> None:
        """Append ``entry`` to status.notified (status-only write), retrying a failing apiserver;
        if that never succeeds, the delivery is attempted again at the next event or restart."""

        def change(record: ExecutionRecord) -> ExecutionRecord:
            if delivery in recorded(record.notified):
                raise _AlreadyRecorded
            return replace(record, notified=(*record.notified, entry))

        retry = self.settings.retry
        for attempt in range(1, max(1, retry.attempts) + 1):
            try:
                if self.records.get(name) is None:  # our cache may lag the operator's watch
                    await self.records.read_through(name)
                await self.records.mutate(name, change)
                return
            except _AlreadyRecorded:
                return
            except NotFound:
                log.info("execution %s is gone; notification %s not recorded", name, delivery)
                return
            except Exception as exc:  # noqa: BLE001 - apiserver trouble: try again shortly
                log.warning("recording notification %s of %s: %s", delivery, name, exc)
            await asyncio.sleep(backoff(retry, attempt))
