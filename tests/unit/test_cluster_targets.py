"""The operator's cluster connections (core/cluster_targets.py), without a network: which
clusters get namespaces and cluster resources, and which failures mean "unavailable"."""

from __future__ import annotations

import urllib3
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core import kube
from flyteadmin.core.cluster_targets import (
    ClusterUnavailable,
    Targets,
    unavailable_reason,
)
from flyteadmin.core.config import ExecutionCluster, ExecutionClusterSettings, Settings


def kubeconfig(path, server: str) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


def targets(tmp_path, *clusters: ExecutionCluster) -> Targets:
    api = client.ApiClient(client.Configuration(host="https://home.invalid"))
    cfg = ExecutionClusterSettings(clusters=clusters)
    return Targets(Settings(execution_clusters=cfg), api, kube.KubeHttp(api))


def test_single_cluster_mode_is_the_control_planes_own_cluster(tmp_path):
    only = targets(tmp_path)
    assert not only.multi
    assert only.get("") is only.home and only.get("east") is None
    assert only.namespace_targets() == only.resource_targets() == [only.home]


def test_each_cluster_has_its_connection_and_its_share_of_the_work(tmp_path):
    east = kubeconfig(tmp_path / "east", "https://east.invalid:6443")
    found = targets(
        tmp_path,
        ExecutionCluster(name="home", in_cluster=True),
        ExecutionCluster(name="east", kubeconfig=east, template_data={"q": "8"}),
        ExecutionCluster(name="off", kubeconfig=east, enabled=False),
    )
    home, east_t, off = found.get("home"), found.get("east"), found.get("off")
    assert home.api is found.home.api and home.shared  # in_cluster: the control plane's client
    assert east_t.api.configuration.host == "https://east.invalid:6443" and not east_t.shared
    assert east_t.template_data == {"q": "8"}
    # Namespaces: the control plane's cluster once, plus every other enabled cluster.
    assert found.namespace_targets() == [found.home, east_t]
    # Cluster resources: the enabled execution clusters (flyteadmin's valid targets).
    assert found.resource_targets() == [home, east_t]
    assert off not in found.namespace_targets() + found.resource_targets()


def test_a_failure_marks_the_cluster_with_its_name_and_the_cause(tmp_path):
    east = kubeconfig(tmp_path / "east", "https://east.invalid:6443")
    found = targets(tmp_path, ExecutionCluster(name="east", kubeconfig=east))
    target = found.get("east")
    found.mark_unavailable(target, "cannot reach the Kubernetes API: refused")
    assert target.unavailable == (
        "cluster east is unavailable: cannot reach the Kubernetes API: refused"
    )


def test_what_counts_as_unavailable():
    assert unavailable_reason(kube.KubeError(0, "cannot reach the Kubernetes API: x")) == (
        "cannot reach the Kubernetes API: x"
    )
    assert unavailable_reason(kube.KubeError(503, "etcd down")) == "etcd down"
    assert unavailable_reason(kube.KubeError(429, "slow down")) == "slow down"
    assert unavailable_reason(ClusterUnavailable("no CRD")) == "no CRD"
    assert unavailable_reason(urllib3.exceptions.MaxRetryError(None, "/", "refused"))
    assert unavailable_reason(ConnectionRefusedError(111, "refused"))
    assert unavailable_reason(ApiException(status=500, reason="boom")) == "500 boom"
    # Answers about the request itself: the execution fails or the error is raised.
    for answer in (kube.KubeError(403, "exceeded quota"), kube.KubeError(404, "not found")):
        assert unavailable_reason(answer) is None
    assert unavailable_reason(ApiException(status=422, reason="invalid")) is None
    assert unavailable_reason(ValueError("a bug")) is None
