"""The one layer contract import-linter cannot state: the core may call HTTP APIs with aiohttp's
client but serves nothing (no ``aiohttp.web``). import-linter reduces an external package to
its top-level name (``aiohttp``), so this rule stays a test; the other contracts are in
pyproject.toml's ``[tool.importlinter]`` (``lint-imports``, run by .ci/run)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = "aiohttp.web"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from aiohttp import web` imports aiohttp.web too.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_core_serves_no_http():
    files = sorted((ROOT / "core").rglob("*.py"))
    assert files
    violations = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imports_of(path)
        if name == FORBIDDEN or name.startswith(FORBIDDEN + ".")
    ]
    assert violations == []


def test_the_rule_sees_from_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from aiohttp import web\n")
    assert FORBIDDEN in imports_of(module)
