"""Running the real `pyflyte` CLI (from this virtualenv) on the sample project in tests/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent / "flyteproject"
PYFLYTE = str(Path(sys.executable).parent / "pyflyte")


def pyflyte(config: str | Path, *args: str, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYFLYTE, "--config", str(config), *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONSAFEPATH="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )


def register(config: str | Path, version: str, *targets: str) -> None:
    """`pyflyte register --copy none` into flytesnacks/development; asserts success."""
    result = pyflyte(
        config, "register", "--project", "flytesnacks", "--domain", "development",
        "--copy", "none", "--version", version, *targets,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def register_sample_project(config: str | Path) -> None:
    """The reference task's target first, then the whole project."""
    register(config, "ref-v1", "myproject/shared.py")
    register(config, "v1", "myproject")
