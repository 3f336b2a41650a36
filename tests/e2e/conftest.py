"""The end-to-end suite's control plane: one per session, in the mode tests/e2e/stacks.py
describes (dev by default; helm against a cluster with the chart installed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stacks import Stack, running_stack


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("e2e-stack")) as stack:
        yield stack


@pytest.fixture(scope="session")
def e2e_kube(e2e_stack: Stack):
    """An admin Kubernetes client on the stack's cluster, for the checks."""
    from flyteadmin.core import kube

    api = kube.api_client(str(e2e_stack.kubeconfig))
    yield api
    api.close()
