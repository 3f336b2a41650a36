"""tools/propeller's replaces come from the release's go.mod; binaries are found, not guessed."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from flyteadmin.devstack import gobuild, propeller_build

RELEASE_GOMOD = """module github.com/flyteorg/flyte/flytepropeller

go 1.26.0

require github.com/flyteorg/flyte/flyteidl v0.0.0-00010101000000-000000000000

replace github.com/single/line => github.com/single/line v0.2.0 // a comment

replace (
\tgithub.com/aws/sagemaker => github.com/aws/sagemaker v1.0.1-0.2021
\tgithub.com/flyteorg/flyte/flyteidl => ../flyteidl
\tgithub.com/flyteorg/flyte/flytestdlib => ../flytestdlib
)
"""


def test_replace_directives_read_both_go_mod_forms():
    assert propeller_build.replace_directives(RELEASE_GOMOD) == [
        ("github.com/single/line", "github.com/single/line v0.2.0"),
        (
            "github.com/aws/sagemaker",
            "github.com/aws/sagemaker v1.0.1-0.2021",
        ),
        ("github.com/flyteorg/flyte/flyteidl", "../flyteidl"),
        ("github.com/flyteorg/flyte/flytestdlib", "../flytestdlib"),
    ]


def test_relative_monorepo_targets_become_published_modules_at_the_release():
    block = propeller_build.release_replaces(RELEASE_GOMOD, "v1.16.8")
    lines = block.splitlines()
    assert lines[0].startswith("// BEGIN") and lines[-1].startswith("// END")
    idl = "github.com/flyteorg/flyte/flyteidl"
    assert f"\t{idl} => {idl} v1.16.8" in lines
    assert "\tgithub.com/single/line => github.com/single/line v0.2.0" in lines
    assert "\tgithub.com/kubeflow/spark-operator => ./sparkoperator" in lines
    assert not any("../" in line for line in lines)


def test_a_relative_target_outside_the_monorepo_is_refused():
    gomod = "replace example.com/x => ../x\n"
    with pytest.raises(propeller_build.PropellerBuildError, match="example.com/x"):
        propeller_build.release_replaces(gomod, "v1.16.8")


def test_the_pinned_release_matches_our_flyteidl_pin():
    pyproject = (gobuild.REPO_ROOT / "pyproject.toml").read_text()
    flyteidl = re.search(r'"flyteidl==([\d.]+)"', pyproject).group(1)
    assert propeller_build.propeller_version() == f"v{flyteidl}"


def test_committed_gomod_requires_the_release_and_replaces_every_monorepo_module():
    version = propeller_build.propeller_version()
    gomod = (propeller_build.GO_MODULE_DIR / "go.mod").read_text()
    assert re.search(rf"^\s*github.com/flyteorg/flyte/flytepropeller {version}\b", gomod, re.M)
    assert f"tool {propeller_build.PACKAGE}\n" in gomod
    replaced = dict(re.findall(r"^\t(github\.com/flyteorg/flyte/\w+) => \1 (v\S+)$", gomod, re.M))
    assert set(replaced) == {
        "github.com/flyteorg/flyte/flyteidl",
        "github.com/flyteorg/flyte/flyteplugins",
        "github.com/flyteorg/flyte/flytestdlib",
    }
    assert set(replaced.values()) == {version}
    stand_in = propeller_build.GO_MODULE_DIR / "sparkoperator" / "go.mod"
    assert stand_in.read_text().count("module github.com/kubeflow/spark-operator\n") == 1


def test_cache_folder_is_keyed_by_release_and_module_graph(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYTEADMIN_CACHE", str(tmp_path / "cache"))
    tools = tmp_path / "gotools"  # where an installed package keeps the wrapper modules
    module = tools / "propeller"
    shutil.copytree(propeller_build.GO_MODULE_DIR, module, ignore=shutil.ignore_patterns("spark*"))
    monkeypatch.setattr(gobuild, "_INSTALLED_TOOLS", tools)
    first = propeller_build.binary_dir()
    assert first.parent == tmp_path / "cache"
    assert first.name.startswith(f"propeller-{propeller_build.propeller_version()}-")
    (module / "go.sum").write_text("changed\n")
    assert propeller_build.binary_dir() != first


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_flytepropeller_binary_wins(tmp_path, monkeypatch):
    binary = _executable(tmp_path / "propeller")
    monkeypatch.setenv("FLYTEPROPELLER_BINARY", str(binary))
    monkeypatch.setenv("PATH", "")  # nothing is built
    assert propeller_build.ensure_binary(log=lambda m: None) == binary


def test_a_missing_flytepropeller_binary_is_an_error_not_a_build(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYTEPROPELLER_BINARY", str(tmp_path / "nope"))
    with pytest.raises(propeller_build.PropellerBuildError, match="not an executable"):
        propeller_build.find_binary()


def test_without_go_or_a_binary_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("FLYTEPROPELLER_BINARY", raising=False)
    monkeypatch.setenv("FLYTEADMIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", "")
    assert propeller_build.find_binary() is None
    with pytest.raises(propeller_build.PropellerBuildError, match="FLYTEPROPELLER_BINARY"):
        propeller_build.ensure_binary(log=lambda m: None)
    assert propeller_build.main(["build", "--optional"]) == 0
    assert propeller_build.main(["build"]) == 1
    assert propeller_build.main(["path"]) == 1


def test_a_cached_binary_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv("FLYTEPROPELLER_BINARY", raising=False)
    monkeypatch.setenv("FLYTEADMIN_CACHE", str(tmp_path / "cache"))
    target = propeller_build.binary_dir()
    target.mkdir(parents=True)
    binary = _executable(target / "flytepropeller")
    assert propeller_build.find_binary() == binary
    assert os.access(binary, os.X_OK)
