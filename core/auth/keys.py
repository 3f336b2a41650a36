"""RSA signing keys and their public JWKS.

A key's id (``kid``) is its RFC 7638 thumbprint, so it follows the key material: a rotated key
gets a new id without anyone choosing one, and the same PEM always yields the same id.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The public JWK with its thumbprint as ``kid``, for signature ``RS256``."""
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    required = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}  # RFC 7638: members in order
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    kid = _b64url(hashlib.sha256(canonical).digest())
    return {**required, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the token signing key must be an RSA private key")
        return cls(key, public_jwk(key.public_key())["kid"])

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()


def generate_pem(bits: int = 2048) -> bytes:
    """A new RSA private key as PKCS#1 PEM (the format flyteadmin's `token_rsa_key.pem` has)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class KeyRing:
    """The current key (signs) and the previous one, if any (still verifies)."""

    current: SigningKey
    previous: SigningKey | None = None

    @classmethod
    def load(cls, current: Path, previous: Path | None = None) -> KeyRing:
        if not current.is_file():
            raise FileNotFoundError(f"token signing key {current} is missing")
        old = None
        if previous is not None and previous.is_file():
            old = SigningKey.from_pem(previous.read_bytes())
        return cls(SigningKey.from_pem(current.read_bytes()), old)

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k.public_key) for k in self.keys]}

    def public_keys(self) -> dict[str, rsa.RSAPublicKey]:
        return {k.kid: k.public_key for k in self.keys}
