"""The event journal's batches <-> EventBatch custom resource (core/events/journal.py).

A record is the JSON text of the body its NodeExecution or TaskExecution object gets, as the
object's codec makes it: one string, which kube-apiserver stores without walking it, and which
a reader decodes with the object's own codec."""

from __future__ import annotations

from dataclasses import dataclass

from flyteadmin.core import crds
from flyteadmin.core.store import Body

WRITER_LABEL = crds.LABEL_PREFIX + "journal-writer"
# Consecutive batches of a writer share a group, deleted together in one call once all of
# them are folded (kube-apiserver's delete collection): one request instead of one per batch.
GROUP_LABEL = crds.LABEL_PREFIX + "journal-group"


@dataclass(frozen=True)
class EventBatch:
    name: str
    writer: str
    records: tuple[str, ...]
    group: int = 0


class EventBatchCodec:
    kind = crds.EVENT_BATCH

    def name(self, value: EventBatch) -> str:
        return value.name

    def encode(self, value: EventBatch) -> Body:
        return {
            "metadata": {"labels": {WRITER_LABEL: value.writer, GROUP_LABEL: str(value.group)}},
            "spec": {
                "writer": value.writer,
                "count": len(value.records),
                "records": list(value.records),
            },
        }

    def decode(self, body: Body) -> EventBatch:
        spec, labels = body["spec"], body["metadata"].get("labels") or {}
        group = labels.get(GROUP_LABEL, "0")
        return EventBatch(
            body["metadata"]["name"],
            spec["writer"],
            tuple(spec["records"]),
            int(group) if group.isdigit() else 0,
        )
