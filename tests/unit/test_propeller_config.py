"""The dev stack's propeller configuration: our API, the GCS emulator, the local cluster."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from flyteadmin.devstack import propeller


def _setup(tmp_path: Path, **overrides) -> propeller.PropellerSetup:
    key = tmp_path / "sa.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": "p"}))
    values = dict(
        binary=tmp_path / "flytepropeller",
        kubeconfig=str(tmp_path / "kubeconfig"),
        admin_endpoint="127.0.0.1:8089",
        gcs_endpoint="http://127.0.0.1:4443",
        bucket="flyteadmin",
        credentials_file=key,
        workdir=tmp_path / "propeller",
    )
    return propeller.PropellerSetup(**{**values, **overrides})


def test_config_points_propeller_at_the_local_stack(tmp_path):
    config = propeller.render_config(_setup(tmp_path), prof_port=10254)
    p = config["propeller"]
    assert p["kube-config"] == str(tmp_path / "kubeconfig")
    assert p["limit-namespace"] == "all"
    assert p["leader-election"] == {"enabled": False}
    assert p["prof-port"] == 10254
    assert p["create-flyteworkflow-crd"] is False
    assert p["rawoutput-prefix"] == "gs://flyteadmin/raw"
    assert p["metadata-prefix"] == "metadata/propeller"
    assert config["admin"] == {"endpoint": "dns:///127.0.0.1:8089", "insecure": True}
    assert config["event"]["type"] == "admin"
    assert config["catalog-cache"] == {"type": "noop"}


def test_failed_rounds_back_off_across_a_blob_store_restart(tmp_path):
    """Upstream's workqueue retries a failed round at once (base delay 0): a workflow writing to
    a blob store that is restarting spent its 10 system retries within a second and FAILED.
    With 0.1 s doubling to 60 s, the 10 retries span minutes."""
    queue = propeller.render_config(_setup(tmp_path), prof_port=1)["propeller"]["queue"]["queue"]
    assert queue["type"] == "maxof"
    base = float(queue["base-delay"].removesuffix("ms")) / 1000
    cap = float(queue["max-delay"].removesuffix("s"))
    spent = sum(min(base * 2**k, cap) for k in range(10))  # at least one doubling per retry
    assert spent > 60


def test_storage_is_the_gcs_emulator_through_stow_google(tmp_path):
    setup = _setup(tmp_path)
    storage = propeller.render_config(setup, prof_port=1)["storage"]
    assert storage["type"] == "stow"
    assert storage["container"] == "flyteadmin"
    assert storage["stow"]["kind"] == "google"
    assert json.loads(storage["stow"]["config"]["json"])["type"] == "service_account"
    assert storage["stow"]["config"]["project_id"]
    # The Go GCS client in propeller and flytekit in the Pods find the emulator the same way.
    host = propeller.propeller_env(setup)["STORAGE_EMULATOR_HOST"]
    assert host == "http://127.0.0.1:4443"
    plugins = propeller.render_config(setup, prof_port=1)["plugins"]["k8s"]
    pod_env = {k: v for entry in plugins["default-env-vars"] for k, v in entry.items()}
    assert pod_env["STORAGE_EMULATOR_HOST"] == host
    assert pod_env["FSSPEC_GS_TOKEN"] == "anon"  # gcsfs: no Google credentials


def test_python_and_container_tasks_use_the_pod_plugin(tmp_path):
    tasks = propeller.render_config(_setup(tmp_path), prof_port=1)["tasks"]["task-plugins"]
    assert "container" in tasks["enabled-plugins"]
    assert tasks["default-for-task-types"]["container"] == "container"
    assert tasks["default-for-task-types"]["container_array"] == "k8s-array"


def test_overrides_raw_output_namespaces_and_admin_auth(tmp_path):
    setup = _setup(
        tmp_path,
        raw_output_prefix="gs://other/raw",
        limit_namespace="flytesnacks-development",
        admin_auth={"authType": "ClientSecret", "clientId": "c"},
    )
    config = propeller.render_config(setup, prof_port=1)
    assert config["propeller"]["rawoutput-prefix"] == "gs://other/raw"
    assert config["propeller"]["limit-namespace"] == "flytesnacks-development"
    assert config["admin"]["authType"] == "ClientSecret"
    assert config["admin"]["insecure"] is True


def _blobs(tmp_path: Path):
    key = tmp_path / "sa.json"
    key.write_text("{}")
    return SimpleNamespace(endpoint="http://127.0.0.1:1", bucket="b", credentials_file=key)


def test_dev_without_go_or_a_binary_says_what_to_do(tmp_path, monkeypatch):
    from flyteadmin.devstack.propeller_build import PropellerBuildError

    monkeypatch.delenv("FLYTEPROPELLER_BINARY", raising=False)
    monkeypatch.setenv("FLYTEADMIN_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", "")  # no Go: nothing can be built
    with pytest.raises(PropellerBuildError, match="Go .* FLYTEPROPELLER_BINARY"):
        propeller.dev_setup(
            workdir=tmp_path, kubeconfig="k", grpc_port=1, blobs=_blobs(tmp_path), log=print
        )


def test_dev_uses_the_given_binary_and_the_dev_client_credentials(tmp_path, monkeypatch):
    binary = tmp_path / "flytepropeller"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("FLYTEPROPELLER_BINARY", str(binary))
    credentials = SimpleNamespace(client_id="flyteadmin-dev", secret_file=tmp_path / "secret")
    setup = propeller.dev_setup(
        workdir=tmp_path,
        kubeconfig="k",
        grpc_port=9000,
        blobs=_blobs(tmp_path),
        credentials=credentials,
        log=lambda m: None,
    )
    assert setup is not None
    assert setup.binary == binary
    assert setup.admin_endpoint == "127.0.0.1:9000"
    assert setup.admin_auth == {
        "authType": "ClientSecret",
        "clientId": "flyteadmin-dev",
        "clientSecretLocation": str(tmp_path / "secret"),
    }


def test_dev_starts_propeller_unless_told_not_to(monkeypatch):
    from flyteadmin import cli
    from flyteadmin.devstack import stack

    seen: list[bool] = []
    monkeypatch.setattr(stack, "run_dev", lambda options: seen.append(options.propeller))
    cli.main(["dev"])
    cli.main(["dev", "--no-propeller"])
    assert seen == [True, False]


def test_task_log_links_point_at_the_pod_runners_files(tmp_path):
    default = propeller.render_config(_setup(tmp_path), prof_port=1)
    assert "logs" not in default["plugins"]  # propeller's own default link
    setup = _setup(tmp_path, pod_logs_dir=tmp_path / "runner" / "pods")
    logs = propeller.render_config(setup, prof_port=1)["plugins"]["logs"]
    assert logs["kubernetes-enabled"] is False
    (template,) = logs["templates"][0]["templateUris"]
    assert template == (
        f"file://{tmp_path}/runner/pods/{{{{ .namespace }}}}/{{{{ .podName }}}}/"
        "{{ .containerName }}.log"
    )


def test_dev_passes_the_number_of_data_plane_clusters(monkeypatch):
    from flyteadmin import cli
    from flyteadmin.devstack import stack

    seen: list[int] = []
    monkeypatch.setattr(stack, "run_dev", lambda options: seen.append(options.clusters))
    cli.main(["dev"])
    cli.main(["dev", "--clusters", "2"])
    assert seen == [0, 2]


def test_cluster_id_is_set_only_for_a_data_plane(tmp_path):
    default = propeller.render_config(_setup(tmp_path), prof_port=1)["propeller"]
    assert "cluster-id" not in default  # propeller's own default, "propeller"
    named = propeller.render_config(_setup(tmp_path, cluster_id="east"), prof_port=1)
    assert named["propeller"]["cluster-id"] == "east"
