"""Binaries built from Go modules into a cache: one mechanism for every Go program of the stack.

Each program comes from a wrapper Go module of ours under ``tools/`` (no Go source, only a
``go.mod`` that pins the release, its committed ``go.sum`` and a version file): ``tools/k8s``
(etcd, kube-apiserver, kube-controller-manager), ``tools/propeller`` (flytepropeller) and
``tools/fakegcs`` (fake-gcs-server, the blob store). A ``GoTool`` names the module, its binaries,
their build flags and any ``SourceEdit`` of a dependency; ``ensure`` builds what is missing,
once, into ``$FLYTEADMIN_CACHE/<name>-<version>-<hash of go.mod, go.sum and the edits>/``,
printing a line per step and keeping the Go command's output in a log file there.
``ensure_all`` does the same for several tools at once (concurrently: docs/testbed.md has the
measurements).

The wrapper modules ship inside the package (``flyteadmin/gotools`` in a wheel, see setup.py),
so an installed ``flyteadmin dev`` builds exactly what a checkout builds, into the same cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flyteadmin.devstack.processes import dying_with_parent

REPO_ROOT = Path(__file__).resolve().parents[2]
_INSTALLED_TOOLS = Path(__file__).resolve().parents[1] / "gotools"

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tools_dir() -> Path:
    """The wrapper modules: ``flyteadmin/gotools`` when installed from a wheel, else the
    checkout's ``tools/``."""
    return _INSTALLED_TOOLS if _INSTALLED_TOOLS.is_dir() else REPO_ROOT / "tools"


def cache_root() -> Path:
    base = os.environ.get("FLYTEADMIN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "flyteadmin"
    )
    return Path(base)


def module_digest(module_dir: Path, extra: bytes = b"") -> str:
    """A short hash of a Go module's go.mod and go.sum (a missing go.sum counts as empty), and
    of ``extra`` when given (what else changes the binaries)."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        path = module_dir / name
        digest.update(path.read_bytes() if path.exists() else b"")
    if extra:
        digest.update(extra)
    return digest.hexdigest()[:12]


def go(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        ["go", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


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


class GoBuildError(RuntimeError):
    """A Go program is neither given, cached nor buildable here; the message says why."""


@dataclass(frozen=True)
class SourceEdit:
    """One text of a dependency's source file replaced at build time: for what a release cannot
    be configured to do, such as listening on 127.0.0.1 only. The module is copied out of the
    Go module cache (which stays untouched; ``go build -overlay`` refuses files there), edited,
    and the build uses it through a ``replace`` in a go.mod of the build folder (``-modfile``),
    never in the committed one. The build fails when ``old`` is not in the file exactly once,
    so a new release cannot silently drop the edit."""

    module: str
    """The module's path as the wrapper module's graph selects it (replaces included)."""
    path: str
    """The file, relative to the module's root."""
    old: str
    new: str

    def apply(self, text: str) -> str:
        if text.count(self.old) != 1:
            raise GoBuildError(
                f"{self.module}/{self.path}: expected {self.old!r} once, found it "
                f"{text.count(self.old)} times (the release changed: update the edit)"
            )
        return text.replace(self.old, self.new)


def module_source_dir(module: str, cwd: Path) -> Path:
    """Where the Go command keeps ``module`` as ``cwd``'s module graph selects it (downloaded
    first when needed; a local replace gives its folder)."""
    go("mod", "download", module, cwd=cwd)
    info = json.loads(go("list", "-m", "-json", module, cwd=cwd))
    folder = (info.get("Replace") or {}).get("Dir") or info.get("Dir")
    if not folder:
        raise GoBuildError(f"the Go command has no source folder for {module} (in {cwd})")
    return Path(folder)


_REPLACE_RE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+(v\S+))?\s+=>\s+(\S+)(?:\s+(v\S+))?\s*$")


def _replace_lines(gomod_text: str) -> list[tuple[int, str, str]]:
    """``(line index, module, target)`` of every replace line of a go.mod (block or
    single-line form)."""
    found: list[tuple[int, str, str]] = []
    in_block = False
    for index, raw in enumerate(gomod_text.splitlines()):
        line = raw.split("//", 1)[0].strip()
        if line.startswith("replace ("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if (in_block or line.startswith("replace ")) and (m := _REPLACE_RE.match(line)):
            old, _, new, new_version = m.groups()
            found.append((index, old, f"{new} {new_version}" if new_version else new))
    return found


def replace_directives(gomod_text: str) -> list[tuple[str, str]]:
    """``(module, target)`` for every replace line of a go.mod (block or single-line form)."""
    return [(module, target) for _, module, target in _replace_lines(gomod_text)]


def _without_replaces_of(gomod_text: str, modules: set[str]) -> str:
    """go.mod text minus the replace lines (single or in a block) of ``modules``."""
    dropped = {index for index, module, _ in _replace_lines(gomod_text) if module in modules}
    kept = [line for index, line in enumerate(gomod_text.splitlines()) if index not in dropped]
    return "\n".join(kept) + "\n"


def edited_modfile(edits: Sequence[SourceEdit], cwd: Path, folder: Path) -> Path:
    """Copies of the edited modules under ``folder``, and a go.mod (with its go.sum) that
    replaces each module with its copy; the go.mod's path, for ``go build -modfile``."""
    folder.mkdir(parents=True, exist_ok=True)
    copies: dict[str, Path] = {}
    for edit in edits:
        if edit.module not in copies:
            copy = folder / edit.module.replace("/", "_")
            shutil.rmtree(copy, ignore_errors=True)
            # Plain copies: the module cache's files and folders are read-only.
            shutil.copytree(
                module_source_dir(edit.module, cwd), copy,
                copy_function=shutil.copyfile, ignore_dangling_symlinks=True,
            )  # fmt: skip
            for root, _, _ in os.walk(copy):
                os.chmod(root, 0o755)
            copies[edit.module] = copy
        source = copies[edit.module] / edit.path
        source.write_text(edit.apply(source.read_text()))
    gomod = _without_replaces_of((cwd / "go.mod").read_text(), set(copies))
    gomod += "".join(f"\nreplace {module} => {copy}\n" for module, copy in copies.items())
    modfile = folder / "build.mod"
    modfile.write_text(gomod)
    gosum = cwd / "go.sum"
    (folder / "build.sum").write_bytes(gosum.read_bytes() if gosum.exists() else b"")
    return modfile


@dataclass
class BuildReport:
    name: str
    seconds: float
    max_rss_kib: int


def _tail(path: Path, lines: int = 8) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    kept = [line for line in text.splitlines() if not line.startswith("go: downloading")]
    return "\n".join(kept[-lines:])


def go_build(
    name: str,
    packages: Sequence[str],
    out: Path,
    *,
    cwd: Path,
    flags: Sequence[str],
    log: Log,
    build_log: Path,
) -> BuildReport:
    """``go build`` static binaries, timing the step and its peak RSS. One package: ``out`` is
    the binary (written atomically); several: ``out`` is a folder the go command fills."""
    env = dict(os.environ, CGO_ENABLED="0")
    target = out if len(packages) > 1 else Path(str(out) + ".tmp")
    cmd = ["go", "build", "-trimpath", *flags, "-o", f"{target}{os.sep * (len(packages) > 1)}"]
    cmd += packages
    start = time.monotonic()
    with open(build_log, "a") as err:
        err.write(f"$ {' '.join(cmd)}\n")
        err.flush()
        # wait4 gives the peak RSS of the go command and its children (compiler, linker).
        # The go command dies with us (an interrupted first run leaves no build running).
        proc = subprocess.Popen(
            dying_with_parent(cmd),
            cwd=cwd,
            env=env,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
        _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise GoBuildError(f"building {name} failed (in {cwd}; {build_log}):\n{_tail(build_log)}")
    if len(packages) == 1:
        os.replace(target, out)
    report = BuildReport(name, time.monotonic() - start, rusage.ru_maxrss)
    log(f"built {name} in {report.seconds:.0f}s (peak RSS {report.max_rss_kib // 1024} MiB)")
    return report


@dataclass(frozen=True)
class GoTool:
    """Binaries of one wrapper module under ``tools/``."""

    name: str
    """Prefix of the cache folder, and what progress lines call it."""
    module: str
    """The wrapper module's folder under ``tools/``."""
    version_file: str
    binaries: Mapping[str, str]
    """Binary name -> Go package (``go build`` names some differently: ``exec_names``)."""
    flags: Callable[[str], list[str]]
    """Build flags for a version (tags, ``-ldflags`` stamping the release)."""
    exec_names: Mapping[str, str] = field(default_factory=dict)
    """Binary name -> the file name ``go build -o <dir>/`` gives it, where they differ."""
    edits: Sequence[SourceEdit] = ()
    """Dependency source edits applied to every build (part of the cache key)."""

    @property
    def module_dir(self) -> Path:
        return tools_dir() / self.module

    def version(self) -> str:
        return (self.module_dir / self.version_file).read_text().strip()

    def cache_dir(self) -> Path:
        """Keyed by the release, the exact module graph (go.mod + go.sum) and the edits."""
        edits = repr(list(self.edits)).encode() if self.edits else b""
        digest = module_digest(self.module_dir, extra=edits)
        return cache_root() / f"{self.name}-{self.version()}-{digest}"

    def _flags(self, target: Path) -> list[str]:
        flags = self.flags(self.version())
        if self.edits:
            modfile = edited_modfile(self.edits, self.module_dir, target / "edited")
            flags = [f"-modfile={modfile}", *flags]
        return flags

    def missing(self) -> list[str]:
        target = self.cache_dir()
        return [b for b in self.binaries if not (target / b).exists()]

    def build(self, log: Log = stderr_log) -> Path:
        """Build the missing binaries into the cache in one go command (they share most of
        their dependency graph, and one command schedules it over every core); return the
        cache folder."""
        target = self.cache_dir()
        missing = self.missing()
        if not missing:
            return target
        if shutil.which("go") is None:
            raise GoBuildError(f"Go (>= 1.26) is needed to build {self.name}")
        target.mkdir(parents=True, exist_ok=True)
        which = f" ({', '.join(missing)})" if len(self.binaries) > 1 else ""
        log(
            f"building {self.name} {self.version()}{which} into {target} "
            "(first run only; takes several minutes)"
        )
        packages = [self.binaries[b] for b in missing]
        build_log = target / "build.log"
        if len(packages) == 1:
            go_build(
                missing[0], packages, target / missing[0], cwd=self.module_dir,
                flags=self._flags(target), log=log, build_log=build_log,
            )  # fmt: skip
            return target
        staging = target / ".building"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        go_build(
            ", ".join(missing), packages, staging, cwd=self.module_dir,
            flags=self._flags(target), log=log, build_log=build_log,
        )  # fmt: skip
        for binary in missing:
            os.replace(staging / self.exec_names.get(binary, binary), target / binary)
        staging.rmdir()
        return target


def given_binary(env_var: str) -> Path | None:
    """The prebuilt binary an environment variable names (None when unset); a wrong path is an
    error, never a reason to build something else."""
    given = os.environ.get(env_var)
    if not given:
        return None
    path = Path(given).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise GoBuildError(f"{env_var}={given} is not an executable file")
    return path


def ensure_all(tools: Sequence[GoTool], log: Log = stderr_log, concurrent: bool = True) -> None:
    """Build every missing binary of ``tools``; concurrently by default (docs/testbed.md: on
    two cores a lone go command leaves a core idle during long links)."""
    pending = [tool for tool in tools if tool.missing()]
    if not concurrent or len(pending) < 2:
        for tool in pending:
            tool.build(log)
        return
    errors: list[BaseException] = []
    lock = threading.Lock()

    def build(tool: GoTool) -> None:
        try:
            tool.build(log)
        except BaseException as exc:  # noqa: BLE001 - reported below, after the others
            with lock:
                errors.append(exc)

    threads = [
        threading.Thread(target=build, args=(t,), name=f"build-{t.name}", daemon=True)
        for t in pending
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise GoBuildError("\n".join(str(e) for e in errors)) from errors[0]


def all_tools(*, needed: bool = False) -> list[GoTool]:
    """Every Go program of the dev stack (imported here: their modules import this one);
    ``needed``: only those neither cached nor given prebuilt (KUBEBUILDER_ASSETS, ...)."""
    from flyteadmin.devstack import gcs_build, k8s_build, propeller_build

    modules = (k8s_build, propeller_build, gcs_build)
    return [m.TOOL for m in modules if not needed or m.needs_build()]


def main(argv: list[str]) -> int:
    """``python -m flyteadmin.devstack.gobuild build [--sequential]``: build every missing Go
    program (what ``.ci/run`` does); ``list``: each one's cache folder and what is missing."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m flyteadmin.devstack.gobuild")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build what is missing into the cache")
    build.add_argument("--sequential", action="store_true", help="one go command at a time")
    sub.add_parser("list", help="cache folders and missing binaries")
    args = parser.parse_args(argv)
    if args.command == "list":
        for tool in all_tools():
            print(f"{tool.cache_dir()}  missing: {', '.join(tool.missing()) or 'nothing'}")
        return 0
    started = time.monotonic()
    ensure_all(all_tools(needed=True), concurrent=not args.sequential)
    print(f"Go programs ready in {time.monotonic() - started:.0f}s under {cache_root()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
