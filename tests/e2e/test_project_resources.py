"""What a project gets in the cluster on the e2e stack: a namespace per domain, managed by the
operator, and the objects of the cluster resource templates (a ResourceQuota here), applied by
the operator in each of them."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core.namespaces import MANAGED
from tests.e2e.stacks import DEV_CONFIG, PROJECT, Stack
from tests.e2e.test_run_remote import wait_for


def read(call, *args):
    try:
        return call(*args)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_project_namespaces_and_quotas(e2e_stack: Stack, e2e_kube):
    core = client.CoreV1Api(e2e_kube)
    # Both modes configure templates (the dev config's, the chart's default set).
    assert any(e2e_stack.quotas(PROJECT, d) for d in e2e_stack.domains), e2e_stack.templates
    for domain in e2e_stack.domains:
        name = e2e_stack.namespace(PROJECT, domain)
        namespace = wait_for(lambda n=name: read(core.read_namespace, n), f"namespace {name}")
        assert namespace.metadata.labels[MANAGED] == "true"
        for quota_name in e2e_stack.quotas(PROJECT, domain):
            quota = wait_for(
                lambda q=quota_name, n=name: read(core.read_namespaced_resource_quota, q, n),
                f"ResourceQuota {name}/{quota_name}",
            )
            if e2e_stack.mode == "dev":  # the value comes from the config's template data
                expected = DEV_CONFIG["cluster_resources"]["template_data"]["maxPods"]
                assert quota.spec.hard == {"pods": expected}
