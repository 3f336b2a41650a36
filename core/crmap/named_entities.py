"""Named-entity metadata (description, state) and, for launch plans, the active version."""

from __future__ import annotations

from dataclasses import dataclass

from flyteidl.admin import common_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.names import object_name
from flyteadmin.core.store import Body

RT = identifier_pb2.ResourceType
State = common_pb2.NamedEntityState


@dataclass(frozen=True)
class NamedEntityMeta:
    resource_type: identifier_pb2.ResourceType
    project: str
    domain: str
    name: str
    description: str = ""
    state: common_pb2.NamedEntityState = State.NAMED_ENTITY_ACTIVE
    active_version: str = ""

    @property
    def key(self) -> tuple[int, str, str, str]:
        return (self.resource_type, self.project, self.domain, self.name)


def named_entity_object_name(resource_type: int, project: str, domain: str, name: str) -> str:
    return object_name([name], "named", RT.Name(resource_type), project, domain, name)


class NamedEntityCodec:
    kind = crds.NAMED_ENTITY

    def name(self, value: NamedEntityMeta) -> str:
        return named_entity_object_name(*value.key)

    def encode(self, value: NamedEntityMeta) -> Body:
        return {
            "metadata": {
                "labels": identity_labels(
                    project=value.project, domain=value.domain, name=value.name
                )
            },
            "spec": {
                "resourceType": RT.Name(value.resource_type),
                "project": value.project,
                "domain": value.domain,
                "name": value.name,
                "description": value.description,
                "state": State.Name(value.state),
                "activeVersion": value.active_version,
            },
        }

    def decode(self, body: Body) -> NamedEntityMeta:
        spec = body["spec"]
        return NamedEntityMeta(
            resource_type=RT.Value(spec["resourceType"]),
            project=spec["project"],
            domain=spec["domain"],
            name=spec["name"],
            description=spec.get("description", ""),
            state=State.Value(spec.get("state", "NAMED_ENTITY_ACTIVE")),
            active_version=spec.get("activeVersion", ""),
        )
