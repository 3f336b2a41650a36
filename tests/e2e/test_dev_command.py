"""`flyteadmin dev` as a user runs it: starts everything, serves, writes configs, stops cleanly."""

from __future__ import annotations

from pathlib import Path

import yaml
from flytekit.clients.friendly import SynchronousFlyteClient
from flytekit.configuration import Config, PlatformConfig
from flytekit.models.core.identifier import Identifier, ResourceType

from flyteadmin.devstack.processes import http_ok
from tests.devstack import start_dev, stop
from tests.pyflyte import register_sample_project


def test_dev_serves_flytekit_and_stops_everything(tmp_path):
    proc, found, log = start_dev(tmp_path, "--data-dir", str(tmp_path / "state"))
    try:
        config = yaml.safe_load(Path(found["flytekit"]).read_text())
        assert config["admin"] == {
            "endpoint": f"dns:///127.0.0.1:{found['grpc']}",
            "insecure": True,
        }
        client = SynchronousFlyteClient(Config.auto(found["flytekit"]).platform)
        projects, _ = client.list_projects_paginated(limit=10)
        assert [p.id for p in projects] == ["flytesnacks"]  # seeded
        assert http_ok(f"http://127.0.0.1:{found['http']}/healthcheck")
        # The user's first step: register a project with pyflyte, using the printed config.
        register_sample_project(found["flytekit"])
        remote_wf = client.get_workflow(
            Identifier(
                ResourceType.WORKFLOW,
                "flytesnacks",
                "development",
                "myproject.workflows.pipeline",
                "v1",
            )
        )
        assert remote_wf.closure.compiled_workflow.primary.template.nodes
        kubeconfig = yaml.safe_load(Path(found["kubeconfig"]).read_text())
        server = kubeconfig["clusters"][0]["cluster"]["server"]
    finally:
        out = stop(proc, log)
    assert proc.returncode == 0, out
    assert "stopped" in out
    # One API-server worker process unless --workers (or server.workers) says otherwise.
    assert "API server: 1 worker process(es)" in out, out
    # Only lines a user acts on: no Kopf signal warning, no gRPC fork notice.
    assert "OS signals are ignored" not in out and "fork_posix" not in out, out
    port = int(server.rsplit(":", 1)[1])
    # kube-apiserver (and with it etcd and the controller manager) is gone.
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0

    # --data-dir keeps the cluster's state: the project created before is still there.
    proc, found, log = start_dev(
        tmp_path, "--data-dir", str(tmp_path / "state"), "--project", "other"
    )
    try:
        # (flytekit caches config files by path, so read the rewritten one ourselves.)
        admin = yaml.safe_load(Path(found["flytekit"]).read_text())["admin"]
        client = SynchronousFlyteClient(
            PlatformConfig(endpoint=admin["endpoint"], insecure=admin["insecure"])
        )
        projects, _ = client.list_projects_paginated(limit=10)
        assert sorted(p.id for p in projects) == ["flytesnacks", "other"]
    finally:
        stop(proc, log)
