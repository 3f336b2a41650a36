"""Project namespaces on the real apiserver (core/namespaces.py): the listing a resync pass
starts from, and that a pass given it writes only what differs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flyteidl.admin import project_pb2
from kubernetes import client

from flyteadmin.core import kube, metrics, namespaces
from flyteadmin.core.namespaces import (
    MANAGED,
    namespace_for,
    namespace_labels,
    reconcile_project_namespaces,
)
from tests.integration.servers import LoopThread
from tests.waiting import eventually

Project = project_pb2.Project
DOMAINS = ["development", "staging", "production"]


@pytest.fixture
def http(kubeconfig) -> Iterator[tuple[kube.KubeHttp, LoopThread]]:
    api = kube.api_client(str(kubeconfig))
    loop = LoopThread()
    http = kube.KubeHttp(api)
    yield http, loop
    loop.call(http.close())
    loop.close()
    api.close()


def namespace_calls() -> float:
    """Every call this process made on namespaces, whatever its verb and answer."""
    total = 0.0
    for metric in metrics.registry().collect():  # (written at a flush: registry() flushes)
        if metric.name == "flyteadmin_kube_requests":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["resource"] == "namespaces":
                    total += sample.value
    return total


def labels(kube_api, name: str) -> dict[str, str]:
    return client.CoreV1Api(kube_api).read_namespace(name).metadata.labels or {}


def test_the_listing_pages_through_every_namespace_with_its_labels(
    http, kube_api, unique, monkeypatch
):
    http, loop = http
    core = client.CoreV1Api(kube_api)
    names = [f"list-{unique}-{n}" for n in range(5)]
    for n, name in enumerate(names):
        core.create_namespace({"metadata": {"name": name, "labels": {"n": str(n)}}})
    monkeypatch.setattr(namespaces, "_LIST_PAGE", 2)  # several pages, joined by continue tokens
    found = loop.call(namespace_labels(http))
    assert {name: found[name]["n"] for name in names} == {
        name: str(n) for n, name in enumerate(names)
    }
    assert "default" in found and "kube-system" in found


def test_a_pass_with_the_listing_writes_only_what_differs(http, kube_api, unique):
    http, loop = http
    template = f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"
    project = Project(id="ns", name="NS", state=Project.ACTIVE)
    dev, staging, prod = (namespace_for(template, "ns", d) for d in DOMAINS)

    created = loop.call(reconcile_project_namespaces(http, project, DOMAINS, template))
    assert created == [dev, staging, prod]  # no listing: one create each

    # All three right: nothing at all is asked of the cluster.
    before = namespace_calls()
    listing = loop.call(namespace_labels(http))
    after_list = namespace_calls()
    assert loop.call(reconcile_project_namespaces(http, project, DOMAINS, template, listing)) == []
    assert namespace_calls() == after_list > before

    # One with its labels changed by hand, one made meanwhile (not in the listing): a patch
    # that keeps the user's label, and a create that meets the namespace (409) and reads it.
    core = client.CoreV1Api(kube_api)
    core.patch_namespace(staging, {"metadata": {"labels": {MANAGED: None, "team": "a"}}})
    listing = loop.call(namespace_labels(http))
    listing.pop(prod)
    calls = namespace_calls()
    assert loop.call(reconcile_project_namespaces(http, project, DOMAINS, template, listing)) == []
    assert namespace_calls() - calls == 3  # patch; create, read
    assert labels(kube_api, staging)[MANAGED] == "true"
    assert labels(kube_api, staging)["team"] == "a"

    # One deleted: made again, and only it.
    core.delete_namespace(prod)
    eventually(lambda: prod not in loop.call(namespace_labels(http)), timeout=60)
    listing = loop.call(namespace_labels(http))
    calls = namespace_calls()
    created = loop.call(reconcile_project_namespaces(http, project, DOMAINS, template, listing))
    assert created == [prod] and namespace_calls() - calls == 1

    # Archived: managed namespaces are released, a missing one is not looked for, and one the
    # control plane never managed is left as it is.
    archived = Project(id="ns", name="NS", state=Project.ARCHIVED)
    core.patch_namespace(dev, {"metadata": {"labels": {MANAGED: None}}})
    listing = loop.call(namespace_labels(http))
    listing.pop(prod)
    calls = namespace_calls()
    loop.call(reconcile_project_namespaces(http, archived, DOMAINS, template, listing))
    assert namespace_calls() - calls == 1  # the patch of staging only
    assert MANAGED not in labels(kube_api, staging)
    assert labels(kube_api, staging)["flyteadmin.io/project"] == "ns"  # released, not stripped
    assert MANAGED not in labels(kube_api, dev)
    assert labels(kube_api, dev)["app.kubernetes.io/managed-by"] == "flyteadmin"  # untouched


def test_every_write_waits_for_the_pace_and_reads_do_not(http, unique):
    http, loop = http
    template = f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"
    project = Project(id="pace", name="P", state=Project.ACTIVE)
    paced = []

    async def pace() -> None:
        paced.append(namespace_calls())

    loop.call(reconcile_project_namespaces(http, project, DOMAINS, template, pace=pace))
    assert len(paced) == 3  # one per create, each before its call
    assert paced[1] - paced[0] == paced[2] - paced[1] == 1
    listing = loop.call(namespace_labels(http))
    loop.call(reconcile_project_namespaces(http, project, DOMAINS, template, listing, pace))
    assert len(paced) == 3  # all right already: no write, no wait
    loop.call(reconcile_project_namespaces(http, project, DOMAINS, template, pace=pace))
    assert len(paced) == 6  # creates that meet the namespaces (409) cost as much: paced too
