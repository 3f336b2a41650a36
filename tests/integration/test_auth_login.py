"""User logins of the built-in server, delegated to an OpenID Connect provider (a stand-in on
127.0.0.1 that logs in one fixed person without asking): the authorization-code flow with PKCE,
refresh tokens and the device flow, driven over HTTP the way a browser and flytekit drive them,
then flytekit's own `Pkce` and `DeviceFlow` authenticators end to end."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from flyteidl.service import identity_pb2, identity_pb2_grpc

from flyteadmin.core.auth.keys import SigningKey, generate_pem, public_jwk
from flyteadmin.core.auth.login import pkce_challenge
from flyteadmin.core.config import AuthSettings, ServerSettings, Settings
from flyteadmin.devstack.processes import free_ports
from tests.integration.conftest import running_api_server
from tests.integration.test_auth_api import http

LOGIN_CLIENT, LOGIN_SECRET = "flyteadmin-at-idp", "idp-secret"
PERSON = {"sub": "00u-ann", "email": "ann@example.com", "name": "Ann", "groups": ["data"]}


class LoginProvider:
    """Discovery, /authorize (logs PERSON in at once), /token (code -> ID token), /keys."""

    def __init__(self) -> None:
        self.key = SigningKey.from_pem(generate_pem())
        self.codes: dict[str, dict[str, str]] = {}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict | None = None, location: str = "") -> None:
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body or {}).encode())

            def do_GET(self) -> None:  # noqa: N802
                path, _, query = self.path.partition("?")
                params = {k: v[0] for k, v in parse_qs(query).items()}
                if path == "/authorize":
                    assert params["client_id"] == LOGIN_CLIENT and params["response_type"] == "code"
                    code = secrets.token_urlsafe(8)
                    provider.codes[code] = params
                    target = (
                        params["redirect_uri"]
                        + "?"
                        + urlencode({"code": code, "state": params["state"]})
                    )
                    return self._send(302, location=target)
                document = provider.documents().get(path)
                self._send(200 if document else 404, document)

            def do_POST(self) -> None:  # noqa: N802
                form = {
                    k: v[0]
                    for k, v in parse_qs(
                        self.rfile.read(int(self.headers["Content-Length"])).decode()
                    ).items()
                }
                expected = (
                    "Basic " + base64.b64encode(f"{LOGIN_CLIENT}:{LOGIN_SECRET}".encode()).decode()
                )
                asked = provider.codes.pop(form.get("code", ""), None)
                if self.headers.get("Authorization") != expected or asked is None:
                    return self._send(400, {"error": "invalid_grant"})
                assert form["redirect_uri"] == asked["redirect_uri"]
                now = int(time.time())
                claims = {
                    **PERSON,
                    "iss": provider.url,
                    "aud": LOGIN_CLIENT,
                    "iat": now,
                    "exp": now + 60,
                    "nonce": asked["nonce"],
                }
                id_token = jwt.encode(
                    claims,
                    provider.key.private_key,
                    algorithm="RS256",
                    headers={"kid": provider.key.kid},
                )
                self._send(
                    200,
                    {"id_token": id_token, "access_token": "idp-opaque", "token_type": "Bearer"},
                )

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def documents(self) -> dict[str, dict]:
        return {
            "/.well-known/openid-configuration": {
                "issuer": self.url,
                "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token",
                "jwks_uri": self.url + "/keys",
            },
            "/keys": {"keys": [public_jwk(self.key.public_key)]},
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[LoginProvider]:
    p = LoginProvider()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def server(settings: Settings, provider: LoginProvider, tmp_path: Path):
    directory = tmp_path / "auth"
    directory.mkdir()
    (directory / "token_rsa_key.pem").write_bytes(generate_pem())
    (directory / "login_client_secret").write_text(LOGIN_SECRET + "\n")
    grpc_port, http_port, callback_port = free_ports(3)
    auth = AuthSettings(
        mode="self",
        secrets_dir=str(directory),
        login_issuer=provider.url,
        login_client_id=LOGIN_CLIENT,
        redirect_uri=f"http://localhost:{callback_port}/callback",
    )
    configured = dataclasses.replace(
        settings,
        server=ServerSettings(host="127.0.0.1", grpc_port=grpc_port, http_port=http_port),
        auth=auth,
    )
    with running_api_server(configured) as api_server:
        yield api_server


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browse(url: str, stop_at: str = "") -> tuple[int, str, str]:
    """A browser: follow redirects until one points under ``stop_at`` (not fetched).
    Returns (status, final URL or Location, body)."""
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(10):
        try:
            with opener.open(url, timeout=10) as response:
                return response.status, url, response.read().decode()
        except urllib.error.HTTPError as error:
            if error.code != 302:
                return error.code, url, error.read().decode()
            url = error.headers["Location"]
            if stop_at and url.startswith(stop_at):
                return 302, url, ""
    raise AssertionError("too many redirects")


def token_call(server, form: dict) -> tuple[int, dict]:
    status, _, body = http(server, "POST", "/oauth2/token", form=form)
    return status, body


def me(server, access_token: str) -> tuple[int, dict]:
    status, _, body = http(
        server, "GET", "/me", headers={"authorization": f"Bearer {access_token}"}
    )
    return status, body


def test_pkce_login_then_refresh(server):
    s = server.settings.auth
    status, _, metadata = http(server, "GET", "/.well-known/oauth-authorization-server")
    assert metadata["authorization_endpoint"].endswith("/oauth2/authorize")
    assert metadata["device_authorization_endpoint"].endswith("/oauth2/device/authorize")
    assert "authorization_code" in metadata["grant_types_supported"]

    verifier = secrets.token_urlsafe(40)
    query = {
        "client_id": s.public_client_id,
        "response_type": "code",
        "redirect_uri": s.redirect_uri,
        "scope": "all offline",
        "state": "client-state",
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    status, location, _ = browse(
        f"{metadata['authorization_endpoint']}?{urlencode(query)}", stop_at=s.redirect_uri
    )
    assert status == 302, location
    answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert answer["state"] == "client-state"
    exchange = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "client_id": s.public_client_id,
        "redirect_uri": s.redirect_uri,
    }
    # The code is bound to the PKCE verifier.
    status, body = token_call(server, {**exchange, "code_verifier": "wrong" * 10})
    assert (status, body["error"]) == (400, "invalid_grant")
    status, tokens = token_call(server, {**exchange, "code_verifier": verifier})
    assert status == 200, tokens
    assert tokens["scope"] == "all offline" and tokens["refresh_token"]

    status, user = me(server, tokens["access_token"])
    assert status == 200
    assert (user["subject"], user["email"], user["name"]) == ("00u-ann", "ann@example.com", "Ann")
    assert user["additional_claims"]["groups"] == ["data"]  # kept for RBAC group mapping
    # Codes and refresh tokens are not access tokens.
    assert me(server, answer["code"])[0] == 401
    assert me(server, tokens["refresh_token"])[0] == 401

    status, refreshed = token_call(
        server,
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": s.public_client_id,
        },
    )
    assert status == 200 and me(server, refreshed["access_token"])[1]["subject"] == "00u-ann"
    status, body = token_call(
        server,
        {
            "grant_type": "refresh_token",
            "refresh_token": answer["code"],
            "client_id": s.public_client_id,
        },
    )
    assert (status, body["error"]) == (400, "invalid_grant")


def test_authorize_refuses_bad_requests(server):
    s = server.settings.auth
    good = {
        "client_id": s.public_client_id,
        "response_type": "code",
        "redirect_uri": s.redirect_uri,
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    for change in (
        {"client_id": "someone"},
        {"redirect_uri": "https://evil.example.com/callback"},
        {"code_challenge_method": "plain"},
        {"response_type": "token"},
    ):
        status, _, text = browse(
            f"http://127.0.0.1:{server.http_port}/oauth2/authorize?{urlencode({**good, **change})}"
        )
        assert status == 400, (change, text)


def test_device_flow(server):
    s = server.settings.auth
    status, _, started = http(
        server,
        "POST",
        "/oauth2/device/authorize",
        form={"client_id": s.public_client_id, "scope": "all"},
    )
    assert status == 200, started
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": started["device_code"],
        "client_id": s.public_client_id,
    }
    status, body = token_call(server, poll)
    assert (status, body["error"]) == (400, "authorization_pending")
    # The person opens the verification URL (as flytekit prints it) and logs in.
    status, _, page = browse(f"{started['verification_uri']}?user_code={started['user_code']}")
    assert status == 200 and "logged in" in page
    status, tokens = token_call(server, poll)
    assert status == 200, tokens
    assert me(server, tokens["access_token"])[1]["subject"] == "00u-ann"
    # A device code yields tokens once.
    assert token_call(server, poll)[0] == 400
    status, _, page = browse(f"{started['verification_uri']}?user_code=NOPE")
    assert status == 400


@pytest.fixture
def no_keyring(monkeypatch):
    """flytekit keeps tokens in the system keyring: a null one here."""
    import keyring
    from keyring.backends.null import Keyring

    previous = keyring.get_keyring()
    keyring.set_keyring(Keyring())
    yield
    keyring.set_keyring(previous)


def test_flytekit_pkce_and_device_flow(server, no_keyring, monkeypatch, capsys):
    from flytekit.clients.raw import RawSynchronousFlyteClient
    from flytekit.configuration import AuthType, PlatformConfig

    def user_info(auth_mode: AuthType) -> str:
        cfg = PlatformConfig(
            endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True, auth_mode=auth_mode
        )
        client = RawSynchronousFlyteClient(cfg)
        channel = client._channel  # flytekit's channel, with its auth interceptor
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        return stub.UserInfo(identity_pb2.UserInfoRequest()).subject

    # Pkce: flytekit opens a browser on the authorize URL and listens on redirect_uri.
    monkeypatch.setattr(
        webbrowser,
        "open_new_tab",
        lambda url: threading.Thread(target=browse, args=(url,), daemon=True).start() or True,
    )
    assert user_info(AuthType.PKCE) == "00u-ann"

    # DeviceFlow: flytekit prints the verification URL and polls the token endpoint.
    result: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: result.update(subject=user_info(AuthType.DEVICEFLOW)), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 60
    url = None
    while url is None and time.monotonic() < deadline:
        found = re.search(
            r"(http://\S+/oauth2/device/verify\?user_code=[A-Z]+)", capsys.readouterr().out
        )
        url = found.group(1) if found else None
        time.sleep(0.1)
    assert url, "flytekit printed no verification URL"
    assert browse(url)[0] == 200
    thread.join(60)
    assert result.get("subject") == "00u-ann"
