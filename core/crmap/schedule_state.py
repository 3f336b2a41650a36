"""The scheduler's view of a NamedEntity object: the active launch-plan version (spec) and how
far its schedule has fired (``status.schedule``).

The scheduler reads and writes NamedEntity objects through its own collection with this codec.
It only ever changes the status, and an update whose spec and labels are unchanged is written to
the status subresource alone (core/store.py); so the spec is carried through untouched, and the
API server's own writes of the spec (descriptions, activations) never touch the status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flyteidl.core import identifier_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.named_entities import named_entity_object_name
from flyteadmin.core.store import Body

LAUNCH_PLAN = "LAUNCH_PLAN"


@dataclass(frozen=True)
class ScheduleState:
    resource_type: str
    project: str
    domain: str
    name: str
    active_version: str
    version: str = ""
    """The version ``since`` and ``fired_up_to`` belong to ("" when none is tracked)."""
    since: datetime | None = None
    fired_up_to: datetime | None = None
    spec: dict[str, Any] = field(default_factory=dict, compare=False)
    labels: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_launch_plan(self) -> bool:
        return self.resource_type == LAUNCH_PLAN


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleStateCodec:
    kind = crds.NAMED_ENTITY

    def name(self, value: ScheduleState) -> str:
        resource_type = identifier_pb2.ResourceType.Value(value.resource_type)
        return named_entity_object_name(resource_type, value.project, value.domain, value.name)

    def encode(self, value: ScheduleState) -> Body:
        schedule = {
            "version": value.version,
            "since": _text(value.since),
            "firedUpTo": _text(value.fired_up_to),
        }
        return {
            "metadata": {"labels": dict(value.labels)},
            "spec": value.spec,
            "status": {"schedule": {k: v for k, v in schedule.items() if v is not None}},
        }

    def decode(self, body: Body) -> ScheduleState:
        spec = body["spec"]
        schedule = (body.get("status") or {}).get("schedule") or {}
        return ScheduleState(
            resource_type=spec["resourceType"],
            project=spec["project"],
            domain=spec["domain"],
            name=spec["name"],
            active_version=spec.get("activeVersion", ""),
            version=schedule.get("version", ""),
            since=_time(schedule.get("since")),
            fired_up_to=_time(schedule.get("firedUpTo")),
            spec=spec,
            labels=dict((body.get("metadata") or {}).get("labels") or {}),
        )
