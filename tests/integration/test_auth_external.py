"""`external` mode against a stand-in OpenID Connect provider on 127.0.0.1 (a plain HTTP server
publishing discovery, metadata and JWKS documents): tokens it signs are accepted through both
doors, its metadata is what GetOAuth2Metadata returns, and foreign tokens are refused."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import jwt
import pytest
from flyteidl.admin import version_pb2
from flyteidl.service import (
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
)

from flyteadmin.core.auth.keys import SigningKey, generate_pem, public_jwk
from flyteadmin.core.config import AuthSettings, Settings
from tests.integration.conftest import running_api_server
from tests.integration.test_auth_api import http

AUDIENCE = "flyte-api"


class Provider:
    """Serves the documents of an OpenID Connect provider at http://127.0.0.1:<port>."""

    def __init__(self) -> None:
        self.key = SigningKey.from_pem(generate_pem())
        self.requests: list[str] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                provider.requests.append(self.path)
                body = provider.documents().get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body or {"error": "not found"}).encode())

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def documents(self) -> dict[str, dict]:
        return {
            "/.well-known/openid-configuration": {
                "issuer": self.url,
                "jwks_uri": self.url + "/keys",
            },
            "/.well-known/oauth-authorization-server": {
                "issuer": self.url,
                "token_endpoint": self.url + "/token",
                "authorization_endpoint": self.url + "/authorize",
                "jwks_uri": self.url + "/keys",
                "grant_types_supported": ["client_credentials", "authorization_code"],
                "claims_supported": ["sub"],  # not in the proto: dropped
            },
            "/keys": {"keys": [public_jwk(self.key.public_key)]},
        }

    def token(self, key: SigningKey | None = None, **overrides) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "aud": AUDIENCE, "sub": "00u1", "iat": now, "exp": now + 300}
        claims.update(email="ann@example.com", name="Ann", scope="all openid", cid="cli")
        claims.update(overrides)
        key = key or self.key
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    p.thread.start()
    try:
        yield p
    finally:
        p.server.shutdown()
        p.server.server_close()


@pytest.fixture
def server(settings: Settings, provider: Provider):
    auth = AuthSettings(mode="external", issuer=provider.url, audiences=(AUDIENCE,))
    with running_api_server(dataclasses.replace(settings, auth=auth)) as api_server:
        yield api_server


def test_provider_tokens_are_accepted_and_foreign_ones_refused(server, provider):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        metadata = auth_pb2_grpc.AuthMetadataServiceStub(channel).GetOAuth2Metadata(
            auth_pb2.OAuth2MetadataRequest()
        )
        assert metadata.token_endpoint == provider.url + "/token"
        assert list(metadata.grant_types_supported) == ["client_credentials", "authorization_code"]

        md = [("flyte-authorization", "Bearer " + provider.token())]
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        assert admin.GetVersion(version_pb2.GetVersionRequest(), metadata=md).control_plane_version
        me = identity_pb2_grpc.IdentityServiceStub(channel).UserInfo(
            identity_pb2.UserInfoRequest(), metadata=md
        )
        assert (me.subject, me.email, me.name) == ("00u1", "ann@example.com", "Ann")
        assert me.additional_claims["cid"] == "cli"

        foreign = SigningKey.from_pem(generate_pem())
        for bad in (
            provider.token(
                key=foreign
            ),  # unknown kid: re-fetched at most every 10 s, still unknown
            provider.token(aud="someone-else"),
            provider.token(scope="openid"),
            provider.token(iss="http://127.0.0.1:1"),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                admin.GetVersion(
                    version_pb2.GetVersionRequest(), metadata=[("authorization", "Bearer " + bad)]
                )
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The keys were found through the issuer's openid-configuration (no jwks_url configured).
    assert {"/.well-known/openid-configuration", "/keys"} <= set(provider.requests)

    status, _, body = http(
        server, "GET", "/me", headers={"authorization": "Bearer " + provider.token()}
    )
    assert status == 200 and body["subject"] == "00u1"
    status, _, _ = http(
        server, "GET", "/me", headers={"authorization": "Bearer " + provider.token(exp=1)}
    )
    assert status == 401
