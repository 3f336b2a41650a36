"""Build kube-apiserver, kube-controller-manager and etcd from Go modules into a cache.

The Go module in ``tools/k8s`` requires ``k8s.io/kubernetes`` at one pinned release. That
release's go.mod points every staging module (``k8s.io/api``, ``k8s.io/client-go``, ...) at a
relative ``./staging`` folder, which Go ignores for dependencies, so our go.mod needs a
``replace k8s.io/<m> => k8s.io/<m> v0.<minor>.<patch>`` line for each. ``sync_gomod`` derives
that list from the release's own go.mod (never typed by hand); ``ensure_binaries`` builds the
three binaries once per version into ``$FLYTEADMIN_CACHE/k8s-<version>-<hash>/`` (``gobuild``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from flyteadmin.devstack.gobuild import GoBuildError, GoTool, go, stderr_log, write_generated_block

# Binary name -> Go package path built from the tools module.
PACKAGES = {
    "etcd": "go.etcd.io/etcd/server/v3",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
}
_STAGING_RE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/")
_BEGIN = "// BEGIN generated staging replaces (flyteadmin.devstack.k8s_build sync)"
_END = "// END generated staging replaces"


def _ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    stamps = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "go-module-build",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    return "-s -w " + " ".join(f"-X {pkg}.{k}={v}" for k, v in stamps.items())


TOOL = GoTool(
    name="k8s",
    module="k8s",
    version_file="KUBERNETES_VERSION",
    binaries=PACKAGES,
    # The version stamps are ignored by etcd, which does not link component-base.
    flags=lambda version: ["-tags", "selinux,notest,grpcnotrace", "-ldflags", _ldflags(version)],
    exec_names={"etcd": "server"},  # go names a .../server/v3 main package "server"
)


GO_MODULE_DIR = TOOL.module_dir


def kubernetes_version() -> str:
    return TOOL.version()


def release_gomod(version: str) -> str:
    """The text of k8s.io/kubernetes@version's go.mod, through the Go module proxy or cache."""
    info = json.loads(go("mod", "download", "-json", f"k8s.io/kubernetes@{version}"))
    return Path(info["GoMod"]).read_text()


def staging_modules(gomod_text: str) -> list[str]:
    """Every module the release maps to ./staging/src: the ones that need a replace line."""
    return sorted(m.group(1) for line in gomod_text.splitlines() if (m := _STAGING_RE.match(line)))


def staging_replaces(version: str, modules: list[str]) -> str:
    staging_version = "v0." + version.removeprefix("v1.")
    lines = [f"\t{m} => {m} {staging_version}" for m in modules]
    return "\n".join([_BEGIN, "replace (", *lines, ")", _END])


def sync_gomod(version: str | None = None) -> None:
    """Rewrite the generated replace block of tools/k8s/go.mod from the release's go.mod."""
    version = version or kubernetes_version()
    block = staging_replaces(version, staging_modules(release_gomod(version)))
    write_generated_block(GO_MODULE_DIR / "go.mod", block, _BEGIN, _END)
    go("mod", "tidy", cwd=GO_MODULE_DIR)


def binaries_dir() -> Path:
    """Cache folder keyed by the release and the exact module graph (go.mod + go.sum)."""
    return TOOL.cache_dir()


def prebuilt_dir() -> Path | None:
    """``KUBEBUILDER_ASSETS`` (envtest's prebuilt binaries) when set and complete."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and all((Path(assets) / n).exists() for n in ("etcd", "kube-apiserver")):
        return Path(assets)
    return None


def needs_build() -> bool:
    return prebuilt_dir() is None and bool(TOOL.missing())


def ensure_binaries(log=stderr_log) -> Path:
    """Return a folder holding etcd, kube-apiserver and kube-controller-manager.

    ``KUBEBUILDER_ASSETS`` wins when set and complete; otherwise the binaries are built once
    into the cache and reused.
    """
    prebuilt = prebuilt_dir()
    if prebuilt is not None:
        return prebuilt
    try:
        return TOOL.build(log)
    except GoBuildError as exc:
        raise GoBuildError(
            f"{exc}; or set KUBEBUILDER_ASSETS to prebuilt binaries, or pass a kubeconfig of "
            "an existing cluster"
        ) from None


def main(argv: list[str]) -> int:
    if argv[:1] == ["sync"]:
        sync_gomod(argv[1] if len(argv) > 1 else None)
        return 0
    if argv[:1] in (["build"], []):
        print(ensure_binaries())
        return 0
    print("usage: python -m flyteadmin.devstack.k8s_build [sync [VERSION] | build]")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
