"""Cluster resources on the real apiserver: templates rendered per project-domain, applied with
server-side apply, re-applied when a CLUSTER_RESOURCE attribute changes, enforced by the
kube-controller-manager's resourcequota controller and admission (counted on Secrets, which
no controller creates on its own, so the counts hold on any cluster)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from flyteidl.admin import matchable_resource_pb2, project_pb2
from flyteidl.admin import project_attributes_pb2 as pa
from flyteidl.admin import project_domain_attributes_pb2 as pda
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core.backend import Backend
from flyteadmin.core.cluster_resources import FIELD_MANAGER
from flyteadmin.core.namespaces import namespace_for
from tests.integration.servers import LoopThread
from tests.integration.test_operator import RunningOperator, eventually

CR = matchable_resource_pb2.MatchableResource.CLUSTER_RESOURCE

TEMPLATE = """\
apiVersion: v1
kind: ResourceQuota
metadata:
  name: project-quota
  namespace: {{ namespace }}
  labels:
    flyteadmin.io/domain: "{{ domain }}"
spec:
  hard:
    secrets: "{{ secrets }}"
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ project }}-runner
"""


def cr_settings(settings, unique, templates, **cluster_resources):
    return dataclasses.replace(
        settings,
        operator=dataclasses.replace(
            settings.operator,
            namespace_template=f"{{{{ project }}}}-{unique}-{{{{ domain }}}}",
            resync_seconds=3600,
        ),
        cluster_resources=dataclasses.replace(
            settings.cluster_resources, templates_dir=str(templates), **cluster_resources
        ),
    )


@pytest.fixture
def templates(tmp_path):
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "project.yaml").write_text(TEMPLATE)
    return directory


@pytest.fixture
def started():
    """A Backend on its own loop (the test's way to act as a user), stopped afterwards."""
    loop = LoopThread()
    backends = []

    def start(settings):
        backend = Backend(settings)
        loop.call(backend.start())
        backends.append(backend)
        return backend

    yield start, loop
    for backend in backends:
        loop.call(backend.stop())
    loop.close()


def cluster_resource_attributes(**values):
    return matchable_resource_pb2.MatchingAttributes(
        cluster_resource_attributes=matchable_resource_pb2.ClusterResourceAttributes(
            attributes=values
        )
    )


def set_project_domain(loop, backend, project, domain, **values):
    request = pda.ProjectDomainAttributesUpdateRequest(
        attributes=pda.ProjectDomainAttributes(
            project=project,
            domain=domain,
            matching_attributes=cluster_resource_attributes(**values),
        )
    )
    loop.call(backend.attributes.update_project_domain(request))


def quota(kube_api, namespace):
    try:
        return client.CoreV1Api(kube_api).read_namespaced_resource_quota("project-quota", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def hard_secrets(kube_api, namespace):
    q = quota(kube_api, namespace)
    return q.spec.hard.get("secrets") if q else None


def enforced(kube_api, namespace, limit):
    """The resourcequota controller has computed the status for this limit (admission uses
    the status, so only then is the limit enforced)."""
    q = quota(kube_api, namespace)
    status = q.status if q else None
    return bool(status and (status.hard or {}).get("secrets") == limit and status.used)


def create_secret(kube_api, namespace, name):
    body = {"metadata": {"name": name}, "stringData": {"k": "v"}}
    client.CoreV1Api(kube_api).create_namespaced_secret(namespace, body)


def project_events(kube_api, store_namespace, project, reason):
    events = client.CoreV1Api(kube_api).list_namespaced_event(
        store_namespace, field_selector=f"involvedObject.name={project},reason={reason}"
    )
    return [e.message for e in events.items]


def test_quota_follows_attributes_and_is_enforced(settings, unique, templates, started, kube_api):
    # secrets has a value for development and staging only: production fails on its own.
    op_settings = cr_settings(
        settings,
        unique,
        templates,
        custom_data={"development": {"secrets": "1"}, "staging": {"secrets": "5"}},
    )
    start, loop = started
    backend = start(op_settings)
    store = op_settings.kubernetes.namespace
    template = op_settings.operator.namespace_template
    dev, staging, prod = (namespace_for(template, "ml", d) for d in op_settings.domain_ids())
    loop.call(
        backend.projects.register(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id="ml", name="ML"))
        )
    )
    operator = RunningOperator(op_settings)
    try:
        assert eventually(lambda: hard_secrets(kube_api, dev)) == "1"
        assert eventually(lambda: hard_secrets(kube_api, staging)) == "5"
        # Every document of the multi-document template, with the reserved variables.
        sa = client.CoreV1Api(kube_api).read_namespaced_service_account("ml-runner", dev)
        assert sa.metadata.name == "ml-runner"
        q = quota(kube_api, dev)
        assert q.metadata.labels["flyteadmin.io/domain"] == "development"
        assert FIELD_MANAGER in {m.manager for m in q.metadata.managed_fields}
        # The failing project-domain is reported on the Project object; the others went on.
        messages = eventually(
            lambda: project_events(kube_api, store, "ml", "ClusterResourcesFailed")
        )
        assert any(
            m.startswith("production:") and "undefined template variable(s)" in m and "secrets" in m
            for m in messages
        )
        assert quota(kube_api, prod) is None

        # The kube-controller-manager enforces the quota: one secret, not two.
        eventually(lambda: enforced(kube_api, dev, "1"))
        create_secret(kube_api, dev, "first")
        with pytest.raises(ApiException) as refused:
            create_secret(kube_api, dev, "second")
        assert refused.value.status == 403
        assert "exceeded quota" in json.loads(refused.value.body)["message"]

        # A user raises the limit with a project-domain attribute: applied at once (the
        # periodic pass is an hour away), and enforced.
        set_project_domain(loop, backend, "ml", "development", secrets="3")
        assert eventually(lambda: hard_secrets(kube_api, dev) == "3")
        eventually(lambda: enforced(kube_api, dev, "3"))
        create_secret(kube_api, dev, "second")

        # A project-level attribute reaches every domain without its own row: production
        # recovers, staging's custom data is overridden, development keeps its own row.
        request = pa.ProjectAttributesUpdateRequest(
            attributes=pa.ProjectAttributes(
                project="ml", matching_attributes=cluster_resource_attributes(secrets="2")
            )
        )
        loop.call(backend.attributes.update_project(request))
        assert eventually(lambda: hard_secrets(kube_api, prod)) == "2"
        assert eventually(lambda: hard_secrets(kube_api, staging) == "2")
        assert hard_secrets(kube_api, dev) == "3"
        applied = eventually(
            lambda: project_events(kube_api, store, "ml", "ClusterResourcesApplied")
        )
        assert applied == ["production: applied"]

        # Deleting the project-domain row falls back to the project-level one.
        loop.call(
            backend.attributes.delete_project_domain(
                pda.ProjectDomainAttributesDeleteRequest(
                    project="ml", domain="development", resource_type=CR
                )
            )
        )
        assert eventually(lambda: hard_secrets(kube_api, dev) == "2")
    finally:
        operator.stop()


def test_periodic_pass_restores_drift_and_follows_template_edits(
    settings, unique, templates, started, kube_api
):
    op_settings = cr_settings(
        settings,
        unique,
        templates,
        resync_seconds=0.5,
        reapply_seconds=0,
        template_data={"secrets": "4"},
    )
    start, loop = started
    backend = start(op_settings)
    dev = namespace_for(op_settings.operator.namespace_template, "web", "development")
    loop.call(
        backend.projects.register(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id="web", name="W"))
        )
    )
    operator = RunningOperator(op_settings)
    try:
        assert eventually(lambda: hard_secrets(kube_api, dev)) == "4"
        # Deleted or edited by hand: the next passes put the template's content back.
        client.CoreV1Api(kube_api).delete_namespaced_resource_quota("project-quota", dev)
        assert eventually(lambda: hard_secrets(kube_api, dev)) == "4"
        client.CoreV1Api(kube_api).patch_namespaced_resource_quota(
            "project-quota", dev, {"spec": {"hard": {"secrets": "99"}}}
        )
        assert eventually(lambda: hard_secrets(kube_api, dev) == "4")
        # A changed template file is applied by the next pass.
        (templates / "project.yaml").write_text(TEMPLATE.replace('"{{ secrets }}"', '"7"'))
        assert eventually(lambda: hard_secrets(kube_api, dev) == "7")
    finally:
        operator.stop()
