"""The etcd byte budget: the estimate, the thresholds, etcd's own size, its full-disk error."""

from __future__ import annotations

import time

import pytest

from flyteadmin.core import kube
from flyteadmin.core.budget import (
    FLYTEWORKFLOWS,
    StorageBudget,
    _Window,
    database_size,
    resource_figures,
)
from flyteadmin.core.config import ConfigError, EtcdSettings
from flyteadmin.core.errors import AdminError, Code

MIB = 1 << 20


def budget(**overrides) -> StorageBudget:
    settings = {"quota_bytes": 100 * MIB, "object_overhead_bytes": 0, **overrides}
    return StorageBudget(EtcdSettings(**settings))


def test_the_window_forgets_what_was_written_before_the_compaction_interval():
    window = _Window(seconds=300)
    window.add(10, now=0)
    window.add(20, now=100)
    assert window.total(now=200) == 30
    assert window.total(now=350) == 20  # the first revision is compacted away
    assert window.total(now=1000) == 0


def test_the_estimate_counts_live_objects_their_overhead_and_recent_revisions():
    b = budget(object_overhead_bytes=1000)
    b.set_live("Execution", 5 * MIB, 100)
    b.set_live("NodeExecution", 3 * MIB, 900)
    b.written(2 * MIB)
    usage = b.usage()
    assert usage.live_bytes == 8 * MIB and usage.objects == 1000
    assert usage.recent_bytes == 2 * MIB  # a revision's value; no per-object overhead
    assert usage.estimate == 8 * MIB + 1000 * 1000 + 2 * MIB


def test_etcds_database_file_size_is_reported_but_does_not_decide():
    """The file keeps its peak size until defragmented: deciding on it would refuse work for
    good once archiving had freed the space (found by bench.archive: a deadlock)."""
    b = budget(refuse_new_above=0.4)
    b.set_live("Execution", 1 * MIB, 1)
    b.etcd_db_bytes = 90 * MIB
    usage = b.usage()
    assert usage.etcd_db_bytes == 90 * MIB
    assert usage.estimate == 1 * MIB
    b.admit("Execution", new_work=True)


def test_new_work_is_refused_first_then_every_write():
    b = budget(archive_above=0.2, refuse_new_above=0.4, refuse_all_above=0.6)
    b.set_live("Execution", 39 * MIB, 1)
    b.admit("Execution", new_work=True)  # under 40%
    b.set_live("Execution", 41 * MIB, 1)
    with pytest.raises(AdminError) as info:
        b.admit("Execution", new_work=True)
    assert info.value.code == Code.RESOURCE_EXHAUSTED
    assert "etcd" in info.value.message and "Execution" in info.value.message
    b.admit("NodeExecution", new_work=False)  # progress of running work still goes in
    b.set_live("Execution", 61 * MIB, 1)
    with pytest.raises(AdminError) as info:
        b.admit("NodeExecution", new_work=False)
    assert info.value.code == Code.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    "shares", [(0.5, 0.4, 0.6), (0.2, 0.4, 1.0), (0.0, 0.4, 0.6), (0.2, 0.7, 0.6)]
)
def test_shares_must_be_ordered_and_below_the_quota(shares):
    a, n, r = shares
    with pytest.raises(ConfigError):
        EtcdSettings(archive_above=a, refuse_new_above=n, refuse_all_above=r)


def test_database_size_is_read_from_kube_apiservers_metrics():
    text = (
        "# HELP apiserver_storage_size_bytes ...\n"
        "# TYPE apiserver_storage_size_bytes gauge\n"
        'apiserver_storage_size_bytes{storage_cluster_id="etcd-0"} 2.4576e+07\n'
        'apiserver_storage_objects{resource="pods"} 3\n'
    )
    assert database_size(text) == 24576000
    assert database_size("apiserver_request_total 5\n") == 0


def test_flyteworkflows_count_in_the_estimate_from_kube_apiservers_object_count():
    """The operator's FlyteWorkflow objects are in etcd but in no watch cache: without them
    bench.archive filled etcd while the estimate said 45%."""
    text = (
        'apiserver_storage_objects{resource="pods"} 3\n'
        'apiserver_storage_objects{resource="flyteworkflows.flyte.lyft.com"} 1451\n'
    )
    assert resource_figures(text).objects.get(FLYTEWORKFLOWS, 0) == 1451
    pods_only = 'apiserver_storage_objects{resource="pods"} 3\n'
    assert resource_figures(pods_only).objects.get(FLYTEWORKFLOWS, 0) == 0
    b = budget(flyteworkflow_bytes=16384, object_overhead_bytes=1000)
    b.set_live("Execution", 1 * MIB, 10)
    b.flyteworkflows = 100
    usage = b.usage()
    assert usage.live_bytes == 1 * MIB + 100 * 16384
    assert usage.objects == 110
    assert usage.estimate == 1 * MIB + 100 * 16384 + 110 * 1000


# kube-apiserver 1.34 and later: the object count under its new name, and the stored size
NEW_METRICS = (
    "# HELP apiserver_resource_objects [STABLE] Number of stored objects ...\n"
    'apiserver_resource_objects{group="",resource="pods"} 3\n'
    'apiserver_resource_objects{group="flyte.lyft.com",resource="flyteworkflows"} 7\n'
    'apiserver_resource_objects{group="flyteadmin.io",resource="tasks"} 26345\n'
    'apiserver_resource_objects{group="flyteadmin.io",resource="descriptionentities"} 2\n'
    + "".join(
        f'apiserver_resource_size_estimate_bytes{{group="{group}",resource="{plural}"}} {value}\n'
        for group, plural, value in [
            ("", "pods", "4096"),
            ("flyteadmin.io", "tasks", "4.1229925e+07"),
            ("flyteadmin.io", "descriptionentities", "-1"),
        ]
    )
)


def test_kube_apiservers_figures_per_resource_under_either_name():
    figures = resource_figures(NEW_METRICS)
    assert figures.objects == {
        "pods": 3,
        "flyteworkflows.flyte.lyft.com": 7,
        "tasks.flyteadmin.io": 26345,
        "descriptionentities.flyteadmin.io": 2,
    }
    # -1: kube-apiserver could not fetch it
    assert figures.bytes == {"pods": 4096, "tasks.flyteadmin.io": 41229925}
    # The count's name before 1.34 (deprecated since) and its new one are both read.
    assert resource_figures(NEW_METRICS).objects.get(FLYTEWORKFLOWS, 0) == 7
    old = 'apiserver_storage_objects{resource="flyteworkflows.flyte.lyft.com"} 1451\n'
    assert resource_figures(old).objects == {"flyteworkflows.flyte.lyft.com": 1451}


def test_a_kind_measured_on_kube_apiserver_counts_its_figures_until_they_stop_coming():
    b = budget()
    b.measure_on_apiserver(
        {"Task": "tasks.flyteadmin.io", "DescriptionEntity": "descriptionentities.flyteadmin.io"}
    )
    assert b.live("Task") == (0, 0)
    b.read_metrics(NEW_METRICS)
    assert b.live("Task") == (41229925, 26345)
    assert b.flyteworkflows == 7
    assert b.usage().objects == 26345 + 7
    # The description's size is unknown (-1): it has no figures yet, and is the one overdue.
    assert b.live("DescriptionEntity") == (0, 0)
    assert b.unmeasured(grace=3600) == []
    time.sleep(0.02)
    b.read_metrics(NEW_METRICS)
    assert b.unmeasured(grace=0.01) == ["DescriptionEntity"]
    # A report without the task's figures keeps the last ones.
    b.read_metrics('apiserver_resource_objects{group="",resource="pods"} 3\n')
    assert b.live("Task") == (41229925, 26345)
    # Counted from a cache again: the metrics no longer set it.
    b.count_in_cache("Task")
    assert b.live("Task") == (0, 0)
    assert b.measured_on_apiserver() == ["DescriptionEntity"]
    b.read_metrics(NEW_METRICS)
    assert b.live("Task") == (0, 0)


def test_etcds_full_disk_is_resource_exhausted_not_unavailable():
    error = kube.translate(kube.KubeError(500, "etcdserver: mvcc: database space exceeded"))
    assert error.code == Code.RESOURCE_EXHAUSTED
    assert kube.translate(kube.KubeError(503, "etcdserver: request timed out")).code == (
        Code.UNAVAILABLE
    )


def test_revisions_count_for_two_compaction_intervals():
    """kube-apiserver compacts up to the revision of its previous compaction, so a revision
    stays in etcd between one and two intervals."""
    b = budget(compaction_interval_seconds=30, object_overhead_bytes=0)
    b.written(5 * MIB)
    written_at = time.monotonic()
    assert b._window.total(now=written_at + 45) == 5 * MIB  # past one interval: still there
    assert b._window.total(now=written_at + 61) == 0
