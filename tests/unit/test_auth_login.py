"""The pieces of user logins that need no provider: PKCE, sealed grants, loopback redirect URIs
and pending device logins."""

from __future__ import annotations

import pytest
from flytekit.clients.auth.auth_client import _create_code_challenge, _generate_code_verifier

from flyteadmin.core.auth.keys import KeyRing, SigningKey, generate_pem
from flyteadmin.core.auth.login import Artifacts, DeviceLogins, loopback, pkce_challenge
from flyteadmin.core.auth.server import OAuthError

RING = KeyRing(SigningKey.from_pem(generate_pem()))


def test_pkce_challenge_matches_flytekits():
    for _ in range(5):
        verifier = _generate_code_verifier()
        assert pkce_challenge(verifier) == _create_code_challenge(verifier)


def test_sealed_grants_open_only_as_their_own_kind():
    artifacts = Artifacts(RING, "http://issuer")
    code = artifacts.seal("code", {"user": {"sub": "a"}}, 60)
    assert artifacts.open("code", code)["user"] == {"sub": "a"}
    with pytest.raises(OAuthError) as caught:
        artifacts.open("refresh", code)
    assert caught.value.error == "invalid_grant"
    expired = artifacts.seal("code", {}, -120)
    with pytest.raises(OAuthError):
        artifacts.open("code", expired)
    other = Artifacts(KeyRing(SigningKey.from_pem(generate_pem())), "http://issuer")
    with pytest.raises(OAuthError):
        other.open("code", code)


@pytest.mark.parametrize(
    "uri, ok",
    [
        ("http://localhost:53593/callback", True),
        ("http://127.0.0.1:1234/cb", True),
        ("https://localhost/callback", False),
        ("http://evil.example.com/callback", False),
        ("http://localhost.evil.example.com/callback", False),
    ],
)
def test_loopback_redirects(uri, ok):
    assert loopback(uri) is ok


def test_device_logins():
    logins = DeviceLogins(lifetime=600)
    device_code, user_code = logins.start("flytectl", ("all",))
    assert len(user_code) == 8 and logins.pending(user_code)
    with pytest.raises(OAuthError) as caught:
        logins.poll(device_code, "flytectl")
    assert caught.value.error == "authorization_pending"
    with pytest.raises(OAuthError) as caught:
        logins.poll(device_code, "another-client")
    assert caught.value.error == "invalid_grant"
    assert not logins.approve("WRONGCOD", {"sub": "x"})
    assert logins.approve(user_code, {"sub": "ann"})
    assert not logins.pending(user_code)
    assert logins.poll(device_code, "flytectl").user == {"sub": "ann"}
    with pytest.raises(OAuthError):  # once only
        logins.poll(device_code, "flytectl")


def test_expired_device_login():
    logins = DeviceLogins(lifetime=-1)
    device_code, user_code = logins.start("flytectl", ("all",))
    assert not logins.approve(user_code, {"sub": "ann"})
    with pytest.raises(OAuthError) as caught:
        logins.poll(device_code, "flytectl")
    assert caught.value.error == "expired_token"
