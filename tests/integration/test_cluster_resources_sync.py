"""ClusterResources.sync on the real apiserver, without the operator: outcomes per
project-domain (applied, unchanged, failed with a clear error), and the RBAC it needs."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import yaml
from flyteidl.admin import project_pb2
from kubernetes import client, config

from flyteadmin.core.backend import Backend
from flyteadmin.core.cluster_resources import ClusterResources
from flyteadmin.core.config import load_settings
from flyteadmin.core.namespaces import namespace_for
from tests.integration.servers import LoopThread

QUOTA = """\
apiVersion: v1
kind: ResourceQuota
metadata:
  name: q
spec:
  hard:
    configmaps: "{{ configmaps }}"
"""
SERVICE_ACCOUNT = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: runner
  namespace: {{ namespace }}
"""


@pytest.fixture
def setup(settings, unique, tmp_path):
    """A Backend with project `ml` registered, a templates directory, settings that use it."""
    templates = tmp_path / "templates"
    templates.mkdir()
    cr_settings = dataclasses.replace(
        settings,
        domains=settings.domains[:1],  # development only: one outcome per sync
        operator=dataclasses.replace(
            settings.operator, namespace_template=f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"
        ),
        cluster_resources=dataclasses.replace(
            settings.cluster_resources,
            templates_dir=str(templates),
            template_data={"configmaps": "3"},
        ),
    )
    loop = LoopThread()
    backend = Backend(cr_settings)
    loop.call(backend.start())
    request = project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id="ml", name="M"))
    loop.call(backend.projects.register(request))
    try:
        yield cr_settings, backend, loop, templates
    finally:
        loop.call(backend.stop())
        loop.close()


def make_sync(settings, backend, api=None, clock=time.monotonic):
    return ClusterResources(
        api or backend.api,
        settings,
        attributes=backend.attributes,
        projects=backend.project_records,
        clock=clock,
    )


def statuses(loop, sync, **kwargs):
    return [(o.project, o.domain, o.status, o.error) for o in loop.call(sync.sync(**kwargs))]


def test_unchanged_content_is_skipped_until_forced_or_changed(setup, kube_api):
    settings, backend, loop, templates = setup
    (templates / "all.yaml").write_text(QUOTA + "---\n" + SERVICE_ACCOUNT)
    now = [0.0]
    sync = make_sync(settings, backend, clock=lambda: now[0])
    assert statuses(loop, sync) == [("ml", "development", "applied", "")]
    now[0] += settings.cluster_resources.reapply_seconds - 1
    assert statuses(loop, sync) == [("ml", "development", "unchanged", "")]
    now[0] += 1  # the last apply is reapply_seconds old: applied again
    assert statuses(loop, sync) == [("ml", "development", "applied", "")]
    assert statuses(loop, sync) == [("ml", "development", "unchanged", "")]
    namespace = namespace_for(settings.operator.namespace_template, "ml", "development")
    core = client.CoreV1Api(kube_api)
    version = core.read_namespaced_resource_quota("q", namespace).metadata.resource_version
    assert statuses(loop, sync, force=True) == [("ml", "development", "applied", "")]
    # Applying unchanged content writes nothing on the server.
    assert core.read_namespaced_resource_quota("q", namespace).metadata.resource_version == version
    (templates / "all.yaml").write_text(QUOTA)
    assert statuses(loop, sync) == [("ml", "development", "applied", "")]
    # Selection: other projects and domains are not touched; archived projects are skipped.
    assert statuses(loop, sync, projects=["other"]) == []
    assert statuses(loop, sync, domains=["staging"]) == []
    loop.call(backend.projects.update(project_pb2.Project(id="ml", state=1)))
    assert statuses(loop, sync, force=True) == []
    hard = core.read_namespaced_resource_quota("q", namespace).spec.hard
    assert hard == {"configmaps": "3"}


GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\n"
BAD_TEMPLATES = [
    (
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
        "apply Widget w: the cluster serves no kind Widget in example.com/v1",
    ),
    # The apiserver answers 500 to this apply; its message is still the useful part.
    (QUOTA.replace('"{{ configmaps }}"', "lots"), "quantities must match the regular expression"),
    (SERVICE_ACCOUNT.replace("runner", "Not_Valid"), "apply ServiceAccount Not_Valid: 422 "),
    (SERVICE_ACCOUNT.replace("{{ namespace }}", "kube-system"), "names namespace 'kube-system'"),
    ("kind: {{ nope }}\n", "undefined template variable(s): bad.yaml: nope"),
]


@pytest.mark.parametrize(("text", "error"), BAD_TEMPLATES)
def test_failures_are_reported_per_project_domain_with_a_clear_error(setup, kube_api, text, error):
    settings, backend, loop, templates = setup
    (templates / "bad.yaml").write_text(text)
    (templates / "good.yaml").write_text(GOOD)
    sync = make_sync(settings, backend)
    [(project, domain, status, message)] = statuses(loop, sync)
    assert (project, domain, status) == ("ml", "development", "failed")
    assert error in message
    assert sync.errors() == {("", "ml", "development"): message}
    # A render error applies nothing; an object the cluster refuses does not stop the others.
    namespace = namespace_for(settings.operator.namespace_template, "ml", "development")
    names = {
        c.metadata.name
        for c in client.CoreV1Api(kube_api).list_namespaced_config_map(namespace).items
    }
    assert ("good" in names) == ("undefined" not in error)
    # The same failure again: no second Event. Fixed: a Normal Event, and no error left.
    statuses(loop, sync)
    (templates / "bad.yaml").write_text(QUOTA)
    assert statuses(loop, sync) == [("ml", "development", "applied", "")]
    assert sync.errors() == {}
    events = client.CoreV1Api(kube_api).list_namespaced_event(
        settings.kubernetes.namespace, field_selector="involvedObject.name=ml"
    )
    assert sorted((e.type, e.reason, e.message) for e in events.items) == [
        ("Normal", "ClusterResourcesApplied", "development: applied"),
        ("Warning", "ClusterResourcesFailed", f"development: {message}"),
    ]


def test_a_missing_templates_directory_fails_every_project_domain(setup):
    settings, backend, loop, templates = setup
    templates.rmdir()
    [(_, _, status, message)] = statuses(loop, make_sync(settings, backend))
    assert status == "failed" and "cannot read the templates directory" in message


# What the operator's identity needs for cluster resources (reported to the chart's RBAC):
# create and patch on each templated kind (server-side apply creates through PATCH, which
# the apiserver authorizes as create too), namespaces as the namespace reconciler needs them,
# and Events in the store namespace. No get or list on the templated kinds.
RULES = [
    {
        "apiGroups": [""],
        "resources": ["resourcequotas", "serviceaccounts"],
        "verbs": ["create", "patch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


def test_create_and_patch_are_all_the_rbac_it_needs(setup, kube_api, kubeconfig, unique, tmp_path):
    settings, backend, loop, templates = setup
    (templates / "all.yaml").write_text(QUOTA + "---\n" + SERVICE_ACCOUNT)
    store = settings.kubernetes.namespace
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
    name = f"cluster-resources-{unique}"
    core.create_namespaced_service_account(store, {"metadata": {"name": name}})
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": RULES})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": store}],
        }
    )
    restricted = None
    try:
        token = core.create_namespaced_service_account_token(
            name, store, {"spec": {"expirationSeconds": 3600}}
        ).status.token
        admin = yaml.safe_load(kubeconfig.read_text())
        user = admin["contexts"][0]["context"]["user"]
        admin["users"] = [{"name": user, "user": {"token": token}}]
        path = tmp_path / "restricted.kubeconfig"
        path.write_text(yaml.safe_dump(admin))
        restricted = config.new_client_from_config(str(path))
        sync = make_sync(settings, backend, restricted)
        assert statuses(loop, sync) == [("ml", "development", "applied", "")]
        assert statuses(loop, sync, force=True) == [("ml", "development", "applied", "")]
        # Without create, the first apply of a new object is refused.
        rbac.patch_cluster_role(name, {"rules": [{**RULES[0], "verbs": ["patch"]}, *RULES[1:]]})
        (templates / "all.yaml").write_text(QUOTA.replace("name: q", "name: q2"))
        [(_, _, status, message)] = statuses(loop, sync)
        assert status == "failed" and "403" in message and "create" in message
    finally:
        if restricted is not None:
            restricted.close()
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


def test_the_example_templates_apply(setup, kube_api):
    settings, backend, loop, _ = setup
    root = Path(__file__).resolve().parents[2]
    example = load_settings(root / "examples/cluster-resources/config.yaml", env={})
    settings = dataclasses.replace(
        settings,
        cluster_resources=dataclasses.replace(
            example.cluster_resources,
            templates_dir=str(root / example.cluster_resources.templates_dir),
        ),
    )
    assert statuses(loop, make_sync(settings, backend)) == [("ml", "development", "applied", "")]
    namespace = namespace_for(settings.operator.namespace_template, "ml", "development")
    core = client.CoreV1Api(kube_api)
    hard = core.read_namespaced_resource_quota("project-quota", namespace).spec.hard
    assert hard == {"limits.cpu": "4", "limits.memory": "8Gi"}
    assert core.read_namespaced_limit_range("default-resources", namespace).spec.limits
    assert core.read_namespaced_service_account("flyte-workflows", namespace)
