"""Credentials for `flyteadmin dev --auth`: a signing key and one confidential client, written in
the layout the `self` mode reads (the same files a Kubernetes Secret would mount)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from flyteadmin.core.auth.client_secrets import hash_secret
from flyteadmin.core.auth.keys import generate_pem

DEV_CLIENT_ID = "flyteadmin-dev"
KEY_FILE = "token_rsa_key.pem"
CLIENTS_FILE = "clients.yaml"
SECRET_FILE = "client_secret"


@dataclass(frozen=True)
class DevCredentials:
    directory: Path  # becomes auth.secrets_dir
    client_id: str
    secret_file: Path  # the plain secret, for flytekit's clientSecretLocation


def prepare_dev_credentials(directory: Path) -> DevCredentials:
    """Create (or, with a kept data dir, reuse) the key, the client and its secret file."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = directory / KEY_FILE
    if not key.is_file():
        key.write_bytes(generate_pem())
        key.chmod(0o600)
    secret_file = directory / SECRET_FILE
    if not secret_file.is_file():
        secret_file.write_text(secrets.token_urlsafe(24))
        secret_file.chmod(0o600)
    secret = secret_file.read_text().strip()
    (directory / CLIENTS_FILE).write_text(yaml.safe_dump({DEV_CLIENT_ID: hash_secret(secret)}))
    return DevCredentials(directory, DEV_CLIENT_ID, secret_file)
