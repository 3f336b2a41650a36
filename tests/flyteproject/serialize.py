"""Serialize the sample project in-process with flytekit, the way `pyflyte register` does, and
print {"<resource type>/<name>": base64 of the admin spec} as JSON (run in a subprocess, because
flytekit keeps loaded entities in process-global state)."""

import base64
import json
import sys
from pathlib import Path

from flyteidl.core import identifier_pb2
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.repo import serialize_get_control_plane_entities, serialize_load_only


def main(project: str, domain: str, version: str) -> None:
    root = str(Path(__file__).parent)
    settings = SerializationSettings(
        project=project,
        domain=domain,
        version=version,
        image_config=ImageConfig.auto_default_image(),
    )
    serialize_load_only(["myproject"], settings, root)
    out = {}
    for entity in serialize_get_control_plane_entities(settings, root, is_registration=True):
        proto = entity.to_flyte_idl()
        ident = entity.id if hasattr(entity, "id") else entity.template.id
        kind = identifier_pb2.ResourceType.Name(ident.resource_type)
        out[f"{kind}/{ident.name}"] = base64.b64encode(proto.SerializeToString()).decode()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:4])
