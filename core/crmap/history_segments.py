"""HistorySegment <-> custom resource: one object per history file (core/history).

The spec describes the verified file (``HistoryFile`` without its execution names) and, for
compaction output, the segments it replaces; the status holds the phase and, while the archive
is not Done, the names of the executions in the file (what an archiver restarted after a crash
needs to finish deleting their objects). Objects stay small: a few hundred bytes plus the
names, and only until Done.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.history.layout import HistoryFile
from flyteadmin.core.store import Body

COMMITTED = "Committed"
DONE = "Done"
MAX_EXECUTIONS = 500
"""Most execution names a segment may carry (about 25 KiB of names at most): archive in
batches of at most this many executions per project, domain and month."""


@dataclass(frozen=True)
class HistorySegment:
    file: HistoryFile
    replaces: tuple[str, ...] = ()
    phase: str = COMMITTED

    @property
    def name(self) -> str:
        return self.file.segment_name

    def done(self) -> HistorySegment:
        """The segment once its archive finished: Done, without execution names."""
        return HistorySegment(
            dataclasses.replace(self.file, execution_names=()), self.replaces, DONE
        )


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: str | None) -> dt.datetime | None:
    return None if not value else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class HistorySegmentCodec:
    kind = crds.HISTORY_SEGMENT

    def name(self, value: HistorySegment) -> str:
        return value.name

    def encode(self, value: HistorySegment) -> Body:
        f = value.file
        if len(f.execution_names) > MAX_EXECUTIONS:
            raise ValueError(
                f"a history segment holds at most {MAX_EXECUTIONS} execution names, "
                f"{f.uri} has {len(f.execution_names)}"
            )
        spec: dict[str, Any] = {
            "uri": f.uri,
            "table": f.table,
            "project": f.project,
            "domain": f.domain,
            "month": f.month,
            "rows": f.rows,
            "bytes": f.bytes,
            "sha256": f.sha256,
        }
        for key, moment in (("minCreatedAt", f.min_created_at), ("maxCreatedAt", f.max_created_at)):
            if moment is not None:
                spec[key] = _time(moment)
        if value.replaces:
            spec["replaces"] = list(value.replaces)
        status: dict[str, Any] = {"phase": value.phase}
        if f.execution_names:
            status["executions"] = list(f.execution_names)
        labels = identity_labels(
            project=f.project, domain=f.domain, table=f.table.replace("_", "-")
        )
        return {"metadata": {"labels": labels}, "spec": spec, "status": status}

    def decode(self, body: Body) -> HistorySegment:
        spec, status = body["spec"], body.get("status") or {}
        file = HistoryFile(
            uri=spec["uri"],
            table=spec["table"],
            project=spec["project"],
            domain=spec["domain"],
            month=spec["month"],
            rows=int(spec.get("rows", 0)),
            bytes=int(spec.get("bytes", 0)),
            sha256=spec["sha256"],
            min_created_at=_parse_time(spec.get("minCreatedAt")),
            max_created_at=_parse_time(spec.get("maxCreatedAt")),
            execution_names=tuple(status.get("executions") or ()),
        )
        return HistorySegment(
            file, tuple(spec.get("replaces") or ()), status.get("phase", COMMITTED)
        )
