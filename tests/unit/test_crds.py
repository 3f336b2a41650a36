"""The CRD manifests are generated from core/crds.py and must not drift."""

from __future__ import annotations

import pytest
import yaml

from flyteadmin.core import crds


@pytest.mark.parametrize(
    "folder", crds.MANIFEST_DIRS, ids=lambda p: str(p.relative_to(crds.REPO_ROOT))
)
def test_committed_manifests_match_the_source_of_truth(folder):
    expected = crds.rendered_files()
    on_disk = {p.name: p.read_text() for p in folder.glob(f"*.{crds.GROUP}.yaml")}
    assert on_disk == expected, "run: python -m flyteadmin.core.crds write"


def test_every_kind_is_in_the_category_with_unique_names():
    manifests = [k.manifest() for k in crds.KINDS]
    names = [m["spec"]["names"] for m in manifests]
    assert all(n["categories"] == [crds.CATEGORY] for n in names)
    every = [n["plural"] for n in names] + [s for n in names for s in n["shortNames"]]
    assert len(every) == len(set(every))
    assert {m["spec"]["group"] for m in manifests} == {"flyteadmin.io"}


def _walk(schema, path="$"):
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("kind", crds.KINDS, ids=lambda k: k.kind)
def test_schemas_are_structural(kind):
    """Every node has a type (the apiserver rejects non-structural schemas); printer columns
    point at fields that exist in the schema, or inside a message kept as written."""
    version = kind.manifest()["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    for path, node in _walk(root):
        assert "type" in node, path
    for column in version["additionalPrinterColumns"]:
        parts = column["jsonPath"].strip(".").split(".")
        if parts[0] == "metadata":
            continue
        node = root
        for part in parts:
            if part not in node.get("properties", {}):
                # Inside a stored protobuf message (kept as written): any field may follow.
                assert node.get("x-kubernetes-preserve-unknown-fields"), column
                break
            node = node["properties"][part]
        else:
            assert node["type"] in ("string", "integer"), column


def test_manifests_are_valid_yaml_documents():
    for text in crds.rendered_files().values():
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"
