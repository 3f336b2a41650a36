"""One build mechanism for every Go program of the dev stack, on tiny real Go modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flyteadmin.devstack import gobuild
from flyteadmin.devstack.gobuild import GoBuildError, GoTool

MAIN = 'package main\n\nimport "fmt"\n\nfunc main() {{ fmt.Println("{text}") }}\n'


def module(tools: Path, folder: str, mains: dict[str, str]) -> None:
    """A wrapper-style module under ``tools``: go.mod, a version file, main packages."""
    root = tools / folder
    root.mkdir(parents=True)
    (root / "go.mod").write_text(f"module example.invalid/{folder}\n\ngo 1.26\n")
    (root / "VERSION").write_text("v1.2.3\n")
    for package, text in mains.items():
        (root / package).mkdir(parents=True)
        (root / package / "main.go").write_text(MAIN.format(text=text))


def tool(folder: str, binaries: dict[str, str], **kw) -> GoTool:
    return GoTool(
        name=folder, module=folder, version_file="VERSION", binaries=binaries,
        flags=lambda version: ["-ldflags", "-s -w"], **kw,
    )  # fmt: skip


@pytest.fixture
def tools(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "gotools"  # where an installed package keeps the wrapper modules
    monkeypatch.setattr(gobuild, "_INSTALLED_TOOLS", folder)
    monkeypatch.setenv("FLYTEADMIN_CACHE", str(tmp_path / "cache"))
    return folder


def run(binary: Path) -> str:
    return subprocess.run([binary], capture_output=True, text=True, check=True).stdout.strip()


def test_one_binary_is_built_once_into_a_folder_keyed_by_version_and_module(tools, tmp_path):
    module(tools, "one", {"cmd/hello": "hello"})
    hello = tool("one", {"hello": "example.invalid/one/cmd/hello"})
    said: list[str] = []
    target = hello.build(said.append)
    assert target.parent == tmp_path / "cache"
    assert target.name == f"one-v1.2.3-{gobuild.module_digest(tools / 'one')}"
    assert run(target / "hello") == "hello"
    assert said[0].startswith("building one v1.2.3 into ") and said[1].startswith("built hello")
    assert hello.build(said.append) == target and len(said) == 2  # cached: nothing runs
    (tools / "one" / "go.sum").write_text("x\n")  # another module graph, another folder
    assert hello.cache_dir() != target


def test_several_binaries_of_one_module_are_built_in_one_go_command(tools):
    # go names a main package ".../server/v3" after "server": exec_names maps it back.
    module(tools, "many", {"cmd/a": "a", "server/v3": "etcd-like"})
    binaries = {"a": "example.invalid/many/cmd/a", "etcd": "example.invalid/many/server/v3"}
    many = tool("many", binaries, exec_names={"etcd": "server"})  # as k8s_build.TOOL says
    said: list[str] = []
    target = many.build(said.append)
    assert run(target / "a") == "a" and run(target / "etcd") == "etcd-like"
    assert said[0].startswith("building many v1.2.3 (a, etcd) into ")
    assert said[1].startswith("built a, etcd in ") and len(said) == 2
    assert not (target / ".building").exists()


def test_tools_are_built_concurrently_and_a_failure_names_its_log(tools):
    module(tools, "good", {"cmd/ok": "ok"})
    module(tools, "bad", {"cmd/broken": "x"})
    (tools / "bad" / "cmd" / "broken" / "main.go").write_text("package main\nfunc main() {\n")
    good = tool("good", {"ok": "example.invalid/good/cmd/ok"})
    bad = tool("bad", {"broken": "example.invalid/bad/cmd/broken"})
    with pytest.raises(GoBuildError, match=r"building broken failed .*build\.log"):
        gobuild.ensure_all([good, bad], log=lambda m: None)
    assert run(good.cache_dir() / "ok") == "ok"  # the other build finished all the same
    assert bad.missing() == ["broken"]


def test_a_given_binary_wins_and_a_wrong_one_is_an_error(tmp_path, monkeypatch):
    binary = tmp_path / "prebuilt"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("SOME_BINARY", str(binary))
    assert gobuild.given_binary("SOME_BINARY") == binary
    monkeypatch.setenv("SOME_BINARY", str(tmp_path / "missing"))
    with pytest.raises(GoBuildError, match="SOME_BINARY=.* is not an executable file"):
        gobuild.given_binary("SOME_BINARY")
    monkeypatch.delenv("SOME_BINARY")
    assert gobuild.given_binary("SOME_BINARY") is None


def test_the_checkout_and_an_installed_package_find_the_same_modules(monkeypatch, tmp_path):
    assert gobuild.tools_dir() == gobuild.REPO_ROOT / "tools"  # a checkout has no gotools/
    installed = tmp_path / "gotools"
    installed.mkdir()
    monkeypatch.setattr(gobuild, "_INSTALLED_TOOLS", installed)
    assert gobuild.tools_dir() == installed


def test_a_source_edit_changes_the_dependency_in_the_build_only(tools, tmp_path):
    # A dependency kept read-only outside the module, as the Go module cache keeps it, and
    # selected by a replace inside a block, as tools/propeller's generated block does.
    dep = tmp_path / "modcache" / "dep"
    dep.mkdir(parents=True)
    (dep / "go.mod").write_text("module example.invalid/dep\n\ngo 1.26\n")
    (dep / "addr.go").write_text('package dep\n\nconst Addr = ":%d"\n')
    for path in (dep / "go.mod", dep / "addr.go", dep):
        path.chmod(0o555 if path.is_dir() else 0o444)
    root = tools / "edited"
    (root / "cmd" / "show").mkdir(parents=True)
    gomod = (
        "module example.invalid/edited\n\ngo 1.26\n\nrequire example.invalid/dep v0.0.0\n\n"
        f"replace (\n\texample.invalid/dep => {dep}\n)\n"
    )
    (root / "go.mod").write_text(gomod)
    (root / "VERSION").write_text("v1.2.3\n")
    (root / "cmd" / "show" / "main.go").write_text(
        'package main\n\nimport (\n\t"fmt"\n\n\t"example.invalid/dep"\n)\n\n'
        "func main() { fmt.Println(dep.Addr) }\n"
    )
    binaries = {"show": "example.invalid/edited/cmd/show"}
    edit = gobuild.SourceEdit("example.invalid/dep", "addr.go", '":%d"', '"127.0.0.1:%d"')
    edited = tool("edited", binaries, edits=(edit,))
    plain = tool("edited", binaries)
    assert edited.cache_dir() != plain.cache_dir()  # an edit is part of the cache key
    assert run(edited.build(lambda m: None) / "show") == "127.0.0.1:%d"
    assert run(plain.build(lambda m: None) / "show") == ":%d"
    assert (dep / "addr.go").read_text() == 'package dep\n\nconst Addr = ":%d"\n'
    assert (root / "go.mod").read_text() == gomod  # the committed go.mod is never touched
    (edited.cache_dir() / "show").unlink()  # a second build over the first one's copy
    assert run(edited.build(lambda m: None) / "show") == "127.0.0.1:%d"

    stale = tool("edited", binaries, edits=(gobuild.SourceEdit(edit.module, "addr.go", "x", "y"),))
    with pytest.raises(GoBuildError, match=r"example.invalid/dep/addr.go: expected 'x' once"):
        stale.build(lambda m: None)
