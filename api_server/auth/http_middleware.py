"""The HTTP door's authentication (one aiohttp middleware) and the built-in server's OAuth2
routes (`/oauth2/token`, `/oauth2/jwks`).

Open without a token: /healthcheck, everything under /oauth2/ and /.well-known/, /login,
/callback, /api/v1/openapi, and the gateway routes of the open RPCs (GetPublicClientConfig's
/config/v1/flyte_client). A rejected call gets 401 with a ``google.rpc.Status`` body, like every
other gateway error, and ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from flyteadmin.api_server.auth.authentication import OPEN_METHODS, Authenticator
from flyteadmin.api_server.context import CALLER
from flyteadmin.api_server.gateway import select_marshalers, status_response
from flyteadmin.api_server.routes import TABLE, RouteTable
from flyteadmin.core.auth.login import (
    AUTHORIZE_PATH,
    CALLBACK_PATH,
    DEVICE_PATH,
    VERIFY_PATH,
    Page,
    Redirect,
    UserLogins,
)
from flyteadmin.core.auth.runtime import Auth
from flyteadmin.core.auth.server import JWKS_PATH, TOKEN_PATH, OAuthError
from flyteadmin.core.errors import AdminError, Code

log = logging.getLogger(__name__)

ME_PATH = "/me"
OPEN_PATHS = frozenset({"/healthcheck", "/login", "/callback", "/api/v1/openapi"})
OPEN_PREFIXES = ("/oauth2/", "/.well-known/")

Middleware = Callable[..., Awaitable[web.StreamResponse]]


def is_open(method: str, path: str, table: RouteTable = TABLE) -> bool:
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return True
    found = table.match(method, path)
    return found is not None and found[0].full_method in OPEN_METHODS


def auth_middleware(authenticator: Authenticator) -> Middleware:
    @web.middleware
    async def authenticate(
        request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if is_open(request.method, request.rel_url.raw_path):
            return await handler(request)
        try:
            identity = await authenticator.authenticate(request.headers)
        except AdminError as error:
            _, outbound = select_marshalers(request.headers)
            refusal = status_response(outbound, error.code, error.message)
            if error.code == Code.UNAUTHENTICATED:
                refusal.headers["WWW-Authenticate"] = "Bearer"
            return refusal
        token = CALLER.set(identity)
        try:
            response = await handler(request)
        finally:
            CALLER.reset(token)
        if request.rel_url.raw_path == ME_PATH and response.status == 200:
            add_user_headers(response, identity.subject, identity.claims)
        return response

    return authenticate


def add_user_headers(response: web.StreamResponse, subject: str, claims: Mapping[str, Any]) -> None:
    """flyteadmin's `/me` also answers in headers: X-User-Subject and X-User-Claim-<claim, with
    `_` as `-`> (JSON values), for proxies that forward identity."""
    response.headers["X-User-Subject"] = subject
    for name, value in claims.items():
        header = "X-User-Claim-" + str(name).replace("_", "-")
        response.headers[header] = json.dumps(value, separators=(",", ":"))


def _json(status: int, body: object, **headers: str) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store", **headers})


def oauth2_routes(auth: Auth) -> list[web.RouteDef]:
    """The built-in server's endpoints (`self` mode); none otherwise."""
    server, keys = auth.server, auth.keys
    if server is None or keys is None:
        return []

    async def token(request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        try:
            # Checking a secret hash is deliberately slow: keep it off the event loop.
            body = await asyncio.to_thread(
                server.token, form, request.headers.get("Authorization", "")
            )
        except OAuthError as error:
            extra = {"WWW-Authenticate": "Basic"} if error.status == 401 else {}
            return _json(error.status, error.body(), **extra)
        return _json(200, body)

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(keys.jwks())

    routes = [web.post(TOKEN_PATH, token), web.get(JWKS_PATH, jwks)]
    if auth.logins is not None:
        routes += login_routes(auth.logins)
    return routes


def _browser(outcome: Redirect | Page) -> web.Response:
    if isinstance(outcome, Redirect):
        return web.Response(status=302, headers={"Location": outcome.location})
    return web.Response(status=outcome.status, text=outcome.text)


def login_routes(logins: UserLogins) -> list[web.RouteDef]:
    """User logins through the login provider: browser steps and the device endpoint. Each may
    call the provider (blocking), so each runs in a thread."""

    def browser_step(
        step: Callable[[dict[str, str]], Redirect | Page],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            try:
                return _browser(await asyncio.to_thread(step, dict(request.rel_url.query)))
            except OAuthError as error:
                return web.Response(status=error.status, text=f"{error.error}: {error.description}")

        return serve

    async def device(request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        try:
            return _json(200, logins.device_authorize(form))
        except OAuthError as error:
            return _json(error.status, error.body())

    return [
        web.get(AUTHORIZE_PATH, browser_step(logins.authorize)),
        web.get(CALLBACK_PATH, browser_step(logins.callback)),
        web.get(VERIFY_PATH, browser_step(logins.device_verify)),
        web.post(DEVICE_PATH, device),
    ]
