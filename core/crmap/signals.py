"""admin.Signal <-> Signal custom resource: the declared type in spec, the value in status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flyteidl.admin import signal_pb2
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.crmap.protojson import from_json, to_json
from flyteadmin.core.names import object_name
from flyteadmin.core.store import Body
from flyteadmin.core.timestamps import parse_time, time_text


@dataclass(frozen=True)
class SignalRecord:
    signal: signal_pb2.Signal
    set_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    """To the microsecond; None for objects written before it was kept."""

    @property
    def is_set(self) -> bool:
        return self.signal.HasField("value")


def signal_object_name(ident: identifier_pb2.SignalIdentifier) -> str:
    ex = ident.execution_id
    return object_name([ex.name, ident.signal_id], "signal", ex.project, ex.domain, ex.name,
                       ident.signal_id)  # fmt: skip


class SignalCodec:
    kind = crds.SIGNAL

    def name(self, value: SignalRecord) -> str:
        return signal_object_name(value.signal.id)

    def encode(self, value: SignalRecord) -> Body:
        ident = value.signal.id
        ex = ident.execution_id
        status: dict[str, Any] = {}
        if value.is_set:
            status["value"] = to_json(value.signal.value)
            if value.set_at:
                status["setAt"] = time_text(value.set_at)
        return {
            "metadata": {
                "labels": identity_labels(project=ex.project, domain=ex.domain, execution=ex.name)
            },
            "spec": {
                "executionId": {"project": ex.project, "domain": ex.domain, "name": ex.name},
                "signalId": ident.signal_id,
                "type": to_json(value.signal.type),
                **({"createdAt": time_text(value.created_at)} if value.created_at else {}),
            },
            "status": status,
        }

    def decode(self, body: Body) -> SignalRecord:
        spec, status = body["spec"], body.get("status") or {}
        signal = signal_pb2.Signal(
            id=identifier_pb2.SignalIdentifier(
                signal_id=spec["signalId"],
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(**spec["executionId"]),
            ),
            type=from_json(types_pb2.LiteralType, spec.get("type")),
        )
        set_at = None
        if status.get("value") is not None:
            signal.value.CopyFrom(from_json(literals_pb2.Literal, status["value"]))
            set_at = parse_time(status.get("setAt"))
        return SignalRecord(signal, set_at, parse_time(spec.get("createdAt")))
