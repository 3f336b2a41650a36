"""flytekit against `flyteadmin dev --auth` (the built-in authorization server): `authType:
ClientSecret` registers and runs a workflow through the client-credentials flow (clients.md
§3.3), the execution records the client as its principal, flytepropeller's events (same flow)
are accepted, and a wrong secret fails cleanly."""

from __future__ import annotations

import re
import time
from pathlib import Path

import yaml
from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

from tests.devstack import VALUE, start_dev, stop
from tests.pyflyte import pyflyte, register_sample_project

WAITING = (WorkflowExecutionPhase.UNDEFINED, WorkflowExecutionPhase.QUEUED)


def test_client_secret_registers_and_runs_and_a_wrong_secret_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    proc, found, log = start_dev(tmp_path, "--auth")
    try:
        match = re.search(r"auth: client (\S+), secret file " + VALUE, log.read_text())
        assert match, log.read_text()
        client_id, secret_file = match.group(1), match.group(2)
        config_path = found["flytekit"]
        admin = yaml.safe_load(Path(config_path).read_text())["admin"]
        assert admin["authType"] == "ClientSecret" and admin["clientId"] == client_id
        assert admin["clientSecretLocation"] == secret_file

        register_sample_project(config_path)  # asserts success
        result = pyflyte(
            config_path,
            "run",
            "--remote",
            "myproject/workflows.py",
            "inner",
            "--a",
            "3",
            "--b",
            "4",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        name = re.search(r"/executions/([a-z0-9-]+)", result.stdout)
        assert name, result.stdout

        remote = FlyteRemote(
            Config.auto(config_path), default_project="flytesnacks", default_domain="development"
        )
        execution = remote.fetch_execution(name=name.group(1))
        assert execution.spec.metadata.principal == client_id
        assert execution.inputs["a"] == 3
        # flytepropeller (started by `dev` with the same client) authenticates too: its events
        # move the execution on.
        assert "flytepropeller: running" in log.read_text(), log.read_text()
        deadline = time.monotonic() + 120
        while remote.client.get_execution(execution.id).closure.phase in WAITING:
            assert time.monotonic() < deadline, "no event from flytepropeller"
            time.sleep(0.5)

        # The same client with a wrong secret: a clean failure, not a hang or a retry loop.
        wrong = tmp_path / "wrong_secret"
        wrong.write_text("not-the-secret")
        bad_config = tmp_path / "bad.yaml"
        bad_config.write_text(
            yaml.safe_dump({"admin": {**admin, "clientSecretLocation": str(wrong)}})
        )
        result = pyflyte(
            bad_config, "register", "--project", "flytesnacks", "--domain", "development",
            "--copy", "none", "--version", "v2", "myproject/shared.py",
        )  # fmt: skip
        assert result.returncode != 0
        output = result.stdout + result.stderr
        assert "invalid_client" in output or "401" in output, output
    finally:
        stop(proc, log)
