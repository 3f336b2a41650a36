"""Session fixtures: one real Kubernetes control plane for the whole run.

By default the local control plane (etcd + kube-apiserver + kube-controller-manager built from
Go modules, see flyteadmin.devstack) is started on 127.0.0.1 and stopped at the end. Set
FLYTEADMIN_TEST_KUBECONFIG to run against an existing cluster instead (kind, or a real one);
plain KUBECONFIG is deliberately not used, so a developer's everyday cluster is never touched
by accident.

A GCS emulator (fake-gcs-server, built from Go modules like the Kubernetes binaries, objects on
tmpfs) is started for the session on first use (flyteadmin.devstack.gcs).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Every write the store keeps without decoding is decoded anyway and compared (core/store.py);
# set before any flyteadmin module is imported, and inherited by the servers tests start.
os.environ["FLYTEADMIN_VERIFY_WRITE_THROUGH"] = "1"

if TYPE_CHECKING:
    from flyteadmin.core.config import StorageSettings
    from flyteadmin.devstack.gcs import GcsEmulator


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    existing = os.environ.get("FLYTEADMIN_TEST_KUBECONFIG")
    if existing:
        yield Path(existing)
        return
    from flyteadmin.devstack.controlplane import start_control_plane

    plane = start_control_plane(log=print)
    try:
        yield plane.kubeconfig
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube_api(kubeconfig: Path):
    """An admin ``kubernetes.client.ApiClient`` for checks made from the test side."""
    from kubernetes import config

    client = config.new_client_from_config(str(kubeconfig))
    yield client
    client.close()


@pytest.fixture
def unique() -> str:
    """A short random DNS-1123 suffix for names that must not collide between tests."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """The session's GCS emulator on 127.0.0.1, with its bucket and a signing key."""
    from flyteadmin.devstack.gcs import start_gcs_emulator

    emulator = start_gcs_emulator(tmp_path_factory.mktemp("gcs"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def storage_settings(gcs: GcsEmulator, unique: str) -> StorageSettings:
    """``Settings.storage`` on the session's emulator, under a prefix of the test's own."""
    from flyteadmin.core.config import StorageSettings

    return gcs.storage_settings(StorageSettings(prefix=f"test-{unique}"))
