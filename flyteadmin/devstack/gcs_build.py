"""Build fake-gcs-server, the dev stack's blob store, from Go modules into a cache.

``tools/fakegcs`` is a Go module that requires ``github.com/fsouza/fake-gcs-server`` at the
release in ``tools/fakegcs/FAKE_GCS_SERVER_VERSION`` and names its main package with a ``tool``
directive; its go.sum is committed. The binary is built once into
``$FLYTEADMIN_CACHE/fake-gcs-server-<version>-<hash>/`` like the Kubernetes binaries
(``gobuild``); ``FAKE_GCS_SERVER_BINARY`` names a prebuilt one instead. docs/testbed.md says why
this server, and how it is made crash-safe (``gcs.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from flyteadmin.devstack.gobuild import GoTool, given_binary, stderr_log

BINARY_NAME = "fake-gcs-server"
BINARY_ENV = "FAKE_GCS_SERVER_BINARY"

TOOL = GoTool(
    name=BINARY_NAME,
    module="fakegcs",
    version_file="FAKE_GCS_SERVER_VERSION",
    binaries={BINARY_NAME: "github.com/fsouza/fake-gcs-server"},
    flags=lambda version: ["-ldflags", "-s -w"],
)


def needs_build() -> bool:
    return given_binary(BINARY_ENV) is None and bool(TOOL.missing())


def ensure_binary(log=stderr_log) -> Path:
    """``$FAKE_GCS_SERVER_BINARY``, else the cached build, else a new build."""
    return given_binary(BINARY_ENV) or TOOL.build(log) / BINARY_NAME


def main(argv: list[str]) -> int:
    if argv in (["build"], []):
        print(ensure_binary())
        return 0
    print("usage: python -m flyteadmin.devstack.gcs_build [build]")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
