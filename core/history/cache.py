"""The local copy of history files that DuckDB reads (it cannot read the blob store here: its
httpfs extension is downloaded at run time). The blob store stays the truth.

Content-addressed: a file is ``<dir>/<sha256>.parquet``, so a name never changes meaning and
several server processes on one host share the directory safely: each downloads into its own
temporary file, checks the digest, and renames it into place (atomic; the same content either
way if two processes race). A process only deletes files nobody used for ``GRACE`` (use
refreshes the modification time): unreferenced ones first, then the least recently used ones
while the cache is above its size limit. A reader that still finds a file gone downloads it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Collection
from pathlib import Path

from flyteadmin.core.blobstore import BlobStore
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.history.parquet import sha256_of

GRACE = 600.0  # seconds a used file is safe from eviction (by any process)
_TOUCH_EVERY = 60.0  # refresh a file's modification time at most this often
_SUFFIX = ".parquet"


def default_dir() -> Path:
    return Path(tempfile.gettempdir()) / "flyteadmin-history"


class FileCache:
    def __init__(self, directory: Path, max_bytes: int = 0) -> None:
        self.directory = directory
        self.temp_dir = directory / "tmp"  # same file system: renames out of it are atomic
        self.max_bytes = max_bytes
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self._inflight: dict[str, asyncio.Future[Path]] = {}

    def path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}{_SUFFIX}"

    def digest_of(self, path: str | Path) -> str | None:
        """The digest of the cached file at ``path``; None if it is not a cache path."""
        path = Path(path)
        if path.parent != self.directory or path.suffix != _SUFFIX:
            return None
        return path.name.removesuffix(_SUFFIX)

    def local(self, sha256: str) -> Path | None:
        """The cached file, its use recorded; None if it is not here."""
        path = self.path(sha256)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None
        if age > _TOUCH_EVERY:
            with contextlib.suppress(FileNotFoundError):
                os.utime(path)
        return path

    def adopt(self, path: Path, sha256: str) -> Path:
        """Move a verified file (on this file system) into the cache."""
        target = self.path(sha256)
        os.replace(path, target)
        return target

    async def fetch(self, store: BlobStore, uri: str, sha256: str | None) -> tuple[Path, str]:
        """The cached copy of ``uri`` (downloaded if needed) and its digest. With ``sha256``
        given, the download must have it (DATA_LOSS otherwise); concurrent fetches of one
        file in this process share one download."""
        if sha256 is not None and (path := self.local(sha256)) is not None:
            return path, sha256
        running = self._inflight.get(uri)
        if running is None:
            running = asyncio.ensure_future(self._download(store, uri, sha256))
            self._inflight[uri] = running
            running.add_done_callback(lambda _: self._inflight.pop(uri, None))
        path = await asyncio.shield(running)
        return path, path.name.removesuffix(_SUFFIX)

    async def _download(self, store: BlobStore, uri: str, sha256: str | None) -> Path:
        scratch = self.temp_dir / f"{os.getpid()}-{secrets.token_hex(6)}.tmp"
        try:
            await store.get_file(uri, scratch)
            digest = await asyncio.to_thread(sha256_of, scratch)
            if sha256 is not None and digest != sha256:
                raise AdminError(
                    Code.DATA_LOSS,
                    f"history file {uri} has sha256 {digest}, its segment says {sha256}",
                )
            return self.adopt(scratch, digest)
        finally:
            scratch.unlink(missing_ok=True)

    def evict(self, referenced: Collection[str]) -> int:
        """Delete files unused for ``GRACE`` that are not ``referenced`` (digests), then the
        least recently used ones while above ``max_bytes``; stale temporary files too.
        Returns the bytes freed. Synchronous file-system work: run it in a thread."""
        now = time.time()
        freed = 0
        for scratch in self.temp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if now - scratch.stat().st_mtime > GRACE * 6:  # a download that died
                    scratch.unlink()
        entries = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            entries.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in entries)
        entries.sort()  # least recently used first
        for mtime, size, path in entries:
            idle = now - mtime > GRACE
            unreferenced = path.name.removesuffix(_SUFFIX) not in referenced
            over = self.max_bytes > 0 and total > self.max_bytes
            if idle and (unreferenced or over):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    total -= size
                    freed += size
        return freed
