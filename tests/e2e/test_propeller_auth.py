"""`flyteadmin dev --auth`: propeller gets the dev client's credentials and its events, sent with
a token from the built-in authorization server, are accepted: a workflow runs to SUCCEEDED."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

from tests.devstack import start_dev, stop
from tests.e2e.test_propeller_run import FLOWS
from tests.pyflyte import pyflyte


def test_propeller_reports_with_a_token_when_dev_requires_auth(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "propeller_flows.py").write_text(FLOWS)
    proc, found, log = start_dev(tmp_path, "--data-dir", str(tmp_path / "state"), "--auth")
    try:
        assert "flytepropeller: running" in log.read_text(), "propeller is not built/started"
        propeller_config = yaml.safe_load(
            (tmp_path / "state" / "propeller" / "propeller.yaml").read_text()
        )
        assert propeller_config["admin"]["authType"] == "ClientSecret"
        result = pyflyte(
            found["flytekit"], "run", "--remote", "--project", "flytesnacks", "--domain",
            "development", "propeller_flows.py", "add", "--a", "2", "--b", "3", cwd=flows,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        name = re.search(r"/executions/([a-z0-9-]+)", result.stdout).group(1)
        remote = FlyteRemote(
            Config.auto(found["flytekit"]),
            default_project="flytesnacks",
            default_domain="development",
        )
        execution = remote.wait(remote.fetch_execution(name=name), timeout=180, poll_interval=1)
        assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, execution.closure.error
        assert execution.outputs["o0"] == 5
        propeller_log = Path(tmp_path / "state" / "propeller" / "logs" / "flytepropeller.log")
        assert "Fetched new token" in propeller_log.read_text()
    finally:
        out = stop(proc, log)
    assert proc.returncode == 0, out
