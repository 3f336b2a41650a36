"""The operator does not watch the kinds it never reads (task and description versions): its etcd
budget takes their size from kube-apiserver's own figures, and it watches them after all when
kube-apiserver does not report them. On a control plane of its own, which counts every second
(by default kube-apiserver counts every minute)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator

import pytest
from flyteidl.admin import project_pb2

from flyteadmin.core import crds, kube
from flyteadmin.core.backend import Backend
from flyteadmin.core.config import KubernetesSettings, ServerSettings, Settings
from flyteadmin.devstack.controlplane import ControlPlane, start_control_plane
from flyteadmin.operator.runner import operator_backend
from tests.integration.registration_helpers import PROJECT, task_request

NAMESPACE = "flyteadmin"
VERSIONS = 12


@pytest.fixture(scope="module")
def counting_plane() -> Iterator[ControlPlane]:
    plane = start_control_plane(
        controller_manager=False, apiserver_args=["--etcd-count-metric-poll-period=1s"]
    )
    try:
        api = kube.api_client(str(plane.kubeconfig))
        kube.apply_crds(api, flyteworkflow=True)
        kube.ensure_namespace(api, NAMESPACE)
        api.close()
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def plane_settings(counting_plane: ControlPlane, storage_settings) -> Settings:
    kubeconfig = str(counting_plane.kubeconfig)
    return Settings(
        server=ServerSettings(host="127.0.0.1", grpc_port=0, http_port=0),
        kubernetes=KubernetesSettings(kubeconfig=kubeconfig, namespace=NAMESPACE),
        storage=storage_settings,
    )


async def until(check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def register_versions(api: Backend, name: str) -> None:
    if api.project_records.get(PROJECT) is None:
        project = project_pb2.Project(id=PROJECT, name=PROJECT)
        await api.projects.register(project_pb2.ProjectRegisterRequest(project=project))
    for i in range(VERSIONS):
        await api.tasks.create(task_request(name, version=f"v{i}"))


def test_the_operator_takes_task_versions_size_from_kube_apiserver_without_watching_them(
    plane_settings,
):
    async def main() -> None:
        api = Backend(plane_settings)  # an API server's: it watches every kind
        operator = operator_backend(plane_settings)
        operator.metrics_interval = 0.2
        await api.start()
        await operator.start()
        try:
            assert operator.task_records not in operator.watched
            assert operator.description_records not in operator.watched
            assert operator.workflow_records in operator.watched  # launches read workflows
            await register_versions(api, "measured")
            cached = api.budget.live(crds.TASK.kind)
            assert cached[1] == VERSIONS
            await until(
                lambda: operator.budget.live(crds.TASK.kind)[1] == VERSIONS,
                "kube-apiserver's task count in the operator's budget",
            )
            size, _ = operator.budget.live(crds.TASK.kind)
            # kube-apiserver's size of the stored objects, the API's of the same objects as
            # its watch delivered them: the same JSON but for a few fields' order and spacing
            assert 0.8 * cached[0] < size < 1.25 * cached[0], (size, cached)
            assert len(operator.task_records) == 0  # nothing was watched, nothing decoded
            assert operator.task_records._thread is None
            # The FlyteWorkflow objects kube-apiserver counts (under the metric's name since
            # Kubernetes 1.34) are in the estimate too.
            body = {
                "apiVersion": "flyte.lyft.com/v1alpha1",
                "kind": "FlyteWorkflow",
                "metadata": {"name": "counted", "namespace": NAMESPACE},
            }
            path = f"/apis/flyte.lyft.com/v1alpha1/namespaces/{NAMESPACE}/flyteworkflows"
            await operator.http.request("POST", path, body)
            await until(lambda: operator.budget.flyteworkflows == 1, "the FlyteWorkflow count")
        finally:
            await operator.stop()
            await api.stop()

    asyncio.run(main())


def test_kinds_kube_apiserver_does_not_report_are_watched_after_all(plane_settings):
    async def main() -> None:
        api = Backend(plane_settings)
        operator = operator_backend(plane_settings)
        operator.metrics_interval = 0.2
        operator.metrics_grace = 0.0  # any kind is overdue at once
        await api.start()
        await operator.start()
        try:
            await register_versions(api, "watched")
            await until(
                lambda: (
                    operator.task_records in operator.watched
                    and operator.description_records in operator.watched
                ),
                "the operator to watch task and description versions",
            )
            assert operator.budget.measured_on_apiserver() == []
            # Counted from the cache now, as an API server counts them.
            await until(
                lambda: operator.budget.live(crds.TASK.kind) == api.budget.live(crds.TASK.kind),
                "the operator's cache to hold what the API's holds",
            )
            assert len(operator.task_records) == len(api.task_records) >= VERSIONS
        finally:
            await operator.stop()
            await api.stop()

    asyncio.run(main())


def test_without_kube_apiservers_metrics_every_kind_is_watched(plane_settings):
    settings = dataclasses.replace(
        plane_settings, etcd=dataclasses.replace(plane_settings.etcd, read_database_size=False)
    )
    operator = operator_backend(settings)
    assert operator.watched == operator.collections
