"""The event journal's batches <-> EventBatch custom resource (core/events/journal.py).

A record is the JSON text of the body its NodeExecution or TaskExecution object gets, as the
object's codec makes it: one string, which kube-apiserver stores without walking it, and which
a reader decodes with the object's own codec."""

from __future__ import annotations

from dataclasses import dataclass

from flyteadmin.core import crds
from flyteadmin.core.store import Body


@dataclass(frozen=True)
class EventBatch:
    name: str
    writer: str
    records: tuple[str, ...]


class EventBatchCodec:
    kind = crds.EVENT_BATCH

    def name(self, value: EventBatch) -> str:
        return value.name

    def encode(self, value: EventBatch) -> Body:
        return {
            "spec": {
                "writer": value.writer,
                "count": len(value.records),
                "records": list(value.records),
            }
        }

    def decode(self, body: Body) -> EventBatch:
        spec = body["spec"]
        return EventBatch(body["metadata"]["name"], spec["writer"], tuple(spec["records"]))
