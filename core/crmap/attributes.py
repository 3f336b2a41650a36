"""One row of flyteadmin's ``resources`` table (one level, one resource type) <-> a
MatchableAttributes custom resource.

The level is the (project, domain, workflow, launch plan) tuple, "" meaning "not set"; with the
resource type it is the row's key, and the object name is a pure function of it, so two writers
of the same row meet on one object (its resourceVersion serializes them). The payload
(admin.MatchingAttributes) is kept as protobuf JSON with proto field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flyteidl.admin import matchable_resource_pb2
from google.protobuf import json_format

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.names import object_name
from flyteadmin.core.store import Body

MatchableResource = matchable_resource_pb2.MatchableResource
MatchingAttributes = matchable_resource_pb2.MatchingAttributes

Key = tuple[int, str, str, str, str]  # resource type, project, domain, workflow, launch plan


@dataclass(frozen=True)
class AttributeRow:
    """Never mutate ``attributes``: the row is shared by the watch cache (copy it instead)."""

    resource_type: int  # admin.MatchableResource
    project: str
    domain: str = ""
    workflow: str = ""
    launch_plan: str = ""
    attributes: MatchingAttributes = field(default_factory=MatchingAttributes, hash=False)

    @property
    def key(self) -> Key:
        return (self.resource_type, self.project, self.domain, self.workflow, self.launch_plan)


def attributes_object_name(
    resource_type: int, project: str, domain: str = "", workflow: str = "", launch_plan: str = ""
) -> str:
    type_name = MatchableResource.Name(resource_type)
    return object_name(
        [project, domain, workflow, launch_plan, type_name],
        "attributes",
        type_name,
        project,
        domain,
        workflow,
        launch_plan,
    )


def _to_json(message: MatchingAttributes) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


class AttributesCodec:
    kind = crds.MATCHABLE_ATTRIBUTES

    def name(self, value: AttributeRow) -> str:
        return attributes_object_name(*value.key)

    def encode(self, value: AttributeRow) -> Body:
        spec = {
            "resourceType": MatchableResource.Name(value.resource_type),
            "project": value.project,
            "domain": value.domain,
            "workflow": value.workflow,
            "launchPlan": value.launch_plan,
            "attributes": _to_json(value.attributes),
        }
        labels = identity_labels(project=value.project, domain=value.domain, name=value.workflow)
        return {"metadata": {"labels": labels}, "spec": spec}

    def decode(self, body: Body) -> AttributeRow:
        spec = body["spec"]
        attributes = MatchingAttributes()
        json_format.ParseDict(spec.get("attributes") or {}, attributes, ignore_unknown_fields=True)
        return AttributeRow(
            resource_type=MatchableResource.Value(spec["resourceType"]),
            project=spec["project"],
            domain=spec.get("domain", ""),
            workflow=spec.get("workflow", ""),
            launch_plan=spec.get("launchPlan", ""),
            attributes=attributes,
        )
