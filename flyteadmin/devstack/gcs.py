"""A local GCS for ``flyteadmin dev`` and the tests: gcp-storage-emulator on 127.0.0.1.

The emulator serves the JSON API (what the blob store uses) and XML-style paths (what signed
URLs point at). Next to it goes a throwaway service-account key, so the API server signs real
V4 URLs; the emulator checks no signature, so the tests verify them (tests/gcs_signing.py).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flyteadmin.core.config import StorageSettings
from flyteadmin.devstack.processes import ProcessGroup, free_port, http_ok, wait_until

PROJECT = "flyteadmin-dev"


@dataclass
class GcsEmulator:
    endpoint: str
    """``http://127.0.0.1:<port>``: the JSON API, and the host of signed URLs."""
    bucket: str
    credentials_file: Path
    """A service-account JSON key that signs URLs (its token_uri is never called)."""
    processes: ProcessGroup

    def storage_settings(self, base: StorageSettings | None = None) -> StorageSettings:
        """``base`` (default: the defaults) pointed at this emulator."""
        return dataclasses.replace(
            base or StorageSettings(),
            endpoint=self.endpoint,
            public_endpoint=self.endpoint,
            bucket=self.bucket,
            credentials_file=str(self.credentials_file),
        )

    def stop(self) -> None:
        self.processes.stop()

    def __enter__(self) -> GcsEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_service_account_key(path: Path, project: str = PROJECT) -> None:
    """A fresh RSA-2048 service-account key in Google's JSON format, readable by us only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"flyteadmin@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        # Loopback discard port: a token request, which nothing should make, fails at once.
        "token_uri": "http://127.0.0.1:9/token",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(info, indent=2))


def create_bucket(endpoint: str, bucket: str, project: str = PROJECT) -> None:
    """Create ``bucket`` through the JSON API, anonymously; an existing one is fine."""
    request = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project={project}",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise


def start_gcs_emulator(
    workdir: Path,
    *,
    bucket: str = "flyteadmin",
    data_dir: Path | None = None,
    timeout: float = 30.0,
) -> GcsEmulator:
    """Start the emulator on a free loopback port, create ``bucket``, write a signing key.

    Blobs are kept in memory, or in ``data_dir`` when given (``flyteadmin dev --data-dir``
    keeps the cluster, so it keeps the blobs its resources point at too).
    """
    group = ProcessGroup(workdir / "logs")
    storage = ["-d", str(data_dir)] if data_dir else []
    mode = [] if data_dir else ["--in-memory"]
    # PYTHONSAFEPATH: the working directory may be the repository, whose operator/ folder
    # would shadow the standard library's operator module.
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    try:
        for attempt in range(3):  # a free port can be taken before the child binds it
            port = free_port()
            argv = [sys.executable, "-m", "gcp_storage_emulator", *storage, "start"]
            argv += ["--host", "127.0.0.1", "--port", str(port), *mode]
            child = group.start("gcs-emulator", argv, env)
            endpoint = f"http://127.0.0.1:{port}"
            try:
                wait_until(
                    functools.partial(http_ok, f"{endpoint}/"),
                    timeout=timeout,
                    what="the GCS emulator",
                    child=child,
                )
                break
            except RuntimeError:
                group.stop()
                if attempt == 2:
                    raise
        create_bucket(endpoint, bucket)
        credentials_file = workdir / "gcs-service-account.json"
        write_service_account_key(credentials_file)
    except BaseException:
        group.stop()
        raise
    return GcsEmulator(endpoint, bucket, credentials_file, group)
