"""admin.Project <-> Project custom resource. The object name is the project id (a DNS-1123
label, checked at registration). ``domains`` is not stored: it always comes from config."""

from __future__ import annotations

from flyteidl.admin import common_pb2, project_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.store import Body

_State = project_pb2.Project.ProjectState


class ProjectCodec:
    kind = crds.PROJECT

    def name(self, value: project_pb2.Project) -> str:
        return value.id

    def encode(self, value: project_pb2.Project) -> Body:
        spec = {
            "id": value.id,
            "name": value.name,
            "description": value.description,
            "state": _State.Name(value.state),
        }
        if value.HasField("labels"):  # kept apart from "no labels", so decode gives the same
            spec["labels"] = dict(value.labels.values)
        if value.org:
            spec["org"] = value.org
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
        return project
