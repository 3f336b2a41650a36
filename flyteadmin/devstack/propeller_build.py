"""Build stock flytepropeller (its ``cmd/controller``) into a cache, like the Kubernetes binaries.

``tools/propeller`` is a Go module that requires ``github.com/flyteorg/flyte/flytepropeller`` at
the release in ``tools/propeller/FLYTEPROPELLER_VERSION`` (the one matching our flyteidl pin) and
names the controller with a ``tool`` directive. The release's go.mod points the monorepo's own
modules (flyteidl, flyteplugins, flytestdlib) at relative folders, which Go ignores for a
dependency, so our go.mod replaces each with its published module at the same release;
``sync_gomod`` derives those lines (plus the release's other replaces, which a dependency's
go.mod cannot carry over) from the release's go.mod, never by hand.

One module of the release's graph, ``github.com/kubeflow/spark-operator`` (a pseudo-version
needed only by the Spark plugin), is refused by the Go module proxy here, so the go.mod points it
at ``tools/propeller/sparkoperator``, an API-only stand-in of ours (``STAND_INS``).
One line of flytestdlib is edited at build time (``LOOPBACK``): its profiling server, which
also serves propeller's metrics and health, listens on ``":<port>"`` (every interface) and takes
no host; the dev stack starts everything on 127.0.0.1 only.

``FLYTEPROPELLER_BINARY`` skips all of this.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from flyteadmin.devstack.gobuild import (
    GoBuildError,
    GoTool,
    SourceEdit,
    given_binary,
    go,
    replace_directives,
    stderr_log,
    write_generated_block,
)

MODULE = "github.com/flyteorg/flyte/flytepropeller"
PACKAGE = f"{MODULE}/cmd/controller"
MONOREPO = "github.com/flyteorg/flyte/"
BINARY_NAME = "flytepropeller"
BINARY_ENV = "FLYTEPROPELLER_BINARY"
# Modules the proxy refuses -> our stand-in folders (relative to tools/propeller).
STAND_INS = {"github.com/kubeflow/spark-operator": "./sparkoperator"}
_BEGIN = "// BEGIN generated replaces (flyteadmin.devstack.propeller_build sync)"
_END = "// END generated replaces"


class PropellerBuildError(GoBuildError):
    """flytepropeller is neither given, cached nor buildable here; the message says why."""


def _ldflags(version: str) -> str:
    pkg = "github.com/flyteorg/flyte/flytestdlib/version"
    stamps = {"Version": version, "Build": "go-module-build", "BuildTime": "1970-01-01"}
    return "-s -w " + " ".join(f"-X {pkg}.{k}={v}" for k, v in stamps.items())


LOOPBACK = SourceEdit(
    module="github.com/flyteorg/flyte/flytestdlib",
    path="profutils/server.go",
    old='Addr:         fmt.Sprintf(":%d", pprofPort),',
    new='Addr:         fmt.Sprintf("127.0.0.1:%d", pprofPort),',
)

TOOL = GoTool(
    name="propeller",
    module="propeller",
    version_file="FLYTEPROPELLER_VERSION",
    binaries={BINARY_NAME: PACKAGE},
    flags=lambda version: ["-ldflags", _ldflags(version)],
    edits=(LOOPBACK,),
)
GO_MODULE_DIR = TOOL.module_dir


def propeller_version() -> str:
    return TOOL.version()


def release_replaces(gomod_text: str, version: str) -> str:
    """Our go.mod's generated replace block for a release whose go.mod is ``gomod_text``.

    A relative target (``../flyteidl``) becomes the published monorepo module at ``version``
    (tags ``flyteidl/<version>`` publish ``github.com/flyteorg/flyte/flyteidl <version>``);
    a version target is restated as it is; any other local path cannot be reproduced.
    """
    lines = []
    for module, target in replace_directives(gomod_text):
        if target.startswith(("./", "../")):
            if not module.startswith(MONOREPO):
                raise PropellerBuildError(f"{module} => {target}: not a flyte monorepo module")
            lines.append(f"\t{module} => {module} {version}")
        elif " " in target:
            lines.append(f"\t{module} => {target}")
        else:
            raise PropellerBuildError(f"{module} => {target}: a local path outside the release")
    lines += [f"\t{module} => {folder}" for module, folder in STAND_INS.items()]
    return "\n".join([_BEGIN, "replace (", *sorted(lines), ")", _END])


def release_gomod(version: str) -> str:
    """flytepropeller's go.mod at ``version``, through the Go module proxy or cache."""
    info = json.loads(go("mod", "download", "-json", f"{MODULE}@{version}"))
    return Path(info["GoMod"]).read_text()


def render_gomod(version: str, release_gomod_text: str) -> str:
    return "\n".join(
        [
            "// Builds stock flytepropeller from Go modules (see flyteadmin/devstack/"
            "propeller_build.py).",
            "// Kept apart from any other Go code so nothing bumps its dependencies.",
            "module flyteadmin.invalid/propellertools",
            "",
            "go 1.26.0",
            "",
            f"require {MODULE} {version}",
            "",
            f"tool {PACKAGE}",
            "",
            release_replaces(release_gomod_text, version),
            "",
        ]
    )


def sync_gomod(version: str | None = None) -> None:
    """Rewrite tools/propeller/go.mod's replace block from the release's go.mod, then tidy."""
    version = version or propeller_version()
    text = release_gomod(version)
    gomod = GO_MODULE_DIR / "go.mod"
    if gomod.exists():
        write_generated_block(gomod, release_replaces(text, version), _BEGIN, _END)
    else:
        gomod.write_text(render_gomod(version, text))
    go("mod", "tidy", cwd=GO_MODULE_DIR)


def binary_dir() -> Path:
    """Cache folder keyed by the release and the wrapper module (go.mod, go.sum)."""
    return TOOL.cache_dir()


def cached_binary() -> Path:
    return binary_dir() / BINARY_NAME


def find_binary() -> Path | None:
    """``$FLYTEPROPELLER_BINARY``, else the cached build, else None (nothing is built)."""
    try:
        given = given_binary(BINARY_ENV)
    except GoBuildError as exc:
        raise PropellerBuildError(str(exc)) from None
    if given is not None:
        return given
    binary = cached_binary()
    return binary if binary.exists() else None


def needs_build() -> bool:
    """True when neither ``$FLYTEPROPELLER_BINARY`` nor the cache has a binary (a wrong
    ``$FLYTEPROPELLER_BINARY`` is reported by ``ensure_binary``, never built around)."""
    return not os.environ.get(BINARY_ENV) and not cached_binary().exists()


def ensure_binary(log=stderr_log) -> Path:
    """A flytepropeller binary: ``$FLYTEPROPELLER_BINARY``, the cached one, or a new build."""
    found = find_binary()
    if found is not None:
        return found
    if shutil.which("go") is None:
        raise PropellerBuildError(
            f"Go (>= 1.26) is needed to build flytepropeller; or set {BINARY_ENV} to a binary"
        )
    try:
        return TOOL.build(log) / BINARY_NAME
    except GoBuildError as exc:
        raise PropellerBuildError(str(exc)) from None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flyteadmin.devstack.propeller_build")
    sub = parser.add_subparsers(dest="command", required=True)
    sync = sub.add_parser("sync", help="derive tools/propeller/go.mod's replaces from the release")
    sync.add_argument("version", nargs="?")
    build = sub.add_parser("build", help="build into the cache (no-op when present)")
    build.add_argument(
        "--optional", action="store_true", help="exit 0 with the reason when it cannot be built"
    )
    sub.add_parser("path", help="print the binary's path, or exit 1 when there is none")
    args = parser.parse_args(argv)
    if args.command == "sync":
        sync_gomod(args.version)
        return 0
    if args.command == "path":
        found = find_binary()
        print(found or f"not built: {cached_binary()}")
        return 0 if found else 1
    try:
        print(ensure_binary())
    except PropellerBuildError as exc:
        print(f"flytepropeller is not available: {exc}", file=sys.stderr)
        return 0 if args.optional else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
