"""Hashed client secrets: ``pbkdf2-sha256$<iterations>$<salt>$<hash>`` (salt and hash base64url).

The standard library's PBKDF2 keeps the core free of a native hashing dependency; a secret is
checked once per token request, so the deliberate slowness costs little.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCHEME = "pbkdf2-sha256"
ITERATIONS = 200_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def check_hash_format(hashed: str) -> None:
    """Raise ValueError unless ``hashed`` is a hash this module wrote (checked at start-up)."""
    parts = hashed.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit():
        raise ValueError(f"not a {SCHEME} hash (expected {SCHEME}$<iterations>$<salt>$<hash>)")
    _unb64(parts[2]), _unb64(parts[3])


def verify_secret(secret: str, hashed: str) -> bool:
    try:
        scheme, iterations, salt, expected = hashed.split("$")
        if scheme != SCHEME:
            return False
        digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), _unb64(salt), int(iterations))
        return hmac.compare_digest(digest, _unb64(expected))
    except ValueError:
        return False
