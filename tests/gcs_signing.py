"""A V4 signed-URL verifier for the tests.

The GCS emulators accept any signature, expiry, method and headers, so a signing bug would pass
silently (reference/k8s-testbed.md §5). This rebuilds, from GCS's V4 specification, what GCS
checks: the canonical request (method, path, sorted query without X-Goog-Signature, the signed
headers as the client sends them, UNSIGNED-PAYLOAD), the GOOG4-RSA-SHA256 string to sign, the
RSA PKCS#1 v1.5 SHA-256 signature under the service account's public key, and the validity
window X-Goog-Date + X-Goog-Expires.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHM = "GOOG4-RSA-SHA256"
MAX_EXPIRES = 7 * 24 * 3600
CLOCK_SKEW = timedelta(minutes=5)  # a URL dated slightly in the future is still accepted


class SignatureRejected(AssertionError):
    pass


def _reject(reason: str) -> SignatureRejected:
    return SignatureRejected(f"signed URL rejected: {reason}")


def verify_v4(
    url: str,
    *,
    method: str,
    headers: Mapping[str, str],
    credentials_file: str | Path,
    now: datetime | None = None,
) -> None:
    """Raise ``SignatureRejected`` unless GCS would accept ``method url`` sent with ``headers``
    (Host is taken from the URL) at ``now``, signed by the key in ``credentials_file``."""
    info = json.loads(Path(credentials_file).read_text())
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    params = dict(pairs)
    if len(params) != len(pairs):
        raise _reject("a query parameter is repeated")
    try:
        signature = bytes.fromhex(params.pop("X-Goog-Signature"))
        algorithm = params["X-Goog-Algorithm"]
        email, _, scope = params["X-Goog-Credential"].partition("/")
        date = params["X-Goog-Date"]
        expires = int(params["X-Goog-Expires"])
        signed_names = params["X-Goog-SignedHeaders"].split(";")
        signed_at = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError) as exc:
        raise _reject(f"malformed V4 query: {exc}") from exc

    if algorithm != ALGORITHM:
        raise _reject(f"algorithm {algorithm}")
    if email != info["client_email"]:
        raise _reject(f"signed by {email}, not {info['client_email']}")
    if scope != f"{date[:8]}/auto/storage/goog4_request":
        raise _reject(f"credential scope {scope}")
    if not 1 <= expires <= MAX_EXPIRES:
        raise _reject(f"X-Goog-Expires {expires}")
    now = now or datetime.now(UTC)
    if now < signed_at - CLOCK_SKEW:
        raise _reject("dated in the future")
    if now > signed_at + timedelta(seconds=expires):
        raise _reject("expired")

    sent = {k.lower(): v for k, v in headers.items()}
    sent.setdefault("host", parts.netloc)
    if "host" not in signed_names or signed_names != sorted(set(signed_names)):
        raise _reject(f"signed headers {signed_names}")
    for name in signed_names:
        if name not in sent:
            raise _reject(f"signed header {name} is not sent")
    canonical_headers = "".join(f"{n}:{' '.join(sent[n].split())}\n" for n in signed_names)
    canonical_query = "&".join(
        sorted(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in params.items())
    )
    payload = sent["x-goog-content-sha256"] if "x-goog-content-sha256" in signed_names else None
    canonical_request = "\n".join(
        [
            method.upper(),
            parts.path,
            canonical_query,
            canonical_headers,
            ";".join(signed_names),
            payload or "UNSIGNED-PAYLOAD",
        ]
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = "\n".join([ALGORITHM, date, scope, digest])
    try:
        public_key(credentials_file).verify(
            signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature as exc:
        raise _reject("bad signature") from exc


def public_key(credentials_file: str | Path) -> rsa.RSAPublicKey:
    """The public half of a service-account JSON key (GCS would use the account's certificate)."""
    info = json.loads(Path(credentials_file).read_text())
    key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key()
