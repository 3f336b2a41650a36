"""The Helm chart: lint, render with several value sets, check the objects, then let the real
apiserver judge them (server-side dry run) and prove the RBAC is enough for the real processes.

helm and kubectl come from the PyPI wheel (flyteadmin.devstack.kubetools); both run with a
temporary HOME, where they keep their config and caches.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core import crds, kube
from flyteadmin.core.config import (
    ClusterResourceSettings,
    KubernetesSettings,
    OperatorSettings,
    ServerSettings,
    Settings,
    dump_defaults,
    load_settings,
)
from flyteadmin.core.flyteworkflow import crd as fw_crd
from flyteadmin.core.namespaces import MANAGED, namespace_for
from flyteadmin.devstack.kubetools import helm_path, kubectl_path
from tests.integration.servers import LoopThread

CHART = Path(__file__).resolve().parents[2] / "charts" / "flyteadmin"
KUBE_VERSION = "1.36.3"
Obj = dict[str, Any]
Run = Callable[..., subprocess.CompletedProcess[str]]

PLURALS = {k.plural for k in crds.KINDS}
WITH_STATUS = {f"{k.plural}/status" for k in crds.KINDS if k.separate_status}
ALL_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def tool_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A clean environment: a temporary HOME, and no KUBECONFIG to fall back on by accident."""
    home = tmp_path_factory.mktemp("helm-home")
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


@pytest.fixture(scope="session")
def helm(tool_env: dict[str, str]) -> Run:
    binary = str(helm_path())

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [binary, *args], env=tool_env, capture_output=True, text=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def kubectl(tool_env: dict[str, str], kubeconfig: Path) -> Run:
    binary = str(kubectl_path())

    def run(
        *args: str, stdin: str = "", config: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, f"--kubeconfig={config or kubeconfig}", *args],
            env=tool_env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def render(helm: Run, tmp_path: Path) -> Callable[..., list[Obj]]:
    """``render(values, *flags, namespace=...)`` -> the parsed objects of ``helm template``."""

    def run(
        values: dict | None = None, *flags: str, namespace: str = "flyte", release: str = "rel"
    ) -> list[Obj]:
        values_file = tmp_path / f"values-{time.monotonic_ns()}.yaml"
        values_file.write_text(yaml.safe_dump(values or {}))
        out = helm(
            "template", release, str(CHART), "-n", namespace, "-f", str(values_file),
            "--kube-version", KUBE_VERSION, *flags,
        ).stdout  # fmt: skip
        return [o for o in yaml.safe_load_all(out) if o]

    return run


# ------------------------------------------------------------------------------ helpers


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def grants(role: Obj) -> set[tuple[str, str, str]]:
    """A Role's rules flattened to (apiGroup, resource, verb)."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def expand(group: str, resources: set[str], verbs: set[str]) -> set[tuple[str, str, str]]:
    return {(group, r, v) for r in resources for v in verbs}


def loaded_config(objs: list[Obj], tmp_path: Path, fullname: str = "rel-flyteadmin") -> Settings:
    cm = find(objs, "ConfigMap", f"{fullname}-config")
    path = tmp_path / "config.yaml"
    path.write_text(cm["data"]["config.yaml"])
    return load_settings(path, env={})  # raises on any key the code does not know


def container(deployment: Obj) -> Obj:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


OPERATOR_CLUSTER_GRANTS = (
    expand("", {"namespaces"}, {"get", "list", "watch", "create", "patch"})
    | expand("apiextensions.k8s.io", {"customresourcedefinitions"}, {"get", "list", "watch"})
    | expand("flyte.lyft.com", {"flyteworkflows"}, {"get", "create", "delete"})
)
# What applying the cluster resource templates needs (server-side apply is a PATCH).
CLUSTER_RESOURCE_GRANTS = expand(
    "",
    {"resourcequotas", "serviceaccounts", "limitranges"},
    {"get", "list", "watch", "create", "patch", "update"},
)
CONFIG_DIR = "/etc/flyteadmin/config"
TEMPLATES_DIR = "/etc/flyteadmin/cluster-resources"


def expected_operator_grants(store_extra: set[tuple[str, str, str]] = frozenset()) -> set:
    return (
        expand("flyteadmin.io", PLURALS, {"get", "list", "watch"})
        | {("flyteadmin.io", "projects", "patch"), ("", "events", "create")}
        | expand("flyteadmin.io", {"executions", "executions/status"}, {"update"})
        # the scheduler (config.schedules.enabled, the default)
        | {("flyteadmin.io", "executions", "create")}
        | {("flyteadmin.io", "namedentities/status", "update")}
        # the archiver (config.archive.enabled, the default)
        | expand("flyteadmin.io", {"historysegments"}, {"create", "update", "delete"})
        | expand(
            "flyteadmin.io",
            {"executions", "nodeexecutions", "taskexecutions", "signals"},
            {"delete", "deletecollection"},
        )
        | set(store_extra)
    )


# ------------------------------------------------------------------------------ lint + values


def test_helm_lint_strict_passes(helm: Run, tmp_path: Path):
    custom = tmp_path / "custom.yaml"
    custom.write_text(
        yaml.safe_dump({"apiServer": {"replicas": 3}, "flytepropeller": {"enabled": True}})
    )
    for extra in ([], ["-f", str(custom)]):
        proc = helm("lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *extra)
        assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


def key_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: key_tree(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [key_tree(value[0])]
    return None


def test_values_config_has_the_keys_flyteadmin_config_prints():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert key_tree(values["config"]) == key_tree(yaml.safe_load(dump_defaults()))


# ------------------------------------------------------------------------------ renders


def test_defaults(render, tmp_path: Path):
    objs = render()
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert kinds == sorted(
        [
            ("ConfigMap", "rel-flyteadmin-config"),
            ("ConfigMap", "rel-flyteadmin-cluster-resources"),
            ("CustomResourceDefinition", "flyteworkflows.flyte.lyft.com"),
            ("Deployment", "rel-flyteadmin-api-server"),
            ("Deployment", "rel-flyteadmin-operator"),
            ("Service", "rel-flyteadmin"),
            ("Service", "rel-flyteadmin-operator-metrics"),
            ("ServiceAccount", "rel-flyteadmin-api-server"),
            ("ServiceAccount", "rel-flyteadmin-operator"),
            ("Role", "rel-flyteadmin-api-server"),
            ("Role", "rel-flyteadmin-operator"),
            ("RoleBinding", "rel-flyteadmin-api-server"),
            ("RoleBinding", "rel-flyteadmin-operator"),
            ("ClusterRole", "rel-flyteadmin-flyte-operator"),
            ("ClusterRoleBinding", "rel-flyteadmin-flyte-operator"),
            # Reading etcd's database size from kube-apiserver's /metrics (core/budget.py).
            ("ClusterRole", "rel-flyteadmin-flyte-etcd-size"),
            ("ClusterRoleBinding", "rel-flyteadmin-flyte-etcd-size"),
        ]
    )
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "flyteadmin"
        assert labels["app.kubernetes.io/instance"] == "rel"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if obj["metadata"]["name"] != "rel-flyteadmin-config":  # shared by both components
            assert labels["app.kubernetes.io/component"] in ("api-server", "operator")
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert obj["metadata"]["namespace"] == "flyte"

    # The config is the code's defaults except the bind address, the store namespace and the
    # folder of the default cluster resource templates.
    defaults = Settings()
    assert loaded_config(objs, tmp_path) == dataclasses.replace(
        defaults,
        server=dataclasses.replace(defaults.server, host="0.0.0.0"),
        kubernetes=dataclasses.replace(defaults.kubernetes, namespace="flyte"),
        cluster_resources=dataclasses.replace(
            defaults.cluster_resources, templates_dir=TEMPLATES_DIR
        ),
    )
    # The default template set: a ResourceQuota per project-domain namespace.
    templates = find(objs, "ConfigMap", "rel-flyteadmin-cluster-resources")["data"]
    assert list(templates) == ["resourcequota.yaml"]
    quota = templates["resourcequota.yaml"]
    assert "kind: ResourceQuota" in quota and "namespace: {{ namespace }}" in quota

    api = find(objs, "Deployment", "rel-flyteadmin-api-server")
    op = find(objs, "Deployment", "rel-flyteadmin-operator")
    api_c, op_c = container(api), container(op)
    assert api_c["command"] == ["flyteadmin", "serve", "--config", f"{CONFIG_DIR}/config.yaml"]
    assert op_c["command"] == ["flyteadmin", "operator", "--config", f"{CONFIG_DIR}/config.yaml"]
    assert "args" not in api_c and "args" not in op_c
    assert api["spec"]["replicas"] == 1 and op["spec"]["replicas"] == 1
    assert op["spec"]["strategy"] == {"type": "Recreate"}
    assert [(p["name"], p["containerPort"]) for p in api_c["ports"]] == [
        ("grpc", 8089),
        ("http", 8088),
        ("metrics", 10254),
    ]
    assert [(p["name"], p["containerPort"]) for p in op_c["ports"]] == [("metrics", 10254)]
    # Both serve /readyz (caches synced, apiserver reachable) and /livez on the metrics port.
    for c in (api_c, op_c):
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in op_c[
        "env"
    ]

    for deployment, c, sa in ((api, api_c, "api-server"), (op, op_c, "operator")):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == f"rel-flyteadmin-{sa}"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"]["configMap"]["name"] == "rel-flyteadmin-config"
        assert "emptyDir" in volumes["tmp"]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        own = {"operator": {TEMPLATES_DIR: "cluster-resources"}}.get(sa, {})
        assert mounts == {CONFIG_DIR: "config", "/tmp": "tmp", **own}
        assert {m["name"] for m in c["volumeMounts"]} == set(volumes)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert labels["app.kubernetes.io/component"] == sa
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert {k: v for k, v in annotations.items() if k.startswith("prometheus.io/")} == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "10254",
            "prometheus.io/path": "/metrics",
        }

    svc = find(objs, "Service", "rel-flyteadmin")
    assert [
        (p["name"], p["port"], p["targetPort"], p["appProtocol"]) for p in svc["spec"]["ports"]
    ] == [
        ("grpc", 8089, "grpc", "grpc"),
        ("http", 8088, "http", "http"),
        ("metrics", 10254, "metrics", "http"),
    ]
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    op_labels = op["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= api_labels.items()
    assert not svc["spec"]["selector"].items() <= op_labels.items()
    op_svc = find(objs, "Service", "rel-flyteadmin-operator-metrics")
    assert [(p["name"], p["targetPort"]) for p in op_svc["spec"]["ports"]] == [
        ("metrics", "metrics")
    ]
    assert op_svc["spec"]["selector"].items() <= op_labels.items()
    assert not op_svc["spec"]["selector"].items() <= api_labels.items()

    # RBAC: exactly what each component needs, each bound to its own ServiceAccount.
    assert grants(find(objs, "Role", "rel-flyteadmin-api-server")) == expand(
        "flyteadmin.io", PLURALS, ALL_VERBS
    ) | expand("flyteadmin.io", WITH_STATUS, {"get", "update", "patch"}) | {
        ("flyteadmin.io", "eventbatches", "deletecollection")
    }
    assert grants(find(objs, "Role", "rel-flyteadmin-operator")) == expected_operator_grants()
    assert grants(find(objs, "ClusterRole", "rel-flyteadmin-flyte-operator")) == (
        OPERATOR_CLUSTER_GRANTS | CLUSTER_RESOURCE_GRANTS
    )
    for kind, name, sa in (
        ("RoleBinding", "rel-flyteadmin-api-server", "rel-flyteadmin-api-server"),
        ("RoleBinding", "rel-flyteadmin-operator", "rel-flyteadmin-operator"),
        ("ClusterRoleBinding", "rel-flyteadmin-flyte-operator", "rel-flyteadmin-operator"),
    ):
        binding = find(objs, kind, name)
        assert binding["roleRef"]["name"] == name
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": "flyte"}]


CUSTOM = {
    "image": {"repository": "registry.example/flyteadmin", "tag": "1.2.3"},
    "config": {"kubernetes": {"namespace": "flyte-store"}, "server": {"http_port": 9088}},
    "apiServer": {
        "replicas": 3,
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
    },
    # Helm merges maps with the defaults, so give both halves to replace them entirely.
    "operator": {
        "resources": {"requests": {"cpu": "200m", "memory": "300Mi"}, "limits": {"memory": "1Gi"}}
    },
}


def test_custom_namespace_replicas_and_resources(render, tmp_path: Path):
    objs = render(CUSTOM, namespace="flyte-system")
    settings = loaded_config(objs, tmp_path)
    assert settings.kubernetes.namespace == "flyte-store"
    assert (settings.server.host, settings.server.http_port) == ("0.0.0.0", 9088)

    api = find(objs, "Deployment", "rel-flyteadmin-api-server")
    op = find(objs, "Deployment", "rel-flyteadmin-operator")
    assert api["spec"]["replicas"] == 3 and op["spec"]["replicas"] == 1
    assert container(api)["resources"] == CUSTOM["apiServer"]["resources"]
    assert container(op)["resources"] == CUSTOM["operator"]["resources"]
    assert container(api)["image"] == container(op)["image"] == "registry.example/flyteadmin:1.2.3"
    assert api["metadata"]["labels"]["app.kubernetes.io/version"] == "1.2.3"
    # The container port follows the config, and the Service targets it by name.
    assert {p["name"]: p["containerPort"] for p in container(api)["ports"]}["http"] == 9088
    assert find(objs, "Service", "rel-flyteadmin")["spec"]["ports"][1]["targetPort"] == "http"

    # Roles live where the custom resources are; everything else in the release namespace.
    for obj in objs:
        if obj["kind"] in ("Role", "RoleBinding"):
            assert obj["metadata"]["namespace"] == "flyte-store"
            if obj["kind"] == "RoleBinding":
                assert obj["subjects"][0]["namespace"] == "flyte-system"
        elif obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert obj["metadata"]["namespace"] == "flyte-system"
    find(objs, "ClusterRole", "rel-flyteadmin-flyte-system-operator")


def test_propeller_admin_endpoint_points_at_the_service(render):
    assert not [o for o in render() if o["metadata"]["name"].endswith("-propeller-admin")]
    objs = render({"flytepropeller": {"enabled": True}}, namespace="flyte", release="prod")
    cm = find(objs, "ConfigMap", "prod-flyteadmin-propeller-admin")
    admin = yaml.safe_load(cm["data"]["admin.yaml"])["admin"]
    svc = find(objs, "Service", "prod-flyteadmin")
    grpc_port = {p["name"]: p["port"] for p in svc["spec"]["ports"]}["grpc"]
    assert admin == {"endpoint": f"dns:///prod-flyteadmin.flyte.svc:{grpc_port}", "insecure": True}


@pytest.mark.parametrize(
    "values, flags, message",
    [
        ({"operator": {"replicas": 2}}, [], "operator.replicas must be 1"),
        ({"config": {"operator": {"peering": "flyte"}}}, [], "kopf.dev/v1 KopfPeering"),
        ({"metrics": {"serviceMonitor": {"enabled": True}}}, [], "ServiceMonitor CRD"),
    ],
)
def test_unsupported_operator_setups_fail_to_render(
    helm: Run, tmp_path: Path, values, flags, message
):
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = helm("template", "rel", str(CHART), "-f", str(values_file), *flags, check=False)
    assert proc.returncode != 0 and message in proc.stderr


def test_peering_with_the_kopf_crds_adds_its_grants_and_object(render, tmp_path: Path):
    objs = render(
        {"config": {"operator": {"peering": "flyte"}}},
        "--api-versions", "kopf.dev/v1/KopfPeering",
    )  # fmt: skip
    assert loaded_config(objs, tmp_path).operator.peering == "flyte"
    assert grants(find(objs, "Role", "rel-flyteadmin-operator")) == expected_operator_grants(
        expand("kopf.dev", {"kopfpeerings"}, {"get", "list", "watch", "patch"})
    )
    peering = find(objs, "KopfPeering", "flyte")
    assert (peering["apiVersion"], peering["metadata"]["namespace"]) == ("kopf.dev/v1", "flyte")


def test_crds_are_included_on_request_and_match_core_crds(render):
    def rendered(*flags: str) -> dict[str, Obj]:
        objs = render({"flyteworkflowCrd": {"install": False}}, *flags)
        return {o["metadata"]["name"]: o for o in objs if o["kind"] == "CustomResourceDefinition"}

    assert rendered() == {}
    assert rendered("--include-crds") == {k.crd_name: k.manifest() for k in crds.KINDS}


def test_the_flyteworkflow_crd_is_optional_and_kept_on_uninstall(render):
    (crd,) = [o for o in render() if o["kind"] == "CustomResourceDefinition"]
    expected = fw_crd.manifest()
    assert crd["spec"] == expected["spec"]
    assert crd["metadata"]["name"] == expected["metadata"]["name"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"


# ------------------------------------------------------------------------------ real cluster


@pytest.fixture
def make_namespace(kube_api: client.ApiClient, unique: str) -> Iterator[Callable[[str], str]]:
    """Create namespaces that enforce the `restricted` Pod Security level; deleted afterwards."""
    made: list[str] = []
    level = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")}

    def make(prefix: str) -> str:
        name = f"{prefix}-{unique}"
        kube.ensure_namespace(kube_api, name, labels=level)
        made.append(name)
        return name

    yield make
    for name in made:
        client.CoreV1Api(kube_api).delete_namespace(name)


def to_yaml(objs: list[Obj]) -> str:
    return yaml.safe_dump_all(objs)


@pytest.mark.cluster
@pytest.mark.parametrize("variant", ["defaults", "custom"])
def test_server_side_dry_run_apply(render, kubectl: Run, make_namespace, crds_installed, variant):
    release_ns = make_namespace("chart")
    values: dict = {"flytepropeller": {"enabled": True}}
    if variant == "custom":  # the custom resources in a second namespace
        values = copy.deepcopy(CUSTOM)
        values["config"]["kubernetes"]["namespace"] = make_namespace("store")
    objs = render(values, "--include-crds", namespace=release_ns)
    crd_objs = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
    objs = [o for o in objs if o["kind"] != "CustomResourceDefinition"]
    assert len(crd_objs) == len(crds.KINDS) + 1  # ours and, from templates/, FlyteWorkflow

    dry_run = ("apply", "--server-side", "--dry-run=server", "-f", "-")
    proc = kubectl(*dry_run, stdin=to_yaml(objs))
    assert proc.returncode == 0, proc.stderr
    # No Pod Security warnings: both pod templates meet the `restricted` level.
    assert "Warning" not in proc.stderr, proc.stderr
    applied = proc.stdout.splitlines()
    assert len(applied) == len(objs), proc.stdout
    assert all(line.endswith("serverside-applied (server dry run)") for line in applied)

    # The CRDs exist already (crds_installed, written with replace): their atomic
    # spec.versions belongs to that manager, so an apply conflicts even with equal content.
    proc = kubectl(*dry_run, "--force-conflicts", stdin=to_yaml(crd_objs))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == len(crd_objs), proc.stdout


def can_i(kubectl: Run, config: Path, namespace: str, verb: str, resource: str) -> bool:
    resource, _, subresource = resource.partition("/")
    flags = [f"--subresource={subresource}"] if subresource else []
    proc = kubectl("auth", "can-i", verb, resource, *flags, "-n", namespace, config=config)
    assert proc.stdout.strip() in ("yes", "no"), proc.stderr
    return proc.stdout.strip() == "yes"


def service_account_kubeconfig(
    admin: Path, kube_api: client.ApiClient, namespace: str, name: str, into: Path
) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a fresh bound token."""
    token = (
        client.CoreV1Api(kube_api)
        .create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": 3600}}
        )
        .status.token
    )
    config = yaml.safe_load(admin.read_text())
    config["users"] = [{"name": config["contexts"][0]["context"]["user"], "user": {"token": token}}]
    path = into / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


# (verb, resource, allowed) per component, checked with `kubectl auth can-i` as the account.
API_SERVER_ACCESS = [
    ("create", "projects.flyteadmin.io", True),
    ("deletecollection", "eventbatches.flyteadmin.io", True),  # the event journal
    ("deletecollection", "nodeexecutions.flyteadmin.io", False),
    ("delete", "executions.flyteadmin.io", True),
    ("update", "signals.flyteadmin.io/status", True),
    ("update", "projects.flyteadmin.io/status", False),  # projects have no status
    ("create", "namespaces", False),
    ("list", "secrets", False),
    ("create", "events", False),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", False),
]
OPERATOR_ACCESS = [
    ("watch", "projects.flyteadmin.io", True),
    ("patch", "projects.flyteadmin.io", True),
    ("list", "signals.flyteadmin.io", True),
    ("create", "projects.flyteadmin.io", False),
    ("update", "projects.flyteadmin.io", False),
    ("delete", "tasks.flyteadmin.io", False),
    ("update", "executions.flyteadmin.io/status", True),
    ("delete", "executions.flyteadmin.io", True),  # the archiver
    ("deletecollection", "nodeexecutions.flyteadmin.io", True),
    ("create", "historysegments.flyteadmin.io", True),
    ("delete", "projects.flyteadmin.io", False),
    ("create", "executions.flyteadmin.io", True),  # scheduled executions
    ("update", "namedentities.flyteadmin.io/status", True),
    ("update", "namedentities.flyteadmin.io", False),
    ("create", "flyteworkflows.flyte.lyft.com", True),
    ("create", "events", True),
    ("patch", "events", False),
    ("create", "namespaces", True),
    ("delete", "namespaces", False),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", True),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", False),
    ("get", "secrets", False),
    ("patch", "resourcequotas", True),
    ("create", "serviceaccounts", True),
    ("update", "limitranges", True),
    ("delete", "resourcequotas", False),
    ("create", "pods", False),
]


@pytest.mark.cluster
def test_rbac_is_exactly_enough_for_the_real_processes(
    render, kubectl: Run, kubeconfig: Path, kube_api, namespace: str, unique: str, tmp_path, caplog
):
    """Apply the chart's RBAC for real, then run the API server and the operator with their
    ServiceAccounts' tokens: a project registered through gRPC must get its namespaces, and
    the cluster resource template its ResourceQuota in each (server-side apply)."""
    objs = render(None, namespace=namespace)
    rbac = [o for o in objs if o["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    cluster_rbac = [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    proc = kubectl("apply", "--server-side", "-f", "-", stdin=to_yaml(rbac + cluster_rbac))
    assert proc.returncode == 0, proc.stderr
    created_namespaces: list[str] = []
    try:
        configs = {
            sa: service_account_kubeconfig(
                kubeconfig, kube_api, namespace, f"rel-flyteadmin-{sa}", tmp_path
            )
            for sa in ("api-server", "operator")
        }
        for sa, table in (("api-server", API_SERVER_ACCESS), ("operator", OPERATOR_ACCESS)):
            answers = [
                (verb, res, can_i(kubectl, configs[sa], namespace, verb, res))
                for verb, res, _ in table
            ]
            assert answers == table, sa

        template = f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"
        templates_dir = tmp_path / "templates"
        templates_dir.mkdir()
        quota = find(objs, "ConfigMap", "rel-flyteadmin-cluster-resources")["data"]
        (templates_dir / "resourcequota.yaml").write_text(quota["resourcequota.yaml"])
        settings = Settings(
            server=ServerSettings(host="127.0.0.1", grpc_port=0, http_port=0),
            kubernetes=KubernetesSettings(namespace=namespace),
            operator=OperatorSettings(namespace_template=template),
            cluster_resources=ClusterResourceSettings(templates_dir=str(templates_dir)),
        )
        created_namespaces = [namespace_for(template, "rbac", d) for d in settings.domain_ids()]
        caplog.set_level(logging.WARNING)
        run_both_and_register(settings, configs, created_namespaces, kube_api)
        denied = [
            r.getMessage()
            for r in caplog.records
            if re.search(r"forbidden|permission|403", r.getMessage(), re.IGNORECASE)
        ]
        assert denied == []
    finally:
        for obj in cluster_rbac:
            kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found")
        for name in created_namespaces:
            try:
                client.CoreV1Api(kube_api).delete_namespace(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


def run_both_and_register(
    settings: Settings, configs: dict[str, Path], expected: list[str], kube_api
) -> None:
    from flyteadmin.api_server.app import ApiServer
    from flyteadmin.operator.runner import run_operator

    def as_account(sa: str) -> Settings:
        k8s = dataclasses.replace(settings.kubernetes, kubeconfig=str(configs[sa]))
        return dataclasses.replace(settings, kubernetes=k8s)

    async def start_server() -> ApiServer:
        # Built inside the loop: grpc.aio binds the server to the running loop.
        server = ApiServer(as_account("api-server"))
        await server.start()
        return server

    loop = LoopThread()
    ready, stop = threading.Event(), threading.Event()
    server = loop.call(start_server())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            admin_pb2_grpc.AdminServiceStub(channel).RegisterProject(
                project_pb2.ProjectRegisterRequest(
                    project=project_pb2.Project(id="rbac", name="RBAC")
                )
            )
        operator = loop.spawn(
            lambda: run_operator(as_account("operator"), ready_flag=ready, stop_flag=stop)
        )
        assert ready.wait(30), "operator did not become ready"
        deadline = time.monotonic() + 30
        core = client.CoreV1Api(kube_api)
        for name in expected:
            while True:
                try:
                    labels = core.read_namespace(name).metadata.labels or {}
                    break
                except ApiException as exc:
                    assert exc.status == 404 and time.monotonic() < deadline, name
                    time.sleep(0.1)
            assert labels[MANAGED] == "true"
        # The chart's default template, applied by the operator as its ServiceAccount.
        for name in expected:
            while True:
                try:
                    core.read_namespaced_resource_quota("project-quota", name)
                    break
                except ApiException as exc:
                    assert exc.status == 404 and time.monotonic() < deadline, name
                    time.sleep(0.1)
        stop.set()
        operator.result(30)
    finally:
        stop.set()
        loop.call(server.stop())
        loop.close()
