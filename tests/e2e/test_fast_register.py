"""`pyflyte register` with its default fast registration against `flyteadmin dev`: the source
tarball goes through CreateUploadLocation and a signed PUT into the dev stack's GCS emulator,
and the registered tasks run from it (their args name its `gs://` native URL)."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
import urllib.request
from pathlib import Path
from urllib.parse import quote

from flytekit.clients.friendly import SynchronousFlyteClient
from flytekit.configuration import PlatformConfig
from flytekit.models.common import NamedEntityIdentifier

from tests.devstack import start_dev, stop
from tests.pyflyte import pyflyte

PROJECT, DOMAIN = "flytesnacks", "development"


def fast_register(config: str, *args: str) -> str:
    """`pyflyte register` without --copy (i.e. fast registration of every file)."""
    result = pyflyte(config, "register", "--project", PROJECT, "--domain", DOMAIN, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def distributions(client: SynchronousFlyteClient, task_name: str) -> dict[str, str]:
    """Each registered version of ``task_name`` -> the tarball it runs from."""
    tasks, _ = client.list_tasks_paginated(
        NamedEntityIdentifier(PROJECT, DOMAIN, task_name), limit=10
    )
    found = {}
    for task in tasks:
        args = list(task.closure.compiled_task.template.container.args)
        assert args[0] == "pyflyte-fast-execute", args
        found[task.id.version] = args[args.index("--additional-distribution") + 1]
    return found


def download(endpoint: str, native_url: str) -> bytes:
    """The object's bytes, read anonymously through the emulator's JSON API."""
    bucket, _, name = native_url.removeprefix("gs://").partition("/")
    url = f"{endpoint}/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_pyflyte_fast_register_uploads_through_the_data_proxy(tmp_path: Path):
    proc, found, log = start_dev(tmp_path)
    try:
        config = found["flytekit"]
        # The reference task's module first, at the version workflows.py pins; then the whole
        # project at the version pyflyte computes from the tarball.
        fast_register(config, "--version", "ref-v1", "myproject/shared.py")
        out = fast_register(config, "myproject")
        assert "Successfully registered" in out, out

        client = SynchronousFlyteClient(
            PlatformConfig(endpoint=f"dns:///127.0.0.1:{found['grpc']}", insecure=True)
        )
        ((version, native_url),) = distributions(client, "myproject.workflows.add").items()
        uploads = f"gs://{found['bucket']}/metadata/uploads/{PROJECT}/{DOMAIN}"
        match = re.fullmatch(
            rf"{re.escape(uploads)}/([A-Z2-7]+=*)/fast[0-9a-f]+\.tar\.gz", native_url
        )
        assert match, native_url
        tarball = download(found["gcs"], native_url)
        # The path's root is base32 of the MD5 pyflyte sent: the object is exactly its tarball.
        assert hashlib.md5(tarball).digest() == base64.b32decode(match.group(1))
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            assert "myproject/workflows.py" in archive.getnames()

        # `--copy all` packages the whole source root whatever the target, so both
        # registrations uploaded the same tarball to the same place (the second upload of the
        # same bytes is allowed) and both versions of the shared task run from it.
        shared = distributions(client, "myproject.shared.normalize")
        assert shared == {"ref-v1": native_url, version: native_url}

        workflows, _ = client.list_workflows_paginated(
            NamedEntityIdentifier(PROJECT, DOMAIN, "myproject.workflows.pipeline"), limit=10
        )
        assert [w.id.version for w in workflows] == [version]  # the computed version
    finally:
        out = stop(proc, log)
    assert proc.returncode == 0, out
