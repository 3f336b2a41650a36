"""The Kopf operator on the real apiserver: project namespaces follow the project's state."""

from __future__ import annotations

import dataclasses

import pytest
from flyteidl.admin import project_pb2
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core.backend import Backend
from flyteadmin.core.namespaces import MANAGED, namespace_for
from flyteadmin.operator.runner import OperatorThread
from tests.integration.servers import LoopThread
from tests.waiting import eventually

Project = project_pb2.Project


class RunningOperator(OperatorThread):
    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.start()


@pytest.fixture
def op_settings(settings, unique):
    # A namespace template unique to the test, so parallel tests' namespaces never collide.
    return dataclasses.replace(
        settings,
        operator=dataclasses.replace(
            settings.operator,
            namespace_template=f"{{{{ project }}}}-{unique}-{{{{ domain }}}}",
            resync_seconds=1.0,
        ),
    )


@pytest.fixture
def backend(op_settings):
    loop = LoopThread()
    backend = Backend(op_settings)
    loop.call(backend.start())
    yield backend, loop
    loop.call(backend.stop())
    loop.close()


def labels_of(kube_api, name: str) -> dict[str, str] | None:
    try:
        return client.CoreV1Api(kube_api).read_namespace(name).metadata.labels or {}
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_active_projects_get_namespaces_and_archived_ones_are_released(
    op_settings, backend, kube_api
):
    backend, loop = backend
    template = op_settings.operator.namespace_template
    domains = op_settings.domain_ids()
    register = project_pb2.ProjectRegisterRequest(project=Project(id="ml", name="ML"))
    loop.call(backend.projects.register(register))
    operator = RunningOperator(op_settings)
    try:
        for domain in domains:
            labels = eventually(
                lambda d=domain: labels_of(kube_api, namespace_for(template, "ml", d))
            )
            assert labels[MANAGED] == "true" and labels["flyteadmin.io/project"] == "ml"
            assert labels["flyteadmin.io/domain"] == domain

        # A namespace deleted by hand comes back on the next resync.
        name = namespace_for(template, "ml", "staging")
        client.CoreV1Api(kube_api).delete_namespace(name)
        eventually(lambda: (labels_of(kube_api, name) or {}).get(MANAGED) == "true")

        loop.call(backend.projects.update(Project(id="ml", state=Project.ARCHIVED)))
        for domain in domains:
            ns = namespace_for(template, "ml", domain)
            eventually(lambda ns=ns: MANAGED not in (labels_of(kube_api, ns) or {MANAGED: 1}))
            assert labels_of(kube_api, ns) is not None  # released, never deleted
    finally:
        operator.stop()


def test_restarted_operator_adopts_existing_state_idempotently(op_settings, backend, kube_api):
    backend, loop = backend
    template = op_settings.operator.namespace_template
    name = namespace_for(template, "web", "development")
    client.CoreV1Api(kube_api).create_namespace({"metadata": {"name": name, "labels": {"x": "y"}}})
    loop.call(
        backend.projects.register(
            project_pb2.ProjectRegisterRequest(project=Project(id="web", name="W"))
        )
    )
    for _ in range(2):  # start, stop, start again: same result, no errors
        operator = RunningOperator(op_settings)
        try:
            labels = eventually(
                lambda: (labels_of(kube_api, name) or {}).get(MANAGED) and labels_of(kube_api, name)
            )
            assert labels["x"] == "y"  # a user's labels are kept
        finally:
            operator.stop()
    # The operator left no finalizers (or other marks) on the project object.
    body = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", op_settings.kubernetes.namespace, "projects", "web"
    )
    assert not body["metadata"].get("finalizers")


@pytest.mark.parametrize("existing", [1, 20], ids=["one-project", "a-burst"])
def test_projects_are_followed_at_once_without_the_resync(op_settings, backend, kube_api, existing):
    """The operator follows the core's project cache: projects there at start (one, or more
    than a burst, which lists the namespaces first) and projects registered or archived later
    get their namespaces at once, with the periodic resync an hour away."""
    backend, loop = backend
    settings = dataclasses.replace(
        op_settings, operator=dataclasses.replace(op_settings.operator, resync_seconds=3600.0)
    )
    template = settings.operator.namespace_template
    domains = settings.domain_ids()
    early = [f"early{i}" for i in range(existing)]
    kept = namespace_for(template, early[-1], "production")  # a user's namespace, adopted
    client.CoreV1Api(kube_api).create_namespace({"metadata": {"name": kept, "labels": {"x": "y"}}})
    for project in early:
        request = project_pb2.ProjectRegisterRequest(project=Project(id=project, name=project))
        loop.call(backend.projects.register(request))
    operator = RunningOperator(settings)
    try:
        for project in early:
            for domain in domains:
                name = namespace_for(template, project, domain)
                eventually(lambda n=name: (labels_of(kube_api, n) or {}).get(MANAGED) == "true")
        assert labels_of(kube_api, kept)["x"] == "y"

        request = project_pb2.ProjectRegisterRequest(project=Project(id="late", name="late"))
        loop.call(backend.projects.register(request))
        for domain in domains:
            name = namespace_for(template, "late", domain)
            eventually(lambda n=name: (labels_of(kube_api, n) or {}).get(MANAGED) == "true")

        loop.call(backend.projects.update(Project(id="late", state=Project.ARCHIVED)))
        for domain in domains:
            name = namespace_for(template, "late", domain)
            eventually(lambda n=name: MANAGED not in (labels_of(kube_api, n) or {MANAGED: 1}))
    finally:
        operator.stop()
