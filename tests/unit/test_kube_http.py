"""The asyncio Kubernetes client's credentials (core/kube.py ``KubeHttp``): read from the
client's configuration, refresh hook included, but not on every call."""

from __future__ import annotations

import asyncio

from aiohttp import web
from kubernetes import client

from flyteadmin.core import kube
from tests.local_http import serve_locally


async def _seen_tokens(cfg: client.Configuration, calls: int) -> list[str]:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/version", handler)
    runner, port = await serve_locally(app)
    cfg.host = f"http://127.0.0.1:{port}"
    http = kube.KubeHttp(client.ApiClient(cfg))
    try:
        for _ in range(calls):
            await http.request("GET", "/version")
    finally:
        await http.close()
        await runner.cleanup()
    return seen


def _configuration(tokens: list[str]) -> client.Configuration:
    """A configuration whose refresh hook hands out the next token each time it runs, as a
    rotated service-account token would appear."""
    cfg = client.Configuration()
    cfg.api_key["BearerToken"] = "Bearer " + tokens[0]

    def refresh(c: client.Configuration) -> None:
        c.api_key["BearerToken"] = "Bearer " + tokens.pop(0)

    cfg.refresh_api_key_hook = refresh
    return cfg


def test_credentials_are_read_once_per_refresh_period():
    tokens = ["one", "two", "three"]
    seen = asyncio.run(_seen_tokens(_configuration(tokens), 3))
    assert seen == ["Bearer one"] * 3  # the hook ran once for three calls
    assert tokens == ["two", "three"]


def test_credentials_are_read_again_after_the_refresh_period(monkeypatch):
    monkeypatch.setattr(kube, "AUTH_REFRESH_SECONDS", 0.0)
    seen = asyncio.run(_seen_tokens(_configuration(["one", "two", "three"]), 3))
    assert seen == ["Bearer one", "Bearer two", "Bearer three"]
