"""The asyncio Kubernetes client's credentials (core/kube.py ``KubeHttp``): read from the
client's configuration, refresh hook included, but not on every call; and its requests as a
server sees them."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from aiohttp import web
from kubernetes import client

from flyteadmin.core import kube
from flyteadmin.devstack.pki import ensure_pki
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


def test_requests_as_kube_apiserver_sees_them():
    """A host URL with a path (a proxy's) prefixes every call; a body goes as compact JSON with
    its content type; the user agent (kube-apiserver's field manager) is ours; an answer's
    size is its bytes without the final newline."""
    seen: list[tuple[str, str, str, str, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            (
                request.method,
                request.path_qs,
                request.headers.get("Content-Type", ""),
                request.headers["User-Agent"],
                body,
            )
        )
        return web.Response(text='{"kind": "Thing"}\n', content_type="application/json")

    async def main() -> tuple[dict, int]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner, port = await serve_locally(app)
        cfg = client.Configuration()
        cfg.host = f"http://127.0.0.1:{port}/k8s/clusters/c-1/"
        http = kube.KubeHttp(client.ApiClient(cfg))
        try:
            answer = await http.request_sized("POST", "/api/v1/namespaces?dryRun=All", {"a": [1]})
            await http.request(
                "PATCH",
                "/api/v1/namespaces/n",
                {"b": None},
                content_type="application/merge-patch+json",
            )
            await http.request("GET", "/version")
        finally:
            await http.close()
            await runner.cleanup()
        return answer

    assert asyncio.run(main()) == ({"kind": "Thing"}, 17)
    assert seen == [
        (
            "POST",
            "/k8s/clusters/c-1/api/v1/namespaces?dryRun=All",
            "application/json",
            "flyteadmin",
            b'{"a":[1]}',
        ),
        (
            "PATCH",
            "/k8s/clusters/c-1/api/v1/namespaces/n",
            "application/merge-patch+json",
            "flyteadmin",
            b'{"b":null}',
        ),
        ("GET", "/k8s/clusters/c-1/version", "", "flyteadmin", b""),
    ]


def test_an_unreachable_server_is_a_kube_error_with_status_zero():
    async def main() -> None:
        runner, port = await serve_locally(web.Application())
        await runner.cleanup()  # nothing listens there any more
        cfg = client.Configuration()
        cfg.host = f"http://127.0.0.1:{port}"
        http = kube.KubeHttp(client.ApiClient(cfg))
        try:
            await http.request("GET", "/version")
        finally:
            await http.close()

    with pytest.raises(
        kube.KubeError, match="cannot reach the Kubernetes API: cannot connect"
    ) as err:
        asyncio.run(main())
    assert err.value.status == 0


def test_tls_with_a_client_certificate_through_a_server_restart(tmp_path):
    """Over TLS as a kubeconfig gives it (the cluster's CA, a client certificate, the name to
    verify): a server that went away fails the call with status 0, and once it is back on the
    same port the next call opens a new connection and succeeds. A name the certificate does
    not hold is refused."""
    pki = ensure_pki(tmp_path)
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item[0] for item in (peer or {}).get("subject", ()))
        seen.append(subject.get("commonName", ""))
        return web.json_response({"ok": True})

    def server_tls() -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
        ctx.load_cert_chain(pki.serving_cert, pki.serving_key)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    async def serve(port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/version", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_tls()).start()
        return runner

    def configuration(port: int, name: str) -> client.Configuration:
        cfg = client.Configuration()
        cfg.host = f"https://127.0.0.1:{port}"
        cfg.ssl_ca_cert = str(pki.ca_cert)
        cfg.cert_file, cfg.key_file = str(pki.admin_cert), str(pki.admin_key)
        cfg.tls_server_name = name
        return cfg

    async def main() -> None:
        runner = await serve(0)
        port = runner.addresses[0][1]
        http = kube.KubeHttp(client.ApiClient(configuration(port, "kubernetes.default.svc")))
        try:
            assert await http.request("GET", "/version") == {"ok": True}
            await runner.cleanup()
            with pytest.raises(kube.KubeError) as gone:
                await http.request("GET", "/version")
            assert gone.value.status == 0
            runner = await serve(port)
            assert await http.request("GET", "/version") == {"ok": True}
            wrong = kube.KubeHttp(client.ApiClient(configuration(port, "elsewhere.example")))
            with pytest.raises(kube.KubeError, match="CERTIFICATE_VERIFY_FAILED|match"):
                await wrong.request("GET", "/version")
            await wrong.close()
        finally:
            await http.close()
            await runner.cleanup()

    asyncio.run(main())
    assert seen == ["admin", "admin"]
