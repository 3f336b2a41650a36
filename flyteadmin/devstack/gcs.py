"""A local GCS for ``flyteadmin dev``, the tests and the benchmarks: fake-gcs-server on 127.0.0.1.

fake-gcs-server (built from Go modules, ``gcs_build``) serves the JSON API (what the blob store
and flytekit use), the XML-style paths that V4 signed URLs point at (PUT and GET on
``/<bucket>/<object>``), and accepts any signature: next to it goes a throwaway
service-account key, so the API server signs real V4 URLs, and the tests verify those
signatures themselves (tests/gcs_signing.py).

Storage is always its filesystem backend, so a restarted server (the supervisor restarts a dead
one on the same port) still has every blob: on disk under ``flyteadmin dev --data-dir``
(durable: each object is fsynced before it is renamed into place), on tmpfs otherwise (fast;
gone with the machine, like the rest of a throwaway stack).

Crash safety (docs/testbed.md): fake-gcs-server writes an object's content to a temporary file,
fsyncs it and renames it into place, then sets the object's metadata (an extended attribute,
or a ``<name>.metadata`` file where the filesystem has none), and only then answers. A kill
between those steps leaves a file without metadata: one the server cannot serve, and one that
makes every listing of its folder fail. Before every start ``recover`` moves such files aside
(``lost+found/``); after it ``restore`` uploads back those that are whole objects (the content of
a write in flight: possibly an identical rewrite of an acknowledged object). renameio's
temporary files go to a ``tmp/`` folder on the same filesystem (``TMPDIR``), emptied at every
start.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flyteadmin.core.config import StorageSettings
from flyteadmin.devstack import gcs_build
from flyteadmin.devstack.processes import ProcessGroup, Service, free_port, http_ok, port_is_free

PROJECT = "flyteadmin-dev"
SERVICE_NAME = "gcs-emulator"  # the child's name (its log file, bench's cpu column)
METADATA_XATTR = "user.metadata"  # fake-gcs-server's internal/backend/metadata_xattr.go
METADATA_SUFFIX = ".metadata"  # its metadata_file.go
TMPFS = Path("/dev/shm")
_TMPFS_PREFIX = "flyteadmin-gcs-"
_RENAMEIO_TEMP = re.compile(r"^\..+\d+$")  # renameio's "." + name + random digits


@dataclass
class GcsEmulator:
    endpoint: str
    """``http://127.0.0.1:<port>``: the JSON API, and the host of signed URLs."""
    bucket: str
    credentials_file: Path
    """A service-account JSON key that signs URLs (its token_uri is never called)."""
    processes: ProcessGroup
    service: Service
    """The server process, restartable as it was started (same port, same objects)."""
    root: Path
    """``objects/`` (the server's filesystem root), ``tmp/``, ``lost+found/``."""
    _remove_root: bool = False

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
        if self._remove_root:
            shutil.rmtree(self.root, ignore_errors=True)

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


def _uses_xattr(objects: Path) -> bool:
    """fake-gcs-server's own test (NewStorageFS): metadata goes into an extended attribute when
    reading one from the root folder works or says 'no such attribute'."""
    try:
        os.getxattr(objects, METADATA_XATTR)
        return True
    except OSError as exc:
        return exc.errno == errno.ENODATA


def _has_metadata(path: Path, xattr: bool) -> bool:
    if xattr:
        try:
            os.getxattr(path, METADATA_XATTR)
            return True
        except OSError:
            return False
    return Path(str(path) + METADATA_SUFFIX).exists()


def recover(root: Path) -> dict[str, Path]:
    """Set aside the files that interrupted writes left without metadata (see the module
    docstring): ``{"<bucket>/<object>": where it is now}``. Run while the server is stopped."""
    objects, tmp = root / "objects", root / "tmp"
    aside = root / "lost+found" / time.strftime("%Y%m%dT%H%M%S")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    objects.mkdir(parents=True, exist_ok=True)
    xattr = _uses_xattr(objects)
    moved = {}
    for bucket in (p for p in objects.iterdir() if p.is_dir()):
        for folder, _, files in os.walk(bucket):
            for name in files:
                path = Path(folder) / name
                if xattr or not name.endswith(METADATA_SUFFIX):
                    orphan = not _has_metadata(path, xattr)
                else:  # a metadata file whose object is gone (an interrupted delete)
                    orphan = not Path(str(path).removesuffix(METADATA_SUFFIX)).exists()
                if orphan:
                    relative = str(path.relative_to(objects))
                    moved[relative] = aside / relative
                    moved[relative].parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, moved[relative])
    return moved


def restore(endpoint: str, moved: dict[str, Path]) -> list[str]:
    """Upload again, through the running server, the set-aside files that are whole objects:
    renameio renames a file into place only after writing and fsyncing all of it, so such a
    file is the complete content of a write that was in flight (maybe an identical rewrite of
    an acknowledged object, which must not disappear). Its metadata is lost: it comes back as
    ``application/octet-stream``. renameio's own temporary and probe files
    (``.<name><digits>``) and metadata files stay aside. Returns the restored names."""
    restored = []
    for relative, path in moved.items():
        bucket, _, name = relative.partition("/")
        base = name.rsplit("/", 1)[-1]
        if _RENAMEIO_TEMP.match(base) or base.endswith(METADATA_SUFFIX) or not name:
            continue
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        request = urllib.request.Request(
            f"{endpoint}/upload/storage/v1/b/{urllib.parse.quote(bucket)}/o?{query}",
            data=path.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30):
            pass
        path.unlink()
        restored.append(relative)
    return restored


def _throwaway_root() -> Path:
    """A folder for a throwaway store, on tmpfs when there is one; leftovers of stores whose
    process died without cleaning up are removed first."""
    if TMPFS.is_dir() and os.access(TMPFS, os.W_OK):
        for stale in TMPFS.glob(f"{_TMPFS_PREFIX}*"):
            pid = stale.name.removeprefix(_TMPFS_PREFIX).split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(stale, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{_TMPFS_PREFIX}{os.getpid()}-", dir=TMPFS))
    return Path(tempfile.mkdtemp(prefix=_TMPFS_PREFIX))


def _port(root: Path, kept: bool, attempt: int) -> int:
    """A free loopback port; a kept store reuses its previous one when free, because Pods
    created before a restart of ``flyteadmin dev`` carry the endpoint in their environment."""
    saved = root / "port"
    if kept and attempt == 0 and saved.exists():
        port = int(saved.read_text())
        if port_is_free(port):
            return port
    port = free_port()
    if kept:
        saved.write_text(str(port))
    return port


def start_gcs_emulator(
    workdir: Path,
    *,
    bucket: str = "flyteadmin",
    data_dir: Path | None = None,
    timeout: float = 30.0,
    log=lambda message: None,
) -> GcsEmulator:
    """Start fake-gcs-server on a free loopback port, create ``bucket``, write a signing key.

    Objects are kept in ``data_dir`` when given (``flyteadmin dev --data-dir`` keeps the
    cluster, so it keeps the blobs its resources point at too), else in a throwaway folder
    removed by ``stop()``. Its log is ``workdir/logs/gcs-emulator.log``.
    """
    binary = gcs_build.ensure_binary(log=log)
    remove_root = data_dir is None
    root = _throwaway_root() if data_dir is None else Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    group = ProcessGroup(workdir / "logs")

    moved: dict[str, Path] = {}

    def prepare() -> None:
        moved.clear()
        moved.update(recover(root))

    def after_start() -> None:
        if not moved:
            return
        restored = restore(endpoint, moved)
        log(
            f"blob store: {len(moved)} file(s) of interrupted writes: {len(restored)} restored "
            f"as objects, {len(moved) - len(restored)} temporary left in {root / 'lost+found'}"
        )

    env = {**os.environ, "TMPDIR": str(root / "tmp")}
    try:
        for attempt in range(3):  # a free port can be taken before the child binds it
            port = _port(root, not remove_root, attempt)
            endpoint = f"http://127.0.0.1:{port}"
            argv = [
                str(binary),
                "-backend=filesystem",
                f"-filesystem-root={root / 'objects'}",
                "-scheme=http",
                "-host=127.0.0.1",
                f"-port={port}",
                # Signed URLs name this host: requests to it are the XML-style API.
                f"-public-host=127.0.0.1:{port}",
                f"-external-url={endpoint}",
                "-log-level=warn",
            ]
            ready = functools.partial(http_ok, f"{endpoint}/_internal/healthcheck")
            service = Service(
                SERVICE_NAME, argv, env, ready, group, prepare, timeout, after_start=after_start
            )
            try:
                service.start()
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
        if remove_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return GcsEmulator(endpoint, bucket, credentials_file, group, service, root, remove_root)
