"""admin.Project <-> Project custom resource. The object name is the project id (a DNS-1123
label, checked at registration). ``domains`` is not stored: it always comes from config."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flyteidl.admin import common_pb2, project_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.store import Body
from flyteadmin.core.timestamps import parse_time, time_text

_State = project_pb2.Project.ProjectState


class ProjectCodec:
    """``created`` maps each project id to its creation time, to the microsecond (ListProjects
    sorts created_at on it). admin.Project has no field for it, and the store keeps a value it
    wrote without decoding it again, so the codec keeps the times beside the values: ``decode``
    records ``spec.createdAt`` (for a project written before that field, its
    creationTimestamp), core/projects.py records a new project's time before creating it, and
    ``encode`` writes the recorded time back on every write."""

    kind = crds.PROJECT

    def __init__(self) -> None:
        self.created: dict[str, dt.datetime] = {}

    def name(self, value: project_pb2.Project) -> str:
        return value.id

    def encode(self, value: project_pb2.Project) -> Body:
        spec: dict[str, Any] = {
            "id": value.id,
            "name": value.name,
            "description": value.description,
            "state": _State.Name(value.state),
        }
        if value.HasField("labels"):  # kept apart from "no labels", so decode gives the same
            spec["labels"] = dict(value.labels.values)
        if value.org:
            spec["org"] = value.org
        created = self.created.get(value.id)
        if created is not None:
            spec["createdAt"] = time_text(created)
        return {"metadata": {"labels": identity_labels(project=value.id)}, "spec": spec}

    def decode(self, body: Body) -> project_pb2.Project:
        spec = body["spec"]
        project = project_pb2.Project(
            id=spec["id"],
            name=spec.get("name", ""),
            description=spec.get("description", ""),
            state=_State.Value(spec.get("state", "ACTIVE")),
            org=spec.get("org", ""),
        )
        if "labels" in spec:
            project.labels.CopyFrom(common_pb2.Labels(values=spec["labels"] or {}))
        created = parse_time(spec.get("createdAt")) or parse_time(
            (body.get("metadata") or {}).get("creationTimestamp")
        )
        if created is not None:
            self.created[project.id] = created
        return project
