"""`flyteadmin dev --clusters N`: which clusters it starts (flyteadmin/devstack/dataplanes.py)."""

from __future__ import annotations

import pytest

from flyteadmin.core.config import (
    ConfigError,
    ExecutionCluster,
    ExecutionClusterSettings,
    Settings,
)
from flyteadmin.devstack.dataplanes import planned_clusters


def configured(*clusters: ExecutionCluster) -> Settings:
    return Settings(execution_clusters=ExecutionClusterSettings(clusters=clusters))


def test_without_configured_clusters_each_is_named_and_labelled_by_its_number():
    assert planned_clusters(2, Settings()) == [
        ExecutionCluster(name="cluster-1", labels=("cluster-1",)),
        ExecutionCluster(name="cluster-2", labels=("cluster-2",)),
    ]


def test_configured_clusters_come_first_with_their_labels_weights_and_pools():
    gpu = ExecutionCluster(name="gpu", kubeconfig="/x", labels=("gpu",), weight=3, pools=("p",))
    planned = planned_clusters(2, configured(gpu))
    assert planned == [gpu, ExecutionCluster(name="cluster-2", labels=("cluster-2",))]


@pytest.mark.parametrize(
    ("count", "settings", "message"),
    [
        (0, Settings(), "at least one data-plane cluster"),
        (
            1,
            configured(ExecutionCluster(name="a"), ExecutionCluster(name="b")),
            "the configuration lists 2 execution clusters",
        ),
    ],
)
def test_impossible_counts_are_refused(count, settings, message):
    with pytest.raises(ConfigError, match=message):
        planned_clusters(count, settings)
