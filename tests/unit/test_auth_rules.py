"""The RPC -> (resource, verb) table, the claim -> Kubernetes subject mapping, and building the
auth runtime from settings (config errors, clients from a mounted Secret file)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from google.protobuf.message import Message

from flyteadmin.api_server.auth.authorization import (
    CLUSTER,
    DOMAIN,
    OPEN,
    PROJECT,
    RULES,
    Rule,
    locate,
)
from flyteadmin.api_server.auth.grpc_authentication import guarded
from flyteadmin.api_server.auth.http_middleware import is_open
from flyteadmin.api_server.routes import SERVICES
from flyteadmin.core import crds
from flyteadmin.core.auth.access import Subject, review_body, subject_of
from flyteadmin.core.auth.client_secrets import hash_secret
from flyteadmin.core.auth.keys import generate_pem
from flyteadmin.core.auth.runtime import build_auth, load_clients, public_url
from flyteadmin.core.auth.tokens import Identity
from flyteadmin.core.config import AuthSettings, ConfigError, ServerSettings, Settings
from flyteadmin.core.namespaces import namespace_for

ALL_METHODS = [f"/{s.full_name}/{m.name}" for s in SERVICES for m in s.methods]
PLURALS = {k.plural for k in crds.KINDS}
VERBS = {"get", "list", "create", "update", "delete"}


def test_every_rpc_has_exactly_one_rule():
    assert sorted(RULES) == sorted(ALL_METHODS)


@pytest.mark.parametrize("method", sorted(m for m in RULES if RULES[m] is not OPEN))
def test_rules_name_our_resources_and_find_the_project(method):
    rule = RULES[method]
    assert rule.resource in PLURALS and rule.verb in VERBS
    if rule.scope == CLUSTER:
        return
    service, name = method.strip("/").split("/")
    descriptor = next(s for s in SERVICES if s.full_name == service).methods_by_name[name]
    from google.protobuf.message_factory import GetMessageClass

    request = GetMessageClass(descriptor.input_type)()
    _fill(request, rule)
    project, domain = locate(rule, request)
    assert project == "proj"
    assert domain == ("dev" if rule.scope == DOMAIN else "")


def _fill(request: Message, rule: Rule) -> None:
    if callable(rule.at):  # GetData's flyte URL
        request.flyte_url = "flyte://v1/proj/dev/exec/n0/i"
        return
    if rule.scope == PROJECT:
        head, _, field = rule.at.rpartition(".")
        target = request
        for part in filter(None, head.split(".")):
            target = getattr(target, part)
        setattr(target, field, "proj")
        return
    target = request
    for part in filter(None, rule.at.split(".")):
        target = getattr(target, part)
    target.project, target.domain = "proj", "dev"


def test_namespace_of_a_decision():
    assert namespace_for("{{ project }}-{{ domain }}", "proj", "dev") == "proj-dev"


@pytest.mark.parametrize(
    "claims, settings, subject",
    [
        ({"sub": "alice"}, AuthSettings(), Subject("alice")),
        (
            {"sub": "u1", "email": "a@x.io", "groups": ["b", "a"]},
            AuthSettings(user_claim="email", user_prefix="flyte:", group_prefix="flyte:"),
            Subject("flyte:a@x.io", ("flyte:a", "flyte:b")),
        ),
        ({"sub": "svc", "groups": "team"}, AuthSettings(), Subject("svc", ("team",))),
        ({"sub": "svc"}, AuthSettings(user_claim="email"), Subject("svc")),  # falls back to sub
    ],
)
def test_subject_of(claims, settings, subject):
    assert subject_of(Identity.from_claims(claims), settings) == subject


def test_review_body():
    body = review_body(Subject("alice", ("g",)), "p-d", "executions", "create")
    assert body["kind"] == "SubjectAccessReview"
    assert body["spec"] == {
        "user": "alice",
        "groups": ["g"],
        "resourceAttributes": {
            "group": "flyteadmin.io",
            "resource": "executions",
            "verb": "create",
            "namespace": "p-d",
        },
    }
    assert (
        "namespace"
        not in review_body(Subject("a"), "", "projects", "create")["spec"]["resourceAttributes"]
    )


def _settings(**auth) -> Settings:
    return Settings(
        server=ServerSettings(host="0.0.0.0", http_port=8088), auth=AuthSettings(**auth)
    )


def test_off_builds_nothing():
    assert build_auth(_settings()) is None


@pytest.mark.parametrize(
    "auth, message",
    [
        ({"mode": "on"}, "auth.mode"),
        ({"mode": "self", "authorization": "rbac"}, "auth.authorization"),
        ({"authorization": "kubernetes"}, "needs auth.mode"),
        ({"mode": "external"}, "auth.issuer is required"),
    ],
)
def test_bad_settings(auth, message):
    with pytest.raises(ConfigError, match=message):
        build_auth(_settings(**auth))


def test_self_mode_reads_the_secret_directory(tmp_path):
    (tmp_path / "token_rsa_key.pem").write_bytes(generate_pem())
    (tmp_path / "clients.yaml").write_text(yaml.safe_dump({"ci": hash_secret("x", iterations=10)}))
    auth = build_auth(_settings(mode="self", secrets_dir=str(tmp_path)))
    assert auth is not None and auth.server is not None
    assert auth.public_url == "http://127.0.0.1:8088"  # a wildcard bind is not an address
    assert set(auth.server.clients) == {"ci"}
    assert auth.oauth2_metadata()["token_endpoint"] == "http://127.0.0.1:8088/oauth2/token"
    config = auth.public_client_config()
    assert config["authorization_metadata_key"] == "flyte-authorization"
    assert config["scopes"] == ["all"]


def test_clients_from_config_override_the_file_and_must_be_hashes(tmp_path):
    (tmp_path / "clients.yaml").write_text(yaml.safe_dump({"a": hash_secret("1", iterations=10)}))
    b = hash_secret("2", iterations=10)
    settings = AuthSettings(secrets_dir=str(tmp_path), clients={"b": b})
    assert load_clients(settings)["b"] == b and set(load_clients(settings)) == {"a", "b"}
    with pytest.raises(ConfigError, match="client 'c'"):
        load_clients(dataclasses.replace(settings, clients={"c": "plaintext"}))


def test_missing_key_in_self_mode(tmp_path):
    with pytest.raises(FileNotFoundError, match="token signing key"):
        build_auth(_settings(mode="self", secrets_dir=str(tmp_path)))


def test_public_url_setting_wins():
    assert public_url(_settings(public_url="https://flyte.example.com/")) == (
        "https://flyte.example.com"
    )


@pytest.mark.parametrize(
    "verb, path, open_",
    [
        ("GET", "/healthcheck", True),
        ("GET", "/.well-known/oauth-authorization-server", True),
        ("GET", "/config/v1/flyte_client", True),
        ("POST", "/oauth2/token", True),
        ("GET", "/oauth2/jwks", True),
        ("GET", "/me", False),
        ("GET", "/api/v1/projects", False),
        ("POST", "/api/v1/executions", False),
        ("GET", "/api/v1/unknown", False),
        ("GET", "/config/v1/flyte_client/extra", False),
    ],
)
def test_open_http_paths(verb, path, open_):
    assert is_open(verb, path) is open_


@pytest.mark.parametrize(
    "method, needs_token",
    [
        ("/flyteidl.service.AdminService/CreateExecution", True),
        ("/flyteidl.service.IdentityService/UserInfo", True),
        ("/flyteidl.service.SignalService/SetSignal", True),
        ("/flyteidl.service.AuthMetadataService/GetOAuth2Metadata", False),
        ("/flyteidl.service.AuthMetadataService/GetPublicClientConfig", False),
        ("/grpc.health.v1.Health/Check", False),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", False),
    ],
)
def test_guarded_grpc_methods(method, needs_token):
    assert guarded(method) is needs_token


@pytest.mark.parametrize(
    "auth, message",
    [
        ({"login_issuer": "http://idp"}, "login_client_id is required"),
        ({"login_issuer": "http://idp", "login_client_id": "c"}, "login_client_secret"),
    ],
)
def test_user_login_settings(tmp_path, auth, message):
    (tmp_path / "token_rsa_key.pem").write_bytes(generate_pem())
    with pytest.raises(ConfigError, match=message):
        build_auth(_settings(mode="self", secrets_dir=str(tmp_path), **auth))
