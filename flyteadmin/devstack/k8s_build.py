"""Build kube-apiserver, kube-controller-manager and etcd from Go modules into a cache.

The Go module in ``tools/k8s`` requires ``k8s.io/kubernetes`` at one pinned release. That
release's go.mod points every staging module (``k8s.io/api``, ``k8s.io/client-go``, ...) at a
relative ``./staging`` folder, which Go ignores for dependencies, so our go.mod needs a
``replace k8s.io/<m> => k8s.io/<m> v0.<minor>.<patch>`` line for each. ``sync_gomod`` derives
that list from the release's own go.mod (never typed by hand); ``ensure_binaries`` builds the
three binaries once per version into ``$FLYTEADMIN_CACHE/k8s-<version>-<hash>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GO_MODULE_DIR = REPO_ROOT / "tools" / "k8s"
K8S_VERSION_FILE = GO_MODULE_DIR / "KUBERNETES_VERSION"

# Binary name -> Go package path built from the tools module.
PACKAGES = {
    "etcd": "go.etcd.io/etcd/server/v3",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
}
_STAGING_RE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/")
_BEGIN = "// BEGIN generated staging replaces (flyteadmin.devstack.k8s_build sync)"
_END = "// END generated staging replaces"


def kubernetes_version() -> str:
    return K8S_VERSION_FILE.read_text().strip()


def _go(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        ["go", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


def release_gomod(version: str) -> str:
    """The text of k8s.io/kubernetes@version's go.mod, through the Go module proxy or cache."""
    info = json.loads(_go("mod", "download", "-json", f"k8s.io/kubernetes@{version}"))
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
    _go("mod", "tidy", cwd=GO_MODULE_DIR)


def write_generated_block(gomod: Path, block: str, begin: str, end: str) -> None:
    """Replace the text between ``begin`` and ``end`` in ``gomod`` (or append ``block``)."""
    text = gomod.read_text()
    if begin in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    gomod.write_text(text)


def cache_root() -> Path:
    base = os.environ.get("FLYTEADMIN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "flyteadmin"
    )
    return Path(base)


def binaries_dir() -> Path:
    """Cache folder keyed by the release and the exact module graph (go.mod + go.sum)."""
    return cache_root() / f"k8s-{kubernetes_version()}-{module_digest(GO_MODULE_DIR)}"


def module_digest(module_dir: Path) -> str:
    """A short hash of a Go module's go.mod and go.sum (a missing go.sum counts as empty)."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        path = module_dir / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:12]


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


@dataclass
class BuildReport:
    name: str
    seconds: float
    max_rss_kib: int


def _build_one(name: str, out: Path, log) -> BuildReport:
    flags = ["-tags", "selinux,notest,grpcnotrace"]
    if name != "etcd":
        flags += ["-ldflags", _ldflags(kubernetes_version())]
    else:
        flags += ["-ldflags", "-s -w"]
    return go_build(name, PACKAGES[name], out, cwd=GO_MODULE_DIR, flags=flags, log=log)


def go_build(
    name: str, package: str, out: Path, *, cwd: Path, flags: list[str], log, stderr=None
) -> BuildReport:
    """``go build`` one static binary to ``out`` (atomically), timing it and its peak RSS."""
    env = dict(os.environ, CGO_ENABLED="0")
    cmd = ["go", "build", "-trimpath", *flags, "-o", str(out) + ".tmp", package]
    start = time.monotonic()
    # wait4 gives the peak RSS of the go command and its children (compiler, linker).
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stderr=stderr)
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"building {name} failed: {' '.join(cmd)} (in {cwd})")
    os.replace(str(out) + ".tmp", out)
    report = BuildReport(name, time.monotonic() - start, rusage.ru_maxrss)
    log(f"built {name} in {report.seconds:.0f}s (peak RSS {report.max_rss_kib // 1024} MiB)")
    return report


def ensure_binaries(log=lambda msg: print(msg, file=sys.stderr, flush=True)) -> Path:
    """Return a folder holding etcd, kube-apiserver and kube-controller-manager.

    ``KUBEBUILDER_ASSETS`` (envtest's prebuilt binaries) wins when set and complete; otherwise
    the binaries are built once into the cache and reused.
    """
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and all((Path(assets) / n).exists() for n in ("etcd", "kube-apiserver")):
        return Path(assets)
    target = binaries_dir()
    missing = [n for n in PACKAGES if not (target / n).exists()]
    if not missing:
        return target
    if shutil.which("go") is None:
        raise RuntimeError(
            "Go is needed to build the Kubernetes binaries; install Go >= 1.26, or set "
            "KUBEBUILDER_ASSETS to prebuilt binaries, or pass a kubeconfig of an existing cluster"
        )
    target.mkdir(parents=True, exist_ok=True)
    log(
        f"building Kubernetes {kubernetes_version()} binaries into {target} (first run only; "
        "takes several minutes)"
    )
    for name in missing:
        log(f"building {name} ...")
        _build_one(name, target / name, log)
    return target


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
