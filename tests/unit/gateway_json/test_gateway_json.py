"""The HTTP door's JSON equals flyteadmin's, field by field, for both JSON marshalers.

``golden.jsonl`` holds, per case of ``cases.py``, the message's bytes and its JSON as written by
grpc-gateway v2.28.0 with flyteadmin v1.16.8's options (the Go program in
``tools/gatewayjson``). Regenerate it after changing a case (needs Go and the module proxy):
``UPDATE_GOLDEN=1 pytest tests/unit/gateway_json``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from google.protobuf import symbol_database

from flyteadmin.api_server.gateway import JSON, WILDCARD
from tests.unit.gateway_json.cases import CASES, golden_input, wire

GOLDEN_FILE = Path(__file__).parent / "golden.jsonl"
GENERATOR = Path(__file__).resolve().parents[3] / "tools" / "gatewayjson"
if os.environ.get("UPDATE_GOLDEN") == "1":
    GOLDEN_FILE.write_text(
        subprocess.run(
            ["go", "run", "."], cwd=GENERATOR, input=golden_input(), text=True,
            capture_output=True, check=True,
        ).stdout
    )  # fmt: skip
GOLDEN = [json.loads(line) for line in GOLDEN_FILE.read_text().splitlines()]


def test_golden_file_covers_every_case_with_its_current_bytes() -> None:
    assert [g["name"] for g in GOLDEN] == list(CASES), "regenerate golden.jsonl (see above)"
    for golden in GOLDEN:
        message = CASES[golden["name"]]()
        assert message.DESCRIPTOR.full_name == golden["type"]
        assert wire(message) == golden["wire"], f"{golden['name']}: regenerate golden.jsonl"


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: g["name"])
def test_json_as_flyteadmin_writes_it(golden: dict) -> None:
    message_class = symbol_database.Default().GetSymbol(golden["type"])
    message = message_class.FromString(bytes.fromhex(golden["wire"]))
    assert json.loads(JSON.encode(message)) == golden["json"]  # Accept: application/json
    assert json.loads(WILDCARD.encode(message)) == golden["wildcard"]  # a browser's Accept


def test_default_inputs_are_literals_not_their_oneof_name() -> None:
    """The launch plan page's default values (issue 14): the literal itself, int64 as a string."""
    golden = next(g for g in GOLDEN if g["name"] == "launch_plan_with_defaults")
    parameter = golden["json"]["launch_plans"][0]["closure"]["expected_inputs"]["parameters"]["a"]
    assert parameter["default"]["scalar"]["primitive"] == {"integer": "5"}
    assert parameter["default"]["hash"] == "" and parameter["default"]["metadata"] == {}
    assert parameter["var"]["type"]["structure"] is None  # an unset message is null
