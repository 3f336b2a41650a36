"""The chart installed for real with `helm install` into the local control plane, upgraded and
uninstalled. There is no kubelet, so the Deployments get no Pods: the test checks the objects,
and what each ServiceAccount may do (`kubectl auth can-i --as system:serviceaccount:...`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flyteadmin.core import crds
from flyteadmin.core.config import dump_defaults
from flyteadmin.core.flyteworkflow import crd as fw_crd
from tests.e2e.stacks import emulator_forward, find_release
from tests.integration import test_chart as chart
from tests.integration.test_chart import Run
from tests.integration.test_chart_features import EXTRA_RULE

tool_env = chart.tool_env
helm = chart.helm
kubectl = chart.kubectl
make_namespace = chart.make_namespace

RELEASE = "rel"
FULLNAME = "rel-flyteadmin"


def install_values() -> dict:
    auth = {"mode": "self", "authorization": "kubernetes"}
    known = yaml.safe_load(dump_defaults())["auth"]  # auth keys are being added elsewhere
    return {
        "storage": {"credentialsSecret": {"name": "gcs-key"}},
        "auth": {"secretName": "flyteadmin-auth"},
        "config": {
            "auth": {k: v for k, v in auth.items() if k in known},
            # As `make e2e-kind` installs it: an in-cluster GCS emulator, forwarded to 127.0.0.1.
            "storage": {
                "endpoint": "http://gcs-emulator.flyte.svc:9023",
                "public_endpoint": "http://127.0.0.1:9023",
            },
        },
        "clusterResources": {"extraRules": [EXTRA_RULE]},
        "flytepropeller": {"deploy": True},
    }


def can_i(kubectl: Run, account: str, verb: str, resource: str, namespace: str = "") -> bool:
    """Whether ServiceAccount ``namespace/account`` may ``verb`` the resource (in namespace, or
    cluster-wide when empty), asked of the real authorizer by impersonation."""
    sa_namespace, _, name = account.partition("/")
    resource, _, subresource = resource.partition("/")
    flags = [f"--subresource={subresource}"] if subresource else []
    flags += ["-n", namespace] if namespace else ["--all-namespaces"]
    proc = kubectl(
        "auth", "can-i", verb, resource, *flags,
        f"--as=system:serviceaccount:{sa_namespace}:{name}",
    )  # fmt: skip
    assert proc.stdout.strip() in ("yes", "no"), proc.stderr
    return proc.stdout.strip() == "yes"


def exists(kubectl: Run, kind: str, name: str, namespace: str = "") -> bool:
    flags = ["-n", namespace] if namespace else []
    proc = kubectl("get", kind, name, *flags, "--ignore-not-found", "-o", "name")
    assert proc.returncode == 0, proc.stderr
    return bool(proc.stdout.strip())


@pytest.mark.cluster
def test_helm_install_upgrade_uninstall(
    helm: Run, kubectl: Run, kubeconfig: Path, make_namespace, crds_installed, tmp_path: Path
):
    ns = make_namespace("helm")
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(install_values()))
    target = ("-n", ns, "--kubeconfig", str(kubeconfig))
    installed = False
    try:
        # The session installed our CRDs already (with replace); Helm 4 server-side-applies
        # crds/ anyway, so it must take over the fields (same content) instead of conflicting.
        helm("install", RELEASE, str(chart.CHART), *target, "-f", str(values), "--force-conflicts")
        installed = True
        status = json.loads(helm("status", RELEASE, *target, "-o", "json").stdout)
        assert status["info"]["status"] == "deployed"

        # Every object of the release exists in the cluster.
        manifest = helm("get", "manifest", RELEASE, *target).stdout
        objs = [o for o in yaml.safe_load_all(manifest) if o]
        kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
        for kind, name in [
            ("Deployment", f"{FULLNAME}-api-server"),
            ("Deployment", f"{FULLNAME}-operator"),
            ("Deployment", f"{FULLNAME}-propeller"),
            ("Service", FULLNAME),
            ("ConfigMap", f"{FULLNAME}-config"),
            ("ConfigMap", f"{FULLNAME}-cluster-resources"),
            ("ConfigMap", f"{FULLNAME}-propeller-admin"),
            ("ClusterRole", f"{FULLNAME}-{ns}-operator"),
            ("ClusterRole", f"{FULLNAME}-{ns}-propeller"),
        ]:
            assert (kind, name) in kinds
        proc = kubectl("get", "-f", "-", "-o", "name", stdin=chart.to_yaml(objs))
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == len(objs)
        # The session's FlyteWorkflow CRD is not this release's: left alone, not adopted.
        assert ("CustomResourceDefinition", fw_crd.NAME) not in kinds
        proc = kubectl("get", "crd", fw_crd.NAME, "-o", "json")
        annotations = json.loads(proc.stdout)["metadata"].get("annotations") or {}
        assert "meta.helm.sh/release-name" not in annotations
        # No kubelet: the Deployments exist but run nothing.
        deployment = json.loads(
            kubectl("get", "deployment", f"{FULLNAME}-api-server", "-n", ns, "-o", "json").stdout
        )
        assert deployment["spec"]["replicas"] == 1
        assert not deployment["status"].get("readyReplicas")

        # What the e2e suite's helm mode reads of an installed release (tests/e2e/stacks.py).
        release = find_release(kubeconfig, RELEASE, ns)
        assert (release.namespace, release.fullname, release.grpc_port) == (ns, FULLNAME, 8089)
        assert release.config["kubernetes"]["namespace"] == ns
        assert release.config["operator"]["namespace_template"] == "{{ project }}-{{ domain }}"
        assert list(release.templates) == ["resourcequota.yaml"]
        forward = emulator_forward(release.config["storage"])
        assert forward == ("gcs-emulator", "flyte", 9023, 9023)

        api, op, prop = (f"{ns}/{FULLNAME}-{c}" for c in ("api-server", "operator", "propeller"))
        access = [
            # (account, verb, resource, namespace, allowed)
            (api, "create", "executions.flyteadmin.io", ns, True),
            (api, "update", "signals.flyteadmin.io/status", ns, True),
            (api, "create", "executions.flyteadmin.io", "elsewhere", False),
            (api, "create", "subjectaccessreviews.authorization.k8s.io", "", True),
            (api, "get", "secrets", ns, False),
            (api, "create", "namespaces", "", False),
            (op, "watch", "projects.flyteadmin.io", ns, True),
            (op, "update", "executions.flyteadmin.io/status", ns, True),
            (op, "create", "executions.flyteadmin.io", ns, True),  # the scheduler
            (op, "create", "namespaces", "", True),
            (op, "delete", "namespaces", "", False),
            (op, "create", "flyteworkflows.flyte.lyft.com", "proj-development", True),
            (op, "delete", "flyteworkflows.flyte.lyft.com", "proj-development", True),
            (op, "patch", "resourcequotas", "proj-development", True),
            (op, "create", "serviceaccounts", "proj-staging", True),
            (op, "patch", "networkpolicies.networking.k8s.io", "proj-staging", True),
            (op, "create", "pods", "proj-development", False),
            (op, "get", "secrets", ns, False),
            (op, "create", "subjectaccessreviews.authorization.k8s.io", "", False),
            (prop, "create", "pods", "proj-development", True),
            (prop, "update", "flyteworkflows.flyte.lyft.com/finalizers", "proj-development", True),
            (prop, "create", "events", "proj-development", True),
            (prop, "get", "secrets", "proj-development", False),
            (prop, "create", "projects.flyteadmin.io", ns, False),
        ]
        if "authorization" not in yaml.safe_load(dump_defaults())["auth"]:
            access.remove((api, "create", "subjectaccessreviews.authorization.k8s.io", "", True))
        answers = [(a, v, r, n, can_i(kubectl, a, v, r, n)) for a, v, r, n, _ in access]
        assert answers == access

        # An upgrade without cluster resources removes their ConfigMap and grants.
        helm("upgrade", RELEASE, str(chart.CHART), *target, "-f", str(values),
             "--set", "clusterResources.enabled=false")  # fmt: skip
        assert not exists(kubectl, "configmap", f"{FULLNAME}-cluster-resources", ns)
        assert exists(kubectl, "configmap", f"{FULLNAME}-config", ns)
        assert not can_i(kubectl, op, "patch", "resourcequotas", "proj-development")
        assert can_i(kubectl, op, "create", "flyteworkflows.flyte.lyft.com", "proj-development")
        config = json.loads(
            kubectl("get", "configmap", f"{FULLNAME}-config", "-n", ns, "-o", "json").stdout
        )
        assert yaml.safe_load(config["data"]["config.yaml"])["cluster_resources"][
            "templates_dir"
        ] == ""  # fmt: skip

        helm("uninstall", RELEASE, *target, "--wait")
        installed = False
        for kind, name in kinds:
            namespaced = kind not in ("ClusterRole", "ClusterRoleBinding")
            assert not exists(kubectl, kind, name, ns if namespaced else ""), (kind, name)
        # Helm never deletes CRDs from crds/: our kinds (and their objects) survive.
        for kind in crds.KINDS:
            assert exists(kubectl, "crd", kind.crd_name)
    finally:
        if installed:
            helm("uninstall", RELEASE, *target, check=False)
