"""Layer contracts: the core imports no front door (nor grpc, kopf or a web server); the two front
doors do not import each other. Checked on the source, so a violation fails before it ships."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "core": (
        "grpc",
        "grpc_health",
        "grpc_reflection",
        "aiohttp.web",  # the core may call HTTP APIs (aiohttp client), but serves nothing
        "kopf",
        "flyteadmin.api_server",
        "flyteadmin.operator",
        "flyteadmin.devstack",
    ),
    "api_server": ("kopf", "flyteadmin.operator", "flyteadmin.devstack"),
    "operator": ("grpc", "aiohttp", "flyteadmin.api_server", "flyteadmin.devstack"),
}


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


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_layer_contract(folder):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files
    violations = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imports_of(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[folder])
    ]
    assert violations == []
