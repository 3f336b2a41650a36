"""An external issuer's signing keys: fetched from its JWKS, cached, re-fetched on an unknown
key id (the issuer rotated), at most once per ``min_refresh_seconds`` so that tokens with made-up
key ids cannot make us hammer the issuer."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from jwt.algorithms import RSAAlgorithm

from flyteadmin.core.errors import AdminError, Code

FETCH_TIMEOUT_SECONDS = 10.0


def fetch_json(url: str) -> dict[str, Any]:
    """GET a JSON document; AdminError(UNAVAILABLE) when the provider cannot be read."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            data = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise AdminError(Code.UNAVAILABLE, f"cannot read {url}: {exc}") from None
    if not isinstance(data, dict):
        raise AdminError(Code.UNAVAILABLE, f"{url} did not return a JSON object")
    return data


def discover_jwks_url(issuer: str, fetch: Callable[[str], dict[str, Any]] = fetch_json) -> str:
    document = fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
    url = document.get("jwks_uri")
    if not isinstance(url, str) or not url:
        raise AdminError(Code.UNAVAILABLE, f"the issuer {issuer} publishes no jwks_uri")
    return url


class RemoteJwks:
    def __init__(
        self,
        url: str | Callable[[], str],
        *,
        min_refresh_seconds: float = 10.0,
        fetch: Callable[[str], dict[str, Any]] = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._fetch = fetch
        self._clock = clock
        self._min_refresh = min_refresh_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        url = self._url() if callable(self._url) else self._url
        keys: dict[str, Any] = {}
        for jwk in self._fetch(url).get("keys", []):
            if isinstance(jwk, dict) and jwk.get("kty") == "RSA" and jwk.get("use", "sig") == "sig":
                keys[str(jwk.get("kid", ""))] = RSAAlgorithm.from_jwk(jwk)
        self._keys = keys
        self._fetched_at = self._clock()

    def key_for(self, kid: str | None) -> Any:
        with self._lock:
            for attempt in range(2):
                if kid is None and len(self._keys) == 1:
                    return next(iter(self._keys.values()))
                if kid is not None and kid in self._keys:
                    return self._keys[kid]
                due = (
                    self._fetched_at is None
                    or self._clock() - self._fetched_at >= self._min_refresh
                )
                if attempt or not due:
                    break
                self._refresh()
        raise KeyError(kid)
