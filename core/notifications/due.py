"""Which deliveries an execution is owed now: pure, so the level-triggered operator can ask
again at every event and after every restart.

A delivery is (index of the notification in ``closure.notifications``, phase, sender name).
It is due when the execution is in a terminal phase the notification lists, the kind routes
to that sender, and ``status.notified`` has no entry for it yet (delivered or given up on).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flyteidl.core import execution_pb2 as core_execution

from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.notifications.messages import kind_of

Phase = core_execution.WorkflowExecution.Phase
# flyteadmin notifies on terminal workflow events only; validation allows only these phases.
TERMINAL = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT})


@dataclass(frozen=True, order=True)
class Delivery:
    index: int
    phase: str
    sender: str


def recorded(entries: Iterable[Mapping[str, Any]]) -> set[Delivery]:
    """The deliveries a ``status.notified`` list already accounts for."""
    out = set()
    for entry in entries:
        try:
            out.add(Delivery(int(entry["index"]), str(entry["phase"]), str(entry["sender"])))
        except (KeyError, TypeError, ValueError):
            continue  # a hand-edited entry: ignore it rather than fail the execution
    return out


def ended_at(record: ExecutionRecord) -> dt.datetime | None:
    stamp = record.execution.closure.updated_at
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=dt.UTC)


def may_be_owed(record: ExecutionRecord) -> bool:
    """Whether ``due`` can find anything for ``record`` at all: a terminal phase and some
    notification. Cheap, so that a caller can skip most executions' changes before ``due``."""
    return record.phase in TERMINAL and len(record.execution.closure.notifications) > 0


def due(
    record: ExecutionRecord,
    routes: Mapping[str, Iterable[str]],
    *,
    done: set[Delivery] | None = None,
    now: dt.datetime | None = None,
    max_age: dt.timedelta | None = None,
) -> list[Delivery]:
    """The deliveries owed for ``record``'s current phase, in order.

    ``routes``: kind -> sender names. ``done``: deliveries known to be recorded (defaults to
    the record's own ``notified``). With ``max_age``, an execution that reached its phase
    longer ago than that is owed nothing (old executions when notifications are first turned
    on, or after a long outage)."""
    if not may_be_owed(record):
        return []
    phase = record.phase
    if max_age is not None:
        ended = ended_at(record)
        if ended is not None and (now or dt.datetime.now(dt.UTC)) - ended > max_age:
            return []
    done = recorded(record.notified) if done is None else done
    name = Phase.Name(phase)
    owed = []
    for index, notification in enumerate(record.execution.closure.notifications):
        if phase not in notification.phases:
            continue
        for sender in routes.get(kind_of(notification), ()):
            delivery = Delivery(index, name, sender)
            if delivery not in done:
                owed.append(delivery)
    return owed
