"""Execution cluster selection (core/clusters.py), pure parts: the configuration's checks,
flyteadmin's order of label sources, the weighted and stable choice, cluster pools. The
attribute rows go through the real resolution engine (``core.attributes.resolve``)."""

from __future__ import annotations

import collections
import re

import pytest
from flyteidl.admin import cluster_assignment_pb2, execution_pb2, matchable_resource_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core.attributes import resolve
from flyteadmin.core.clusters import (
    CLUSTER,
    LABEL,
    POOL,
    ClusterChooser,
    check_settings,
    weighted_choice,
)
from flyteadmin.core.config import (
    ConfigError,
    ExecutionCluster,
    ExecutionClusterSettings,
    load_settings,
)
from flyteadmin.core.crmap.attributes import AttributeRow
from flyteadmin.core.errors import AdminError, Code

MR = matchable_resource_pb2.MatchableResource


class Rows:
    """The attribute store's ``effective`` over fixed rows, with the real resolution."""

    def __init__(self, *rows: AttributeRow) -> None:
        self.rows = rows

    def effective(self, resource_type, project, domain, workflow="", launch_plan=""):
        found = resolve(
            self.rows,
            resource_type=resource_type,
            project=project,
            domain=domain,
            workflow=workflow,
            launch_plan=launch_plan,
        )
        return found.attributes if found else None


def label_row(label: str, project="p", domain="", workflow="") -> AttributeRow:
    attributes = matchable_resource_pb2.MatchingAttributes(
        execution_cluster_label=matchable_resource_pb2.ExecutionClusterLabel(value=label)
    )
    return AttributeRow(MR.EXECUTION_CLUSTER_LABEL, project, domain, workflow, "", attributes)


def pool_row(pool: str, project="p", domain="") -> AttributeRow:
    attributes = matchable_resource_pb2.MatchingAttributes(
        cluster_assignment=cluster_assignment_pb2.ClusterAssignment(cluster_pool_name=pool)
    )
    return AttributeRow(MR.CLUSTER_ASSIGNMENT, project, domain, attributes=attributes)


def cluster(name: str, *labels: str, **kwargs) -> ExecutionCluster:
    return ExecutionCluster(name=name, kubeconfig=f"/k/{name}", labels=labels, **kwargs)


EAST_WEST = (cluster("east", "gpu"), cluster("west", "cpu"), cluster("north", "cpu", "gpu"))


def place(clusters=EAST_WEST, rows=(), name="a1", label="", pool="", workflow="wf", **cfg):
    chooser = ClusterChooser(
        ExecutionClusterSettings(clusters=clusters, **cfg), Rows(*rows), executions={}
    )
    spec = execution_pb2.ExecutionSpec()
    if label:
        spec.execution_cluster_label.value = label
    if pool:
        spec.cluster_assignment.cluster_pool_name = pool
    ident = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name=name)
    resolved = chooser.place(spec, ident, workflow, "lp")
    return spec.metadata.system_metadata.execution_cluster, resolved


def spread(n: int = 600, **kwargs) -> collections.Counter:
    return collections.Counter(place(name=f"x{i}", **kwargs)[0] for i in range(n))


def test_single_cluster_mode_places_everything_home_and_refuses_an_explicit_label():
    assert place(clusters=()) == ("", {})
    # An attribute label is ignored there, as flyteadmin's in-cluster target does.
    assert place(clusters=(), rows=[label_row("gpu")]) == ("", {})
    with pytest.raises(AdminError) as err:
        place(clusters=(), label="gpu")
    assert err.value.code == Code.INVALID_ARGUMENT
    assert "no execution clusters are configured" in err.value.message


def test_label_sources_in_flyteadmins_order():
    # The execution's own label wins over every attribute.
    rows = [label_row("cpu"), label_row("cpu", domain="d", workflow="wf")]
    assert set(spread(100, rows=rows, label="gpu")) == {"east", "north"}
    # Then the most specific attribute: the workflow's over the project's.
    rows = [label_row("cpu"), label_row("gpu", domain="d", workflow="wf")]
    assert set(spread(100, rows=rows)) == {"east", "north"}
    assert set(spread(100, rows=rows, workflow="other")) == {"west", "north"}
    # Then the default label; then every enabled cluster.
    assert set(spread(100, default_label="gpu")) == {"east", "north"}
    assert set(spread(300)) == {"east", "west", "north"}
    # The choice is repeated in the resolved configuration (kubectl's column), with the label.
    cluster, resolved = place(label="gpu")
    assert resolved == {CLUSTER: cluster, LABEL: "gpu"}
    cluster, resolved = place()
    assert resolved == {CLUSTER: cluster}


def test_a_label_no_enabled_cluster_serves_falls_back_like_flyteadmin():
    clusters = (cluster("east", "gpu", enabled=False), cluster("west", "cpu"))
    assert place(clusters=clusters, label="gpu", default_label="cpu") == (
        "west",
        {CLUSTER: "west", LABEL: "cpu"},
    )
    assert place(clusters=clusters, label="tpu") == ("west", {CLUSTER: "west"})


def test_the_choice_is_stable_per_execution_and_follows_the_weights():
    clusters = (cluster("a", "l", weight=3), cluster("b", "l", weight=1), cluster("c", "l"))
    first = [place(clusters=clusters, name=f"n{i}")[0] for i in range(50)]
    again = [place(clusters=tuple(reversed(clusters)), name=f"n{i}")[0] for i in range(50)]
    assert first == again  # same name, same cluster, whatever the configuration order
    counts = spread(2000, clusters=clusters)
    assert counts["a"] > 2 * counts["b"] and counts["a"] > 2 * counts["c"]
    assert counts["b"] > 0 and counts["c"] > 0


def test_zero_weights_are_left_out_unless_every_weight_is_zero():
    some = (cluster("a", weight=0), cluster("b"))
    assert set(spread(100, clusters=some)) == {"b"}
    none = (cluster("a", weight=0), cluster("b", weight=0))
    assert set(spread(100, clusters=none)) == {"a", "b"}


def test_weighted_choice_is_seeded_not_random():
    clusters = [cluster("a"), cluster("b")]
    assert len({weighted_choice(clusters, "same").name for _ in range(20)}) == 1


def test_pools_from_attribute_then_config_and_a_conflicting_request_is_refused():
    clusters = (
        cluster("east", "gpu", pools=("big",)),
        cluster("west", "gpu", pools=("small",)),
        cluster("north", "gpu"),
    )
    assert set(spread(100, clusters=clusters, rows=[pool_row("big")])) == {"east"}
    assert place(clusters=clusters, rows=[pool_row("big")])[1] == {CLUSTER: "east", POOL: "big"}
    assignments = {"d": "small"}
    assert set(spread(100, clusters=clusters, pool_assignments=assignments)) == {"west"}
    # The attribute wins over the domain's configured pool; a request may repeat it.
    both = dict(rows=[pool_row("big", domain="d")], pool_assignments=assignments)
    assert place(clusters=clusters, pool="big", **both)[0] == "east"
    with pytest.raises(AdminError) as err:
        place(clusters=clusters, pool="small", **both)
    assert err.value.code == Code.INVALID_ARGUMENT
    assert err.value.message == (
        'execution with project "p" and domain "d" cannot run on cluster pool "small", '
        'because it is configured to run on pool "big"'
    )
    # A request's pool applies when nothing is configured.
    assert place(clusters=clusters, pool="small")[0] == "west"


def test_a_pool_without_an_enabled_cluster_is_a_failed_precondition():
    clusters = (cluster("east", pools=("big",), enabled=False), cluster("west"))
    with pytest.raises(AdminError) as err:
        place(clusters=clusters, pool="big")
    assert err.value.code == Code.FAILED_PRECONDITION
    assert "cluster pool 'big' has no enabled execution cluster" in err.value.message
    with pytest.raises(AdminError) as err:
        place(clusters=(cluster("east", enabled=False),))
    assert err.value.message == "no execution cluster is enabled"
    # Single-cluster mode records the pool and runs at home, as flyteadmin's executor does.
    assert place(clusters=(), pool="big") == ("", {POOL: "big"})


@pytest.mark.parametrize(
    ("clusters", "extra", "message"),
    [
        ((cluster("East"),), {}, "'East' must be lower-case"),
        ((cluster("propeller"),), {}, "flytepropeller's default cluster-id"),
        ((cluster("a"), cluster("a")), {}, "cluster 'a' is listed twice"),
        ((ExecutionCluster(name="a"),), {}, "set exactly one of kubeconfig and in_cluster"),
        (
            (ExecutionCluster(name="a", kubeconfig="k", in_cluster=True),),
            {},
            "set exactly one of kubeconfig and in_cluster",
        ),
        ((ExecutionCluster(name="a", in_cluster=True, context="c"),), {}, "context needs"),
        ((cluster("a", weight=-1),), {}, "must not be negative"),
        ((cluster("a", "x"),), {"default_label": "y"}, "no cluster serves 'y'"),
        ((cluster("a"),), {"probe_seconds": 0}, "probe_seconds: must be positive"),
    ],
)
def test_configuration_mistakes_are_refused(clusters, extra, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_settings(ExecutionClusterSettings(clusters=clusters, **extra))


def test_the_yaml_section_loads(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "execution_clusters:\n"
        "  default_label: cpu\n"
        "  pool_assignments: {production: big}\n"
        "  clusters:\n"
        "    - {name: home, in_cluster: true, labels: [cpu], weight: 2}\n"
        "    - name: far\n"
        "      kubeconfig: /etc/flyteadmin/clusters/far/kubeconfig\n"
        "      labels: [gpu]\n"
        "      pools: [big]\n"
        "      enabled: false\n"
        "      template_data: {quota: '8'}\n"
    )
    cfg = load_settings(path, env={}).execution_clusters
    check_settings(cfg)
    assert [c.name for c in cfg.clusters] == ["home", "far"]
    assert cfg.clusters[0] == ExecutionCluster(
        name="home", in_cluster=True, labels=("cpu",), weight=2.0
    )
    assert cfg.clusters[1].pools == ("big",) and cfg.clusters[1].template_data == {"quota": "8"}
    assert cfg.pool_assignments == {"production": "big"}
