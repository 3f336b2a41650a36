"""Everything authentication needs, built once from the settings: the verifier both doors share,
the built-in server (`self` mode), and the documents of the anonymous metadata RPCs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flyteadmin.core.auth.client_secrets import check_hash_format
from flyteadmin.core.auth.jwks import RemoteJwks, discover_jwks_url, fetch_json
from flyteadmin.core.auth.keys import KeyRing
from flyteadmin.core.auth.login import OidcProvider, UserLogins
from flyteadmin.core.auth.server import AuthorizationServer
from flyteadmin.core.auth.tokens import LocalKeys, TokenIssuer, Verifier
from flyteadmin.core.config import AuthSettings, ConfigError, Settings

MODES = ("off", "self", "external")
AUTHORIZATION_MODES = ("off", "kubernetes")
# How long the external provider's metadata document is reused.
METADATA_CACHE_SECONDS = 300.0


def secret_path(settings: AuthSettings, name: str) -> Path:
    return Path(settings.secrets_dir) / name  # an absolute name stays as it is


def public_url(settings: Settings) -> str:
    if settings.auth.public_url:
        return settings.auth.public_url.rstrip("/")
    server = settings.server
    host = "127.0.0.1" if server.host in ("", "0.0.0.0", "::") else server.host
    return f"http://{host}:{server.http_port}"


def load_clients(settings: AuthSettings) -> dict[str, str]:
    """Client id -> hashed secret: the clients file (a mounted Secret) overlaid by `clients`."""
    clients: dict[str, str] = {}
    path = secret_path(settings, settings.clients_file) if settings.clients_file else None
    if path is not None and path.is_file():
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of client id to hashed secret")
        clients.update({str(k): str(v) for k, v in loaded.items()})
    clients.update(settings.clients)
    for client_id, hashed in clients.items():
        try:
            check_hash_format(hashed)
        except ValueError as exc:
            raise ConfigError(f"auth client {client_id!r}: {exc}") from None
    return clients


@dataclass
class Auth:
    settings: AuthSettings
    public_url: str
    verifier: Verifier
    server: AuthorizationServer | None = None  # `self` mode only
    keys: KeyRing | None = None  # `self` mode only
    logins: UserLogins | None = None  # `self` mode with a login provider

    def __post_init__(self) -> None:
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def blocking(self) -> bool:
        """Whether verifying may do network I/O (a JWKS fetch): callers then use a thread."""
        return self.server is None

    @property
    def authorization_on(self) -> bool:
        return self.settings.authorization == "kubernetes"

    def public_client_config(self) -> dict[str, Any]:
        s = self.settings
        return {
            "client_id": s.public_client_id,
            "redirect_uri": s.redirect_uri,
            "scopes": list(s.scopes),
            "authorization_metadata_key": s.header,
            "audience": s.client_audience,
        }

    def oauth2_metadata(self) -> dict[str, Any]:
        """RFC 8414 metadata: ours, or the external provider's (cached; may block)."""
        if self.server is not None:
            return self.server.metadata(self.public_url)
        with self._lock:
            now = time.monotonic()
            if self._metadata is None or now - self._metadata[0] > METADATA_CACHE_SECONDS:
                url = self.settings.metadata_url or (
                    self.settings.issuer.rstrip("/") + "/.well-known/oauth-authorization-server"
                )
                self._metadata = (now, fetch_json(url))
            return self._metadata[1]


def user_logins(s: AuthSettings, tokens: TokenIssuer, url: str) -> UserLogins:
    if not s.login_client_id:
        raise ConfigError("auth.login_client_id is required with auth.login_issuer")
    secret_file = secret_path(s, s.login_client_secret_file)
    if not secret_file.is_file():
        raise ConfigError(f"auth.login_client_secret_file: {secret_file} is missing")
    provider = OidcProvider(
        s.login_issuer, s.login_client_id, secret_file.read_text().strip(), s.login_scopes
    )
    return UserLogins(tokens, provider, s, url)


def build_auth(settings: Settings) -> Auth | None:
    """None when authentication is off; ConfigError for settings that cannot work."""
    s = settings.auth
    if s.mode not in MODES:
        raise ConfigError(f"auth.mode: expected one of {list(MODES)}, got {s.mode!r}")
    if s.authorization not in AUTHORIZATION_MODES:
        raise ConfigError(
            f"auth.authorization: expected one of {list(AUTHORIZATION_MODES)}, "
            f"got {s.authorization!r}"
        )
    if s.mode == "off":
        if s.authorization != "off":
            raise ConfigError("auth.authorization needs auth.mode self or external")
        return None
    url = public_url(settings)
    if s.mode == "self":
        ring = KeyRing.load(
            secret_path(s, s.signing_key_file),
            secret_path(s, s.old_signing_key_file) if s.old_signing_key_file else None,
        )
        issuer = s.issuer or url
        audience = s.audiences[0] if s.audiences else issuer
        tokens = TokenIssuer(
            ring, issuer=issuer, audience=audience, lifetime_seconds=s.token_lifetime_seconds
        )
        verifier = Verifier(
            LocalKeys(ring),
            issuer=issuer,
            audiences=(*s.audiences, issuer, url),
            required_scope=s.required_scope,
        )
        logins = user_logins(s, tokens, url) if s.login_issuer else None
        server = AuthorizationServer(tokens, load_clients(s), logins)
        return Auth(s, url, verifier, server, ring, logins)
    if not s.issuer:
        raise ConfigError("auth.issuer is required with auth.mode external")
    jwks = RemoteJwks(s.jwks_url or (lambda: discover_jwks_url(s.issuer)))
    verifier = Verifier(
        jwks, issuer=s.issuer, audiences=(*s.audiences, url), required_scope=s.required_scope
    )
    return Auth(s, url, verifier)
