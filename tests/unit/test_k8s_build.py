"""The Go module's replace list is derived from the pinned release's own go.mod."""

from __future__ import annotations

import re

import pytest

from flyteadmin.devstack import k8s_build

RELEASE_GOMOD = """module k8s.io/kubernetes
require (
\tk8s.io/api v0.0.0
\tk8s.io/streaming v0.0.0
)
replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/streaming => ./staging/src/k8s.io/streaming
\tk8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
\tgithub.com/x/y => github.com/x/y v1.0.0
)
"""


def test_staging_modules_are_the_release_replace_targets():
    modules = k8s_build.staging_modules(RELEASE_GOMOD)
    assert modules == ["k8s.io/api", "k8s.io/sample-controller", "k8s.io/streaming"]
    block = k8s_build.staging_replaces("v1.36.3", modules)
    assert "\tk8s.io/api => k8s.io/api v0.36.3" in block
    assert "github.com" not in block


def test_committed_gomod_replaces_every_staging_module_at_the_pinned_version():
    version = k8s_build.kubernetes_version()
    gomod = (k8s_build.GO_MODULE_DIR / "go.mod").read_text()
    assert (
        f"require k8s.io/kubernetes {version}" in gomod or f"k8s.io/kubernetes {version}" in gomod
    )
    replaced = dict(re.findall(r"^\t(k8s\.io/[\w.-]+) => \1 (v\S+)$", gomod, re.M))
    assert len(replaced) >= 33  # v1.36 has 33 staging modules
    assert set(replaced.values()) == {"v0." + version.removeprefix("v1.")}


def test_version_is_stamped_into_the_binaries():
    flags = k8s_build._ldflags("v1.36.3")
    assert "k8s.io/component-base/version.gitVersion=v1.36.3" in flags
    assert "gitMajor=1" in flags and "gitMinor=36" in flags


def test_kubebuilder_assets_skip_the_build(tmp_path, monkeypatch):
    for name in ("etcd", "kube-apiserver"):
        (tmp_path / name).write_text("#!/bin/sh\n")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    assert k8s_build.ensure_binaries(log=lambda m: None) == tmp_path


def test_incomplete_kubebuilder_assets_are_not_used(tmp_path, monkeypatch):
    (tmp_path / "etcd").write_text("")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    monkeypatch.setenv("FLYTEADMIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", "")  # no Go either: a clear error, not a half-working cluster
    with pytest.raises(RuntimeError, match="KUBEBUILDER_ASSETS"):
        k8s_build.ensure_binaries(log=lambda m: None)


def test_the_apiserver_gets_a_laxer_garbage_collector_unless_the_environment_says_otherwise():
    from flyteadmin.devstack.controlplane import apiserver_env

    assert apiserver_env({"PATH": "/bin"}) == {"GOGC": "400", "GOMEMLIMIT": "2GiB", "PATH": "/bin"}
    assert apiserver_env({"GOGC": "100"})["GOGC"] == "100"
