"""User logins for the built-in server (`self` mode), delegated to an OpenID Connect provider:
the authorization-code flow with PKCE (flytekit's `Pkce`), refresh tokens, and the device flow
(`DeviceFlow`).

The provider authenticates the person; we then issue our own tokens for them. Authorization
codes, refresh tokens and the login state carried through the provider are stateless: JWTs
signed with our key, each kind with its own audience so that none passes for an access token or
for another kind. Pending device logins are kept in memory (one API server replica, or a
sticky route for the device endpoints).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import jwt

from flyteadmin.core.auth.jwks import RemoteJwks, fetch_json
from flyteadmin.core.auth.keys import KeyRing
from flyteadmin.core.auth.server import DEVICE_GRANT, OAuthError, requested_scopes
from flyteadmin.core.auth.tokens import ALGORITHM, LEEWAY_SECONDS, LocalKeys, TokenIssuer
from flyteadmin.core.config import AuthSettings

AUTHORIZE_PATH = "/oauth2/authorize"
CALLBACK_PATH = "/callback"
DEVICE_PATH = "/oauth2/device/authorize"
VERIFY_PATH = "/oauth2/device/verify"
CODE_LIFETIME_SECONDS = 300
LOGIN_LIFETIME_SECONDS = 600
DEVICE_POLL_SECONDS = 5
PROFILE = ("name", "preferred_username", "given_name", "family_name", "email", "picture")
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words, no look-alikes


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def loopback(uri: str) -> bool:
    """RFC 8252 §7.3: native clients listen on a loopback address, any port."""
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")


class Artifacts:
    """Sealed (signed) grants: authorization codes, refresh tokens, login states."""

    def __init__(self, ring: KeyRing, issuer: str) -> None:
        self.ring = ring
        self.keys = LocalKeys(ring)
        self.issuer = issuer

    def seal(self, kind: str, claims: Mapping[str, Any], lifetime: int) -> str:
        now = int(time.time())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": f"{self.issuer}#{kind}",
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(8),
        }
        key = self.ring.current
        return jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

    def open(self, kind: str, token: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            return jwt.decode(
                token,
                self.keys.key_for(kid if isinstance(kid, str) else None),
                algorithms=[ALGORITHM],
                audience=f"{self.issuer}#{kind}",
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
            )
        except jwt.PyJWTError as exc:
            raise OAuthError(400, "invalid_grant", f"invalid or expired {kind}: {exc}") from None


def _post_form(url: str, form: Mapping[str, str], client_id: str, secret: str) -> dict[str, Any]:
    basic = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=urlencode(form).encode(),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            found: dict[str, Any] = json.loads(response.read())
            return found
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise OAuthError(502, "server_error", f"the login provider refused: {detail}") from None
    except (OSError, ValueError) as exc:
        raise OAuthError(502, "server_error", f"the login provider is unreachable: {exc}") from None


class OidcProvider:
    """The OpenID Connect provider people log in with (discovery, code exchange, ID tokens)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: tuple[str, ...],
        fetch: Callable[[str], dict[str, Any]] = fetch_json,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self._fetch = fetch
        self._document: dict[str, Any] | None = None
        self._jwks = RemoteJwks(lambda: self.document()["jwks_uri"], fetch=fetch)

    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = self._fetch(self.issuer + "/.well-known/openid-configuration")
        return self._document

    def login_url(self, redirect_uri: str, state: str, nonce: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.scopes),
                "state": state,
                "nonce": nonce,
            }
        )
        return f"{self.document()['authorization_endpoint']}?{query}"

    def exchange(self, code: str, redirect_uri: str, nonce: str) -> dict[str, Any]:
        """The verified ID token claims for an authorization code of the provider."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        answer = _post_form(
            self.document()["token_endpoint"], form, self.client_id, self.client_secret
        )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise OAuthError(502, "server_error", "the login provider returned no id_token")
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
            claims = jwt.decode(
                id_token,
                self._jwks.key_for(kid if isinstance(kid, str) else None),
                algorithms=[ALGORITHM],
                audience=self.client_id,
                issuer=self.document().get("issuer", self.issuer),
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except (jwt.PyJWTError, KeyError) as exc:
            raise OAuthError(502, "server_error", f"invalid id_token: {exc!r}") from None
        if claims.get("nonce") != nonce:
            raise OAuthError(400, "invalid_request", "the login does not match its request")
        return claims


@dataclass
class _DeviceLogin:
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    user: dict[str, Any] | None = None
    last_poll: float = 0.0


@dataclass
class DeviceLogins:
    """Pending device-flow logins, in memory."""

    lifetime: float
    _by_device: dict[str, _DeviceLogin] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, client_id: str, scopes: tuple[str, ...]) -> tuple[str, str]:
        now = time.monotonic()
        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
        with self._lock:
            self._by_device = {k: v for k, v in self._by_device.items() if v.expires_at > now}
            self._by_device[device_code] = _DeviceLogin(
                user_code, client_id, scopes, now + self.lifetime
            )
        return device_code, user_code

    def pending(self, user_code: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(
                v.user_code == user_code and v.user is None and v.expires_at > now
                for v in self._by_device.values()
            )

    def approve(self, user_code: str, user: dict[str, Any]) -> bool:
        now = time.monotonic()
        with self._lock:
            for login in self._by_device.values():
                if login.user_code == user_code and login.user is None and login.expires_at > now:
                    login.user = user
                    return True
        return False

    def poll(self, device_code: str, client_id: str) -> _DeviceLogin:
        now = time.monotonic()
        with self._lock:
            login = self._by_device.get(device_code)
            if login is None or login.client_id != client_id:
                raise OAuthError(400, "invalid_grant", "unknown device code")
            if login.expires_at <= now:
                del self._by_device[device_code]
                raise OAuthError(400, "expired_token", "the device code has expired")
            if login.user is None:
                login.last_poll = now
                raise OAuthError(400, "authorization_pending", "the user has not logged in yet")
            del self._by_device[device_code]  # a device code yields tokens once
            return login


@dataclass(frozen=True)
class Redirect:
    location: str


@dataclass(frozen=True)
class Page:
    status: int
    text: str


class UserLogins:
    def __init__(
        self,
        tokens: TokenIssuer,
        provider: OidcProvider,
        settings: AuthSettings,
        public_url: str,
    ) -> None:
        self.tokens = tokens
        self.provider = provider
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self.artifacts = Artifacts(tokens.ring, tokens.issuer)
        self.devices = DeviceLogins(settings.device_code_lifetime_seconds)

    def metadata(self) -> dict[str, Any]:
        return {
            "authorization_endpoint": self.public_url + AUTHORIZE_PATH,
            "device_authorization_endpoint": self.public_url + DEVICE_PATH,
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }

    # ---- the browser side

    def _public_client(self, client_id: str) -> None:
        if client_id != self.settings.public_client_id:
            raise OAuthError(400, "invalid_client", f"unknown public client {client_id!r}")

    def authorize(self, params: Mapping[str, str]) -> Redirect:
        """GET /oauth2/authorize: check the client's request, then send the browser to log in."""
        self._public_client(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri != self.settings.redirect_uri and not loopback(redirect_uri):
            raise OAuthError(400, "invalid_request", f"redirect_uri {redirect_uri!r} not allowed")
        if params.get("response_type") != "code":
            raise OAuthError(400, "unsupported_response_type", "only response_type=code")
        challenge = params.get("code_challenge", "")
        if not challenge or params.get("code_challenge_method") != "S256":
            raise OAuthError(400, "invalid_request", "PKCE with code_challenge_method=S256 needed")
        state = {
            "flow": "code",
            "client_id": params["client_id"],
            "redirect_uri": redirect_uri,
            "challenge": challenge,
            "state": params.get("state", ""),
            "scopes": list(requested_scopes(params.get("scope", ""))),
        }
        return self._login(state)

    def device_verify(self, params: Mapping[str, str]) -> Redirect | Page:
        """GET /oauth2/device/verify?user_code=...: the person logs in for that device."""
        user_code = params.get("user_code", "").strip().upper()
        if not self.devices.pending(user_code):
            return Page(400, "Unknown or expired code. Start the login again on your device.")
        return self._login({"flow": "device", "user_code": user_code})

    def _login(self, state: dict[str, Any]) -> Redirect:
        nonce = secrets.token_urlsafe(16)
        sealed = self.artifacts.seal("login", {**state, "nonce": nonce}, LOGIN_LIFETIME_SECONDS)
        return Redirect(self.provider.login_url(self.public_url + CALLBACK_PATH, sealed, nonce))

    def callback(self, params: Mapping[str, str]) -> Redirect | Page:
        """GET /callback from the provider: who logged in; then back to the client."""
        if "error" in params:
            return Page(401, f"Login failed: {params.get('error_description') or params['error']}")
        state = self.artifacts.open("login", params.get("state", ""))
        claims = self.provider.exchange(
            params.get("code", ""), self.public_url + CALLBACK_PATH, state["nonce"]
        )
        user = self._user(claims)
        if state["flow"] == "device":
            if not self.devices.approve(state["user_code"], user):
                return Page(400, "This device login has expired. Start again on your device.")
            return Page(200, "You are logged in. Return to your device; you may close this page.")
        code = self.artifacts.seal(
            "code",
            {
                "user": user,
                "client_id": state["client_id"],
                "redirect_uri": state["redirect_uri"],
                "challenge": state["challenge"],
                "scopes": state["scopes"],
            },
            CODE_LIFETIME_SECONDS,
        )
        query = urlencode({"code": code, "state": state["state"]})
        separator = "&" if "?" in state["redirect_uri"] else "?"
        return Redirect(state["redirect_uri"] + separator + query)

    def _user(self, claims: Mapping[str, Any]) -> dict[str, Any]:
        """What our tokens say about a person: subject, profile, and groups (for RBAC)."""
        user: dict[str, Any] = {"sub": str(claims["sub"])}
        user["user_info"] = {k: claims[k] for k in PROFILE if isinstance(claims.get(k), str)}
        groups_claim = self.settings.groups_claim
        if groups_claim and groups_claim in claims:
            user["groups"] = claims[groups_claim]
        return user

    # ---- the token endpoint

    def device_authorize(self, form: Mapping[str, str]) -> dict[str, Any]:
        """POST /oauth2/device/authorize (RFC 8628 §3.1)."""
        self._public_client(form.get("client_id", ""))
        scopes = requested_scopes(form.get("scope", ""))
        device_code, user_code = self.devices.start(form["client_id"], scopes)
        uri = self.public_url + VERIFY_PATH
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": uri,
            "verification_uri_complete": f"{uri}?user_code={user_code}",
            "expires_in": self.settings.device_code_lifetime_seconds,
            "interval": DEVICE_POLL_SECONDS,
        }

    def token(self, grant: str, form: Mapping[str, str]) -> dict[str, Any]:
        client_id = form.get("client_id", "")
        self._public_client(client_id)
        if grant == "authorization_code":
            code = self.artifacts.open("code", form.get("code", ""))
            if code["client_id"] != client_id or code["redirect_uri"] != form.get("redirect_uri"):
                raise OAuthError(400, "invalid_grant", "the code was issued for another client")
            if pkce_challenge(form.get("code_verifier", "")) != code["challenge"]:
                raise OAuthError(400, "invalid_grant", "code_verifier does not match")
            return self._tokens(code["user"], client_id, tuple(code["scopes"]))
        if grant == "refresh_token":
            refresh = self.artifacts.open("refresh", form.get("refresh_token", ""))
            if refresh["client_id"] != client_id:
                raise OAuthError(400, "invalid_grant", "the refresh token is another client's")
            return self._tokens(refresh["user"], client_id, tuple(refresh["scopes"]))
        if grant == DEVICE_GRANT:
            login = self.devices.poll(form.get("device_code", ""), client_id)
            assert login.user is not None
            return self._tokens(login.user, client_id, login.scopes)
        raise OAuthError(400, "unsupported_grant_type", f"grant type {grant!r} is not served")

    def _tokens(
        self, user: dict[str, Any], client_id: str, scopes: tuple[str, ...]
    ) -> dict[str, Any]:
        extra = {self.settings.groups_claim: user["groups"]} if "groups" in user else {}
        access = self.tokens.issue(
            subject=user["sub"],
            client_id=client_id,
            scopes=scopes,
            user_info=user.get("user_info"),
            extra=extra,
        )
        refresh = self.artifacts.seal(
            "refresh",
            {"user": user, "client_id": client_id, "scopes": list(scopes)},
            self.settings.refresh_token_lifetime_seconds,
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.tokens.lifetime_seconds,
            "refresh_token": refresh,
            "scope": " ".join(scopes),
        }
