"""The built-in authorization server (`self` mode): the client-credentials token endpoint and the
RFC 8414 metadata. Transport-free: the HTTP door hands in the form and the Authorization header
and turns an ``OAuthError`` into the JSON error body RFC 6749 §5.2 describes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus

from flyteadmin.core.auth.client_secrets import verify_secret
from flyteadmin.core.auth.tokens import TokenIssuer

TOKEN_PATH = "/oauth2/token"
JWKS_PATH = "/oauth2/jwks"
GRANTS = ("client_credentials",)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Served by user logins (core.auth.login) when a login provider is configured.
USER_GRANTS = ("authorization_code", "refresh_token", DEVICE_GRANT)
DEFAULT_SCOPES = ("all",)


@dataclass
class OAuthError(Exception):
    status: int
    error: str
    description: str

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(client id, secret) from `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749
    §2.3.1; flytekit URL-encodes the secret, so `s3cr3t/+=` arrives as `s3cr3t%2F%2B%3D`)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def requested_scopes(text: str) -> tuple[str, ...]:
    # Granted as asked, like flyteadmin; its `f.` prefix (for some IdPs) is dropped.
    scopes = tuple(dict.fromkeys(s.removeprefix("f.") for s in text.split() if s))
    return scopes or DEFAULT_SCOPES


class UserGrants(Protocol):
    def metadata(self) -> dict[str, Any]: ...
    def token(self, grant: str, form: Mapping[str, str]) -> dict[str, Any]: ...


class AuthorizationServer:
    def __init__(
        self, tokens: TokenIssuer, clients: Mapping[str, str], logins: UserGrants | None = None
    ) -> None:
        self.tokens = tokens
        self.clients = dict(clients)  # client id -> hashed secret
        self.logins = logins

    def metadata(self, public_url: str) -> dict[str, Any]:
        base = public_url.rstrip("/")
        document: dict[str, Any] = {
            "issuer": self.tokens.issuer,
            "token_endpoint": base + TOKEN_PATH,
            "jwks_uri": base + JWKS_PATH,
            "response_types_supported": ["token"],
            "grant_types_supported": list(GRANTS),
            "scopes_supported": list(DEFAULT_SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }
        if self.logins is not None:
            document.update(self.logins.metadata())
            document["grant_types_supported"] += list(USER_GRANTS)
            document["token_endpoint_auth_methods_supported"].append("none")  # public clients
        return document

    def _client(self, form: Mapping[str, str], authorization: str) -> str:
        credentials = basic_credentials(authorization) if authorization else None
        if credentials is None and "client_secret" in form:  # client_secret_post
            credentials = (form.get("client_id", ""), form["client_secret"])
        if credentials is None:
            raise OAuthError(401, "invalid_client", "client authentication is required")
        client_id, secret = credentials
        hashed = self.clients.get(client_id)
        if hashed is None or not verify_secret(secret, hashed):
            raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
        return client_id

    def token(self, form: Mapping[str, str], authorization: str = "") -> dict[str, Any]:
        """The token response for a token request, or OAuthError."""
        grant = form.get("grant_type", "")
        if not grant:
            raise OAuthError(400, "invalid_request", "grant_type is required")
        if grant in USER_GRANTS and self.logins is not None:
            return self.logins.token(grant, form)  # public clients: no client secret
        client_id = self._client(form, authorization)
        if grant not in GRANTS:
            raise OAuthError(400, "unsupported_grant_type", f"grant type {grant!r} is not served")
        scopes = requested_scopes(form.get("scope", ""))
        token = self.tokens.issue(subject=client_id, client_id=client_id, scopes=scopes)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.tokens.lifetime_seconds,
            "scope": " ".join(scopes),
        }
