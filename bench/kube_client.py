"""The asyncio Kubernetes client's own CPU per request (core/kube.py ``KubeHttp`` over
core/http1.py), beside a plain aiohttp session sending the same requests (its transport until
2026-12-07), on a running stack:

    .venv/bin/python -m bench.kube_client --kubeconfig K [--requests 3000] [--clients 16]

Two requests, each ``--requests`` times from ``--clients`` concurrent callers: a GET of the
``default`` namespace and a POST of a ConfigMap of ~0.7 KB into a fresh namespace (deleted at
the end). CPU is this process's own (``time.process_time``): the client's cost, not the
server's. The two clients alternate, two rounds each. Not a test: figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop

from bench.common import print_table, run_main, say
from flyteadmin.core import kube

Send = Callable[[str, str, object], Awaitable[int]]


def _ours(http: kube.KubeHttp) -> Send:
    async def send(method: str, path: str, body: object) -> int:
        status, _, _ = await http.request_text(method, path, body)
        return status

    return send


def _aiohttp(session: aiohttp.ClientSession, cfg, headers: dict[str, str]) -> Send:
    async def send(method: str, path: str, body: object) -> int:
        async with session.request(method, cfg.host + path, json=body, headers=headers) as answer:
            await answer.text()
            return answer.status

    return send


async def _pass(send: Send, op: str, namespace: str, requests: int, clients: int) -> float:
    """CPU microseconds of this process per request."""

    async def caller() -> None:
        for _ in range(requests // clients):
            if op == "GET":
                status = await send("GET", "/api/v1/namespaces/default", None)
            else:
                body = {
                    "metadata": {
                        "name": f"c{uuid.uuid4().hex[:16]}",
                        "labels": {"bench": "kube-client"},
                    },
                    "data": {"value": "x" * 600},
                }
                status = await send("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
            assert status < 300, status

    started = time.process_time()
    await asyncio.gather(*(caller() for _ in range(clients)))
    return 1e6 * (time.process_time() - started) / (requests // clients * clients)


async def _main(args: argparse.Namespace) -> list[list[str]]:
    api = kube.api_client(args.kubeconfig)
    cfg = api.configuration
    namespace = f"kube-client-{uuid.uuid4().hex[:6]}"
    kube.ensure_namespace(api, namespace)
    http = kube.KubeHttp(api, max_connections=args.clients)
    tls = kube.ssl_context(cfg)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=tls if tls is not None else False, limit=args.clients),
        timeout=aiohttp.ClientTimeout(total=60),
    )
    headers = {"Accept": "application/json"} | kube.auth_headers(cfg)
    clients = {"KubeHttp (http1)": _ours(http), "aiohttp session": _aiohttp(session, cfg, headers)}
    figures: dict[tuple[str, str], list[float]] = {}
    try:
        for send in clients.values():  # connections open, code warm
            await _pass(send, "GET", namespace, args.clients * 4, args.clients)
        for round_ in (1, 2):
            for name, send in clients.items():
                for op in ("GET", "POST"):
                    say(f"round {round_}: {name} {op} x{args.requests}")
                    figures.setdefault((name, op), []).append(
                        await _pass(send, op, namespace, args.requests, args.clients)
                    )
    finally:
        await http.request("DELETE", f"/api/v1/namespaces/{namespace}")
        await http.close()
        await session.close()
        api.close()
    return [
        [name, op, ", ".join(f"{us:.0f}" for us in values)]
        for (name, op), values in figures.items()
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.kube_client", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    rows = uvloop.run(_main(args))
    print_table(["client", "request", "client CPU µs per request (rounds)"], rows)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    run_main(main)
