from __future__ import annotations

import re

import pytest

from flyteadmin.core.config import ConfigError, Domain, Settings, dump_defaults, load_settings


def test_defaults_run_locally_without_a_file():
    settings = load_settings(None, env={})
    assert settings == Settings()
    assert (settings.server.host, settings.server.grpc_port, settings.server.http_port) == (
        "127.0.0.1",
        8089,
        8088,
    )
    assert settings.domain_ids() == ("development", "staging", "production")


def test_file_and_environment_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("server:\n  grpc_port: 9000\nkubernetes:\n  namespace: flyte\n")
    env = {
        "FLYTEADMIN__SERVER__GRPC_PORT": "9100",
        "FLYTEADMIN__DOMAINS": "[{id: dev, name: Dev}]",
        "OTHER": "x",
    }
    settings = load_settings(path, env=env)
    assert settings.server.grpc_port == 9100  # the environment wins over the file
    assert settings.kubernetes.namespace == "flyte"
    assert settings.domains == (Domain("dev", "Dev"),)


def test_an_environment_value_for_text_is_that_text():
    """YAML would read off, on, yes and no as booleans; a text field takes them as written."""
    env = {"FLYTEADMIN__AUTH__MODE": "off", "FLYTEADMIN__SERVER__THREAD_PINNING": "never"}
    settings = load_settings(None, env=env)
    assert (settings.auth.mode, settings.server.thread_pinning) == ("off", "never")


@pytest.mark.parametrize(
    "text, message",
    [
        ("server:\n  grpc_prot: 1\n", "server: unknown key(s) ['grpc_prot']"),
        ("server:\n  grpc_port: eighty\n", "server.grpc_port: expected a number"),
        ("server: 3\n", "server: expected a mapping"),
        ("domains: {id: x}\n", "domains: expected a list"),
        ("- a\n", "the top level must be a mapping"),
        (
            "operator:\n  namespace_writes_per_second: -1\n",
            "operator.namespace_writes_per_second must not be negative",
        ),
        ("auth:\n  mode: off\n", "auth.mode: expected a string, got False: quote the value"),
        (
            "server:\n  thread_pinning: yes please\n",
            "server.thread_pinning: expected one of ('auto', 'always', 'never'), got 'yes please'",
        ),
    ],
)
def test_mistakes_are_reported_clearly(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(path, env={})


def test_dumped_defaults_load_back_to_the_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(dump_defaults())
    assert load_settings(path, env={}) == Settings()
