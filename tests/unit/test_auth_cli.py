"""`flyteadmin auth hash-secret` and `flyteadmin auth keygen`: what an admin runs to fill the auth
Secret."""

from __future__ import annotations

import io

import pytest

from flyteadmin.cli import main
from flyteadmin.core.auth.client_secrets import check_hash_format, verify_secret
from flyteadmin.core.auth.keys import SigningKey


def test_hash_secret_reads_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cr3t/+=\n"))
    main(["auth", "hash-secret"])
    hashed = capsys.readouterr().out.strip()
    check_hash_format(hashed)
    assert verify_secret("s3cr3t/+=", hashed)


def test_hash_secret_needs_a_secret(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(SystemExit, match="on stdin"):
        main(["auth", "hash-secret"])


def test_keygen_prints_a_usable_key(capsys):
    main(["auth", "keygen"])
    pem = capsys.readouterr().out
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert SigningKey.from_pem(pem.encode()).kid
