"""Bearer tokens: signing (the built-in server) and verifying (every mode) RS256 JWTs.

Every rejection is UNAUTHENTICATED, never PERMISSION_DENIED: flytekit fetches a new token only
after UNAUTHENTICATED (or UNKNOWN), so an expired token must say so (clients.md §1.3).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt

from flyteadmin.core.auth.keys import KeyRing
from flyteadmin.core.errors import AdminError, Code

ALGORITHM = "RS256"
# Clock skew tolerated between us and whoever signed the token.
LEEWAY_SECONDS = 30.0


class Unauthenticated(AdminError):
    """UNAUTHENTICATED, with ``reason``: a fixed word for the auth failure metric (the message
    varies, e.g. it names the algorithm or the scope)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(Code.UNAUTHENTICATED, message)
        self.reason = reason


def unauthenticated(message: str, reason: str = "unauthenticated") -> AdminError:
    return Unauthenticated(message, reason)


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """`scp` (a list, or one space-separated string) and the RFC 9068 `scope` string."""
    found: set[str] = set()
    for name in ("scp", "scope"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(str(v) for v in value)
    return frozenset(found)


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: the token's subject, scopes and every claim."""

    subject: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()
    client_id: str = ""

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Identity:
        return cls(
            subject=str(claims.get("sub", "")),
            claims=dict(claims),
            scopes=scopes_of(claims),
            client_id=str(claims.get("client_id", "") or ""),
        )


class KeySource(Protocol):
    def key_for(self, kid: str | None) -> Any:
        """The public key for a token's `kid`; KeyError if there is none."""


class LocalKeys:
    """The built-in server's own keys: chosen by `kid`, else the current key."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._by_kid = ring.public_keys()

    def key_for(self, kid: str | None) -> Any:
        return self._by_kid.get(kid or "", self._ring.current.public_key)


# PyJWT's failure -> (reason, message).
_REASONS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid", "the token is not valid yet"),
    (
        jwt.InvalidAudienceError,
        "wrong_audience",
        "the token is not meant for this service (audience)",
    ),
    (jwt.InvalidIssuerError, "unknown_issuer", "the token comes from an unknown issuer"),
    (jwt.InvalidSignatureError, "bad_signature", "the token signature does not verify"),
    (jwt.MissingRequiredClaimError, "missing_claim", "the token lacks a required claim"),
)


class Verifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audiences: Iterable[str],
        required_scope: str = "all",
        leeway: float = LEEWAY_SECONDS,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audiences = sorted(set(a for a in audiences if a))
        self.required_scope = required_scope
        self.leeway = leeway

    def verify(self, token: str) -> Identity:
        """The caller behind ``token``; AdminError(UNAUTHENTICATED) for any bad token."""
        if not token:
            raise unauthenticated("missing bearer token", "missing_token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthenticated("malformed token", "malformed_token") from None
        if header.get("alg") != ALGORITHM:  # `none` and HMAC tricks stop here
            raise unauthenticated(
                f"unsupported token algorithm {header.get('alg')!r}", "unsupported_algorithm"
            )
        kid = header.get("kid") or header.get("key_id")
        try:
            key = self.keys.key_for(kid if isinstance(kid, str) else None)
        except KeyError:
            raise unauthenticated("the token is signed by an unknown key", "unknown_key") from None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            found = next((r for r in _REASONS if isinstance(exc, r[0])), None)
            if found is None:
                raise unauthenticated(f"invalid token: {exc}", "invalid_token") from None
            raise unauthenticated(found[2], found[1]) from None
        identity = Identity.from_claims(claims)
        # flyteadmin's rule: a token with neither scopes nor client_id counts as `all`.
        unscoped = not identity.scopes and not identity.client_id
        if self.required_scope and not unscoped and self.required_scope not in identity.scopes:
            raise unauthenticated(
                f"the token lacks the required scope {self.required_scope!r}", "missing_scope"
            )
        return identity


class TokenIssuer:
    """Signs the built-in server's access tokens with the current key."""

    def __init__(self, ring: KeyRing, *, issuer: str, audience: str, lifetime_seconds: int):
        self.ring = ring
        self.issuer = issuer
        self.audience = audience
        self.lifetime_seconds = lifetime_seconds

    def issue(
        self,
        *,
        subject: str,
        client_id: str,
        scopes: Iterable[str],
        user_info: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        # `extra` first (e.g. the groups of a user login, for RBAC): it cannot replace ours.
        claims: dict[str, Any] = dict(extra or {})
        claims.update(
            iss=self.issuer,
            aud=[self.audience],
            sub=subject,
            iat=issued,
            exp=issued + self.lifetime_seconds,
            jti=uuid.uuid4().hex,
            scp=list(scopes),
            client_id=client_id,
        )
        if user_info:
            claims["user_info"] = dict(user_info)
        key = self.ring.current
        # `kid` is the standard header; flyteadmin's own verifier reads `key_id`.
        headers = {"kid": key.kid, "key_id": key.kid}
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers=headers)
