"""FlyteWorkflow objects built from real compiled closures, compared with golden JSON.

Refresh with ``UPDATE_GOLDEN=1 pytest tests/unit/flyteworkflow``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.flyteworkflow.cases import CASES

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _text(body: dict) -> str:
    # keys sorted: protobuf maps iterate in no fixed order (Go's encoding/json sorts them too)
    return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def test_golden_corpus_matches_the_cases() -> None:
    """An empty or stale corpus would make the comparisons vacuous."""
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        for stale in GOLDEN.glob("*.json"):
            stale.unlink()
        for case in CASES:
            (GOLDEN / f"{case.name}.json").write_text(_text(case.build()))
    files = sorted(p.stem for p in GOLDEN.glob("*.json"))
    assert files, "no golden files: run with UPDATE_GOLDEN=1"
    assert files == sorted(c.name for c in CASES), "run with UPDATE_GOLDEN=1"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden(case) -> None:
    path = GOLDEN / f"{case.name}.json"
    if UPDATE:
        path.write_text(_text(case.build()))
    assert _text(case.build()) == path.read_text()


def _kinds(nodes: dict) -> set[str]:
    out = set()
    for node in nodes.values():
        kind = node["kind"]
        if kind == "workflow":
            kind += ":" + next(iter(node["workflow"]))
        out.add(kind)
        if kind == "array":
            out |= _kinds({"sub": node["array"]["SubNodeSpec"]})
    return out


def test_corpus_covers_every_node_kind() -> None:
    seen = set()
    for case in CASES:
        body = case.build()
        for spec in [body["spec"], *(body.get("subWorkflows") or {}).values()]:
            if spec:
                seen |= _kinds(spec["nodes"])
    assert seen >= {
        "start",
        "end",
        "task",
        "branch",
        "gate",
        "array",
        "workflow:subWorkflowRef",
        "workflow:launchPlanRefId",
    }
