"""What this control plane is: its version, the git commit it was built from, and when it was
built (GetVersion, so that ``flytectl version`` shows them as it does for flyteadmin).

Sources, first found wins:

1. ``build_info.json`` next to this module, written when an image or a wheel is built
   (``python -m flyteadmin.buildinfo --commit <sha>``; the Dockerfile does it, with the commit
   given as the build argument ``GIT_COMMIT``);
2. a git checkout this code runs from (an editable install): its HEAD commit, and that
   commit's time as the build time, since a checkout is not built;
3. otherwise the commit and the build time are "unknown".

The version is the installed distribution's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "flyteadmin-k8s"
BUILD_INFO_FILE = Path(__file__).with_name("build_info.json")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str
    build_time: str  # RFC 3339, UTC


def package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def _from_git(root: Path) -> tuple[str, str] | None:
    """(commit, commit time) of the checkout at ``root``, or None when it is none."""
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%H%n%cI"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) != 2:
        return None
    when = dt.datetime.fromisoformat(out[1]).astimezone(dt.UTC)
    return out[0], when.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_info() -> BuildInfo:
    version = package_version()
    try:
        written = json.loads(BUILD_INFO_FILE.read_text())
        return BuildInfo(version, written["commit"], written["build_time"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = _from_git(Path(__file__).resolve().parent.parent)
    if found is not None:
        return BuildInfo(version, *found)
    return BuildInfo(version, UNKNOWN, UNKNOWN)


def write(commit: str, now: dt.datetime | None = None) -> BuildInfo:
    """Record the build: ``commit`` ("" or "unknown": the checkout's, if this is one) and now."""
    if commit in ("", UNKNOWN):
        found = _from_git(Path(__file__).resolve().parent.parent)
        commit = found[0] if found else UNKNOWN
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    info = BuildInfo(package_version(), commit, when)
    record = asdict(info)
    del record["version"]  # always the installed distribution's
    BUILD_INFO_FILE.write_text(json.dumps(record) + "\n")
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flyteadmin.buildinfo", description=__doc__)
    parser.add_argument("--commit", default="", help="the git commit being built")
    info = write(parser.parse_args(argv).commit)
    print(f"{BUILD_INFO_FILE}: {info}")


if __name__ == "__main__":
    main()
