"""Token logic of core.auth: keys and rotation, secret hashes, the verifier's rejections, the
external issuer's JWKS cache and the built-in token endpoint. ``bad_tokens`` is shared with the
integration test, which sends the same cases through both doors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from flyteadmin.core.auth.client_secrets import check_hash_format, hash_secret, verify_secret
from flyteadmin.core.auth.jwks import RemoteJwks
from flyteadmin.core.auth.keys import KeyRing, SigningKey, generate_pem, public_jwk
from flyteadmin.core.auth.server import (
    AuthorizationServer,
    OAuthError,
    basic_credentials,
    requested_scopes,
)
from flyteadmin.core.auth.tokens import Identity, LocalKeys, TokenIssuer, Verifier, scopes_of
from flyteadmin.core.errors import AdminError, Code

ISSUER = "http://127.0.0.1:8088"
AUDIENCE = ISSUER

KEY = SigningKey.from_pem(generate_pem())
OTHER = SigningKey.from_pem(generate_pem())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": [AUDIENCE],
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
        "scp": ["all"],
        "client_id": "alice",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: SigningKey = KEY, kid: str | None = None) -> str:
    return jwt.encode(payload, key.private_key, algorithm="RS256", headers={"kid": kid or key.kid})


def _unsigned(alg: str, payload: dict[str, Any], secret: bytes | None = None) -> str:
    head = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": KEY.kid}).encode())
    body = _b64(json.dumps(payload).encode())
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def bad_tokens(
    key: SigningKey = KEY, issuer: str = ISSUER, audience: str = AUDIENCE
) -> dict[str, str | None]:
    """Case name -> the whole `authorization` header value (None: no header at all)."""
    now = int(time.time())

    def good(**overrides: Any) -> dict[str, Any]:
        return claims(**{"iss": issuer, "aud": [audience], **overrides})

    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "missing": None,
        "not bearer": "Basic YWxpY2U6c2VjcmV0",
        "empty bearer": "Bearer ",
        "malformed": "Bearer not-a-jwt",
        "garbage segments": "Bearer aaa.bbb.ccc",
        "expired": "Bearer " + sign(good(iat=now - 7200, exp=now - 3600), key),
        "not yet valid": "Bearer " + sign(good(nbf=now + 3600), key),
        "issued in the future": "Bearer " + sign(good(iat=now + 3600), key),
        "wrongly signed": "Bearer " + sign(good(), OTHER, kid=key.kid),
        "alg none": "Bearer " + _unsigned("none", good()),
        "hs256 with the public key": "Bearer " + _unsigned("HS256", good(), public_pem),
        "wrong issuer": "Bearer " + sign(good(iss="https://evil.example.com"), key),
        "wrong audience": "Bearer " + sign(good(aud=["https://other.example.com"]), key),
        "no expiry": "Bearer " + sign(good(exp=None), key),
        "no subject": "Bearer " + sign(good(sub=None), key),
        "without the required scope": "Bearer " + sign(good(scp=["offline"]), key),
    }


def verifier(ring: KeyRing | None = None) -> Verifier:
    return Verifier(LocalKeys(ring or KeyRing(KEY)), issuer=ISSUER, audiences=[AUDIENCE])


@pytest.mark.parametrize("case", sorted(bad_tokens()))
def test_every_bad_token_is_unauthenticated(case):
    # A header that is not `Bearer` reaches the verifier as garbage (the doors reject it first).
    token = (bad_tokens()[case] or "").removeprefix("Bearer ")
    with pytest.raises(AdminError) as caught:
        verifier().verify(token)
    assert caught.value.code == Code.UNAUTHENTICATED
    assert caught.value.message


def test_reasons_name_the_problem():
    cases = bad_tokens()
    expected = {
        "expired": "expired",
        "not yet valid": "not valid yet",
        "wrongly signed": "signature",
        "alg none": "algorithm",
        "wrong issuer": "issuer",
        "wrong audience": "audience",
        "without the required scope": "scope",
    }
    for case, word in expected.items():
        with pytest.raises(AdminError) as caught:
            verifier().verify(cases[case].removeprefix("Bearer "))
        assert word in caught.value.message, (case, caught.value.message)


def test_a_good_token_gives_the_identity():
    identity = verifier().verify(sign(claims(email="a@example.com")))
    assert identity.subject == "alice"
    assert identity.client_id == "alice"
    assert identity.scopes == {"all"}
    assert identity.claims["email"] == "a@example.com"


def test_unscoped_token_without_client_id_counts_as_all():
    # flyteadmin's rule for tokens from IdPs that put no scopes in access tokens.
    identity = verifier().verify(sign(claims(scp=None, client_id=None)))
    assert identity.scopes == frozenset()


@pytest.mark.parametrize(
    "payload, scopes",
    [
        ({"scp": ["all", "offline"]}, {"all", "offline"}),
        ({"scp": "all offline"}, {"all", "offline"}),
        ({"scope": "all openid"}, {"all", "openid"}),
        ({}, set()),
    ],
)
def test_scopes_of(payload, scopes):
    assert scopes_of(payload) == scopes


def test_issued_tokens_verify_and_carry_the_reference_claims():
    ring = KeyRing(KEY)
    issuer = TokenIssuer(ring, issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=1800)
    token = issuer.issue(subject="svc", client_id="svc", scopes=["all"], user_info={"name": "S"})
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == KEY.kid == header["key_id"]
    identity = verifier(ring).verify(token)
    c = identity.claims
    assert c["iss"] == ISSUER and c["aud"] == [AUDIENCE] and c["sub"] == "svc"
    assert c["exp"] - c["iat"] == 1800 and c["scp"] == ["all"] and c["client_id"] == "svc"
    assert c["user_info"] == {"name": "S"} and c["jti"]


def test_rotation_old_key_still_verifies_new_tokens_use_the_new_key(tmp_path):
    old_pem, new_pem = generate_pem(), generate_pem()
    (tmp_path / "old.pem").write_bytes(old_pem)
    (tmp_path / "key.pem").write_bytes(old_pem)
    before = KeyRing.load(tmp_path / "key.pem")
    old_token = TokenIssuer(before, issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=60).issue(
        subject="a", client_id="a", scopes=["all"]
    )
    (tmp_path / "key.pem").write_bytes(new_pem)
    after = KeyRing.load(tmp_path / "key.pem", tmp_path / "old.pem")
    assert [k["kid"] for k in after.jwks()["keys"]] == [after.current.kid, before.current.kid]
    new_token = TokenIssuer(after, issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=60).issue(
        subject="a", client_id="a", scopes=["all"]
    )
    assert jwt.get_unverified_header(new_token)["kid"] == after.current.kid
    assert verifier(after).verify(old_token).subject == "a"
    assert verifier(after).verify(new_token).subject == "a"
    # Once the old key is removed, its tokens stop verifying.
    (tmp_path / "old.pem").unlink()
    with pytest.raises(AdminError) as caught:
        verifier(KeyRing.load(tmp_path / "key.pem", tmp_path / "old.pem")).verify(old_token)
    assert caught.value.code == Code.UNAUTHENTICATED


def test_missing_signing_key_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="signing key"):
        KeyRing.load(tmp_path / "absent.pem")


def test_kid_follows_the_key_material():
    pem = generate_pem()
    assert SigningKey.from_pem(pem).kid == SigningKey.from_pem(pem).kid
    assert KEY.kid != OTHER.kid
    jwk = public_jwk(KEY.public_key)
    assert jwk["kid"] == KEY.kid and (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    assert "d" not in jwk  # public members only


def test_secret_hashes():
    hashed = hash_secret("s3cr3t/+=", iterations=1000)
    check_hash_format(hashed)
    assert verify_secret("s3cr3t/+=", hashed)
    assert not verify_secret("s3cr3t", hashed)
    assert not verify_secret("x", "$2a$06$bcrypt-is-not-supported")
    assert hash_secret("a", iterations=1000) != hash_secret("a", iterations=1000)  # salted
    with pytest.raises(ValueError):
        check_hash_format("plain-text-secret")


# ------------------------------------------------------------------ external issuer's JWKS


class FakeIssuer:
    """A JWKS document in memory, counting fetches (the HTTP transport is tested elsewhere)."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0

    def fetch(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": [public_jwk(k.public_key) for k in self.keys]}


def test_jwks_is_cached_and_refetched_on_an_unknown_kid():
    issuer = FakeIssuer(KEY)
    now = [0.0]
    jwks = RemoteJwks(
        "http://idp/jwks", fetch=issuer.fetch, min_refresh_seconds=10, clock=lambda: now[0]
    )
    v = Verifier(jwks, issuer=ISSUER, audiences=[AUDIENCE])
    assert v.verify(sign(claims())).subject == "alice"
    assert v.verify(sign(claims())).subject == "alice"
    assert issuer.fetches == 1  # cached
    issuer.keys.append(OTHER)  # the issuer rotates: a token with a new kid appears
    now[0] = 11.0
    assert v.verify(sign(claims(), OTHER)).subject == "alice"
    assert issuer.fetches == 2


def test_unknown_kids_do_not_hammer_the_issuer():
    issuer = FakeIssuer(KEY)
    now = [0.0]
    jwks = RemoteJwks(
        "http://idp/jwks", fetch=issuer.fetch, min_refresh_seconds=10, clock=lambda: now[0]
    )
    v = Verifier(jwks, issuer=ISSUER, audiences=[AUDIENCE])
    v.verify(sign(claims()))
    for _ in range(5):
        with pytest.raises(AdminError) as caught:
            v.verify(sign(claims(), OTHER))
        assert caught.value.code == Code.UNAUTHENTICATED
        assert "unknown key" in caught.value.message
    assert issuer.fetches == 1


# ------------------------------------------------------------------ the token endpoint


def _basic(client_id: str, secret: str) -> str:
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def server() -> AuthorizationServer:
    tokens = TokenIssuer(KeyRing(KEY), issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=900)
    return AuthorizationServer(tokens, {"ci": hash_secret("s3cr3t/+=", iterations=1000)})


def test_client_credentials_with_url_encoded_basic_secret(server):
    # Exactly what flytekit sends (clients.md §3.3): the secret URL-encoded inside Basic.
    body = server.token(
        {"grant_type": "client_credentials", "scope": "all"}, _basic("ci", "s3cr3t/+=")
    )
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    identity = verifier().verify(body["access_token"])
    assert identity.subject == "ci" and identity.client_id == "ci" and identity.scopes == {"all"}


def test_client_secret_post_and_scope_prefix(server):
    form = {
        "grant_type": "client_credentials",
        "client_id": "ci",
        "client_secret": "s3cr3t/+=",
        "scope": "f.all offline",
    }
    body = server.token(form)
    assert body["scope"] == "all offline"


TokenCall = Callable[[AuthorizationServer], dict[str, Any]]


@pytest.mark.parametrize(
    "name, form, header, status, error",
    [
        (
            "wrong secret",
            {"grant_type": "client_credentials"},
            _basic("ci", "nope"),
            401,
            "invalid_client",
        ),
        (
            "unknown client",
            {"grant_type": "client_credentials"},
            _basic("x", "s3cr3t/+="),
            401,
            "invalid_client",
        ),
        ("no credentials", {"grant_type": "client_credentials"}, "", 401, "invalid_client"),
        ("bad basic", {"grant_type": "client_credentials"}, "Basic !!!", 401, "invalid_client"),
        ("no grant", {}, _basic("ci", "s3cr3t/+="), 400, "invalid_request"),
        (
            "password grant",
            {"grant_type": "password"},
            _basic("ci", "s3cr3t/+="),
            400,
            "unsupported_grant_type",
        ),
    ],
)
def test_token_endpoint_errors(server, name, form, header, status, error):
    with pytest.raises(OAuthError) as caught:
        server.token(form, header)
    assert (caught.value.status, caught.value.error) == (status, error)
    assert caught.value.body()["error"] == error


def test_basic_credentials_parsing():
    assert basic_credentials(_basic("my client", "a:b/+=")) == ("my client", "a:b/+=")
    assert basic_credentials("Bearer x") is None
    assert basic_credentials("Basic " + base64.b64encode(b"no-colon").decode()) is None


def test_requested_scopes_default_to_all():
    assert requested_scopes("") == ("all",)
    assert requested_scopes("all all f.offline") == ("all", "offline")


def test_metadata_points_at_the_public_url(server):
    document = server.metadata("https://flyte.example.com/")
    assert document["token_endpoint"] == "https://flyte.example.com/oauth2/token"
    assert document["jwks_uri"] == "https://flyte.example.com/oauth2/jwks"
    assert document["issuer"] == ISSUER
    assert document["grant_types_supported"] == ["client_credentials"]


def test_identity_from_claims():
    identity = Identity.from_claims({"sub": "u", "scp": "all", "client_id": "c"})
    assert (identity.subject, identity.scopes, identity.client_id) == ("u", {"all"}, "c")
