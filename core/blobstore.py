"""The blob store: payloads too large for a custom resource (docs/storage.md), on GCS.

``BlobStore`` is what the core uses; ``GcsBlobStore`` implements it against real GCS or an
emulator (``storage.endpoint``): small objects (inputs, closures, events' data) with the asyncio
client gcloud-aio-storage on the caller's event loop, files (history Parquet) with
google-cloud-storage's chunked transfers in a thread pool, and V4 signed URLs with
google-cloud-storage's local signing. URIs are ``gs://<bucket>/<object>``;
the control plane writes under ``gs://<bucket>/<prefix>/...`` (``uri_for``) but reads any
``gs://`` URI, e.g. outputs flytepropeller offloaded elsewhere.

Configuration problems surface lazily, by design: constructing the store does no I/O and
never fails, so an API server whose features do not touch blobs starts without a store. The
first call that needs it builds the client; if the settings cannot work (no bucket; real GCS
without credentials; a missing key file) that call raises ``AdminError(UNAVAILABLE, "blob store
not configured: ...")``, and later calls try again (the configuration may be fixed by then).
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp
import requests
from gcloud.aio.storage import Storage as AioStorage
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY, _should_retry
from google.oauth2 import service_account

from flyteadmin.core import metrics
from flyteadmin.core.config import StorageSettings
from flyteadmin.core.errors import AdminError, Code, invalid_argument, quoted

OCTET_STREAM = "application/octet-stream"
GCS_ENDPOINT = "https://storage.googleapis.com"
MAX_SIGNED_URL_LIFETIME = timedelta(days=7)  # the V4 limit

T = TypeVar("T")


@dataclass(frozen=True)
class BlobInfo:
    md5_hash: str
    """Base64 MD5 as GCS reports it; empty for composite objects."""
    metadata: Mapping[str, str]
    """Custom metadata (``x-goog-meta-<key>`` at upload)."""


class BlobStore(Protocol):
    async def put(self, uri: str, data: bytes, content_type: str = OCTET_STREAM) -> None: ...

    async def get(self, uri: str) -> bytes:
        """The blob's bytes; ``BlobNotFound`` if there is none."""
        ...

    async def put_file(self, uri: str, path: Path, content_type: str = OCTET_STREAM) -> None:
        """Upload a local file (streamed: large files never sit in memory)."""
        ...

    async def get_file(self, uri: str, path: Path) -> None:
        """Download the blob into ``path`` (streamed); ``BlobNotFound`` if there is none."""
        ...

    async def exists(self, uri: str) -> bool: ...

    async def stat(self, uri: str) -> BlobInfo | None:
        """The object's MD5 and custom metadata; None if there is no object."""
        ...

    async def delete(self, uri: str) -> None:
        """Delete the blob; deleting a missing blob is not an error (clean-ups get retried)."""
        ...

    def uri_for(self, *parts: str) -> str:
        """``gs://<bucket>/<prefix>/<parts...>``; each part may hold several segments."""
        ...

    def signed_url(
        self,
        uri: str,
        *,
        method: str,
        expires_in: timedelta,
        content_md5: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[str, dict[str, str]]:
        """A V4 signed URL and the headers the client must send with it (those signed)."""
        ...


class BlobNotFound(AdminError):
    """The object (or its bucket) does not exist. NOT_FOUND; callers re-map it when a missing
    blob means something else to their client (e.g. data loss behind an existing resource)."""

    def __init__(self, uri: str) -> None:
        super().__init__(Code.NOT_FOUND, f"blob not found: {uri}")
        self.uri = uri


async def read_referenced(store: BlobStore, uri: str) -> bytes:
    """The bytes of a blob that a stored record points at, so it must exist: a missing one is
    DATA_LOSS (never empty data: docs/decisions.md), a blob store that cannot be reached is
    UNAVAILABLE (``GcsBlobStore``), so clients retry only what a retry can fix."""
    try:
        return await store.get(uri)
    except BlobNotFound as exc:
        raise AdminError(
            Code.DATA_LOSS, f"data lost: {uri} is referenced but missing from the blob store"
        ) from exc


def not_configured(detail: str) -> AdminError:
    return AdminError(Code.UNAVAILABLE, f"blob store not configured: {detail}")


# GCS object names: at most 1024 bytes of UTF-8, no carriage return or line feed
# (https://cloud.google.com/storage/docs/objects#naming; control characters are discouraged).
MAX_OBJECT_NAME_BYTES = 1024


def object_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a GCS object name, or None if it can."""
    size = len(name.encode())
    if size > MAX_OBJECT_NAME_BYTES:
        return f"the object name would have {size} bytes, at most {MAX_OBJECT_NAME_BYTES}"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "the object name would contain a control character"
    return None


def parse_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or not bucket or not name:
        raise invalid_argument(f"not a gs:// object URI: {uri!r}")
    return bucket, name


async def store_payload(
    store: BlobStore, data: bytes, threshold: int, *parts: str, content_type: str = OCTET_STREAM
) -> str | None:
    """The one offload rule: ``data`` longer than ``threshold`` bytes is written to
    ``store.uri_for(*parts)`` and its URI returned; otherwise None, and the caller keeps the
    payload inline. Literals pass threshold -1 (they never go inline)."""
    if len(data) <= threshold:
        return None
    uri = store.uri_for(*parts)
    await store.put(uri, data, content_type)
    return uri


def _retryable(exc: Exception) -> bool:
    # The library's transient errors, plus 409 like flyteadmin (GCS answers 409 to concurrent
    # writes of one object; our writes are whole-object and idempotent).
    return isinstance(exc, gexc.Conflict) or _should_retry(exc)


# HTTP statuses worth another try (GCS's retry guidance, plus 409 as above).
_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_RETRY_FIRST_DELAY = 1.0  # seconds, doubling: google-cloud-storage's default policy
_RETRY_MAX_DELAY = 60.0


class GcsBlobStore:
    """``BlobStore`` on GCS.

    Small objects go through gcloud-aio-storage on the calling event loop: a write of a few
    hundred bytes costs 0.2-0.3 ms of CPU there against 1.2-1.8 ms through google-cloud-storage
    (requests, a thread hop, and requests' per-call scan of the environment for proxies and
    .netrc); CreateExecution writes one or two, the operator reads one per launch
    (bench/README.md, "Blob store"). Files
    (history Parquet, possibly large) keep google-cloud-storage's chunked, resumable transfers,
    in a small thread pool of their own so that slow storage never starves the default
    executor."""

    def __init__(
        self, settings: StorageSettings, *, max_workers: int = 8, retry_timeout: float = 60.0
    ) -> None:
        self.settings = settings
        self._retry_timeout = retry_timeout
        self._retry = DEFAULT_RETRY.with_predicate(_retryable).with_timeout(retry_timeout)
        # Fewer workers than the HTTP session's pool (10), so no request waits for a connection.
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="blobstore")
        self._lock = threading.Lock()
        self._client: storage.Client | None = None
        self._signer: storage.Client | None = None
        # One asyncio client per event loop: an aiohttp session belongs to the loop it was
        # made on (the API server and the operator each have one; tests may use several).
        self._async_clients: dict[
            asyncio.AbstractEventLoop, tuple[AioStorage, aiohttp.ClientSession]
        ] = {}

    # ------------------------------------------------------------------ the BlobStore API

    async def put(self, uri: str, data: bytes, content_type: str = OCTET_STREAM) -> None:
        bucket, name = parse_uri(uri)

        async def put() -> None:
            client = self._async_client()
            try:
                await self._retrying(
                    lambda: client.upload(bucket, name, data, content_type=content_type)
                )
            except aiohttp.ClientResponseError as exc:
                if exc.status == 404:  # an upload only 404s when the bucket is missing
                    raise AdminError(Code.UNAVAILABLE, f"blob store: no bucket for {uri}") from exc
                raise

        await self._run(put, "write", uri)

    async def get(self, uri: str) -> bytes:
        bucket, name = parse_uri(uri)

        async def get() -> bytes:
            client = self._async_client()
            try:
                return await self._retrying(lambda: client.download(bucket, name))
            except aiohttp.ClientResponseError as exc:
                if exc.status == 404:
                    raise BlobNotFound(uri) from exc
                raise

        return await self._run(get, "read", uri)

    async def put_file(self, uri: str, path: Path, content_type: str = OCTET_STREAM) -> None:
        def put() -> None:
            try:
                self._blob(uri).upload_from_filename(
                    str(path), content_type=content_type, retry=self._retry
                )
            except gexc.NotFound as exc:
                raise AdminError(Code.UNAVAILABLE, f"blob store: no bucket for {uri}") from exc

        await self._run(lambda: self._in_thread(put), "write", uri)

    async def get_file(self, uri: str, path: Path) -> None:
        def get() -> None:
            try:
                self._blob(uri).download_to_filename(str(path), retry=self._retry)
            except gexc.NotFound as exc:
                path.unlink(missing_ok=True)  # the client leaves an empty file behind
                raise BlobNotFound(uri) from exc

        await self._run(lambda: self._in_thread(get), "read", uri)

    async def exists(self, uri: str) -> bool:
        return await self.stat(uri) is not None

    async def stat(self, uri: str) -> BlobInfo | None:
        bucket, name = parse_uri(uri)

        async def stat() -> BlobInfo | None:
            client = self._async_client()
            try:
                meta = await self._retrying(lambda: client.download_metadata(bucket, name))
            except aiohttp.ClientResponseError as exc:
                if exc.status == 404:
                    return None
                raise
            return BlobInfo(meta.get("md5Hash") or "", dict(meta.get("metadata") or {}))

        return await self._run(stat, "check", uri)

    async def delete(self, uri: str) -> None:
        bucket, name = parse_uri(uri)

        async def delete() -> None:
            client = self._async_client()
            try:
                await self._retrying(lambda: client.delete(bucket, name))
            except aiohttp.ClientResponseError as exc:
                if exc.status != 404:  # already gone: clean-ups are retried
                    raise

        await self._run(delete, "delete", uri)

    def uri_for(self, *parts: str) -> str:
        segments = [s for part in parts for s in part.split("/") if s]
        if not segments or any(s in (".", "..") for s in segments):
            raise invalid_argument(f"invalid blob path {quoted('/'.join(parts))!r}")
        prefix = [s for s in self.settings.prefix.split("/") if s]
        return f"gs://{self.settings.bucket}/{'/'.join(prefix + segments)}"

    def signed_url(
        self,
        uri: str,
        *,
        method: str,
        expires_in: timedelta,
        content_md5: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[str, dict[str, str]]:
        """V4, signed locally with the service-account key (no network). ``content_md5`` is the
        raw digest; when given, the client must send it as ``Content-MD5`` (base64), and GCS
        rejects a body with another digest. ``headers`` are further headers to sign (e.g.
        ``x-goog-meta-*`` metadata, which GCS only accepts signed). IAM signBlob (keyless GKE)
        is not supported yet."""
        if not timedelta(seconds=1) <= expires_in <= MAX_SIGNED_URL_LIFETIME:
            raise invalid_argument(f"expires_in must be between 1s and 7 days, got {expires_in}")
        required = dict(headers or {})
        md5 = base64.b64encode(content_md5).decode() if content_md5 is not None else None
        if md5 is not None:
            required["Content-MD5"] = md5
        if content_type is not None:
            required["Content-Type"] = content_type
        bucket, name = parse_uri(uri)
        blob = self._signing_client().bucket(bucket).blob(name)  # signs with that client's key
        s = self.settings
        url = blob.generate_signed_url(
            version="v4",
            method=method.upper(),
            expiration=expires_in,
            content_md5=md5,
            content_type=content_type,
            headers=dict(headers) if headers else None,
            api_access_endpoint=(s.public_endpoint or s.endpoint or GCS_ENDPOINT).rstrip("/"),
        )
        return url, required

    async def close(self) -> None:
        """Wait for running calls, then close the HTTP sessions (the asyncio client's of the
        running loop; those of loops already closed are dropped)."""
        await asyncio.to_thread(self._executor.shutdown, True)
        for client in (self._client, self._signer):
            if client is not None:
                client.close()
        with self._lock:
            clients, self._async_clients = self._async_clients, {}
        current = clients.get(asyncio.get_running_loop())
        if current is not None:
            client, session = current
            await client.close()  # its token's; the session is ours to close
            await session.close()

    # ------------------------------------------------------------------ internals

    def _blob(self, uri: str) -> storage.Blob:
        bucket, name = parse_uri(uri)
        return self._data_client().bucket(bucket).blob(name)

    def _data_client(self) -> storage.Client:
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> storage.Client:
        s = self.settings
        if not s.bucket:
            raise not_configured("set storage.bucket (and storage.endpoint for an emulator)")
        if s.endpoint:  # an emulator: anonymous, it checks no credentials
            return storage.Client(
                project=s.project or "flyteadmin",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": s.endpoint},
            )
        if s.credentials_file:
            credentials = _load_key(s.credentials_file)
            return storage.Client(
                project=s.project or credentials.project_id, credentials=credentials
            )
        try:  # application default credentials (GKE workload identity, gcloud, ...)
            return storage.Client(project=s.project) if s.project else storage.Client()
        except auth_exc.DefaultCredentialsError as exc:
            raise not_configured(
                f"set storage.endpoint (an emulator) or storage.credentials_file: {exc}"
            ) from exc

    def _async_client(self) -> AioStorage:
        loop = asyncio.get_running_loop()
        with self._lock:
            current = self._async_clients.get(loop)
        if current is not None:
            return current[0]
        self._data_client()  # checks the settings and credentials, as the first call must
        s = self.settings
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=16), timeout=aiohttp.ClientTimeout(total=60)
        )
        # Any: the library annotates `session` with requests' Session, its REST build's type.
        shared: Any = session
        if s.endpoint:  # an emulator: anonymous
            client = AioStorage(session=shared, api_root=s.endpoint.rstrip("/"))
        else:  # the key file, else application default credentials
            client = AioStorage(session=shared, service_file=s.credentials_file or None)
        with self._lock:
            for old in [other for other in self._async_clients if other.is_closed()]:
                del self._async_clients[old]
            self._async_clients[loop] = (client, session)
        return client

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, again after a transient failure, with doubling pauses, until
        ``retry_timeout`` has passed."""
        deadline = time.monotonic() + self._retry_timeout
        delay = _RETRY_FIRST_DELAY
        while True:
            try:
                return await call()
            except aiohttp.ClientResponseError as exc:
                if exc.status not in _RETRY_STATUSES:
                    raise
                failure: Exception = exc
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                failure = exc
            pause = min(delay, deadline - time.monotonic())
            if pause <= 0:
                raise failure
            await asyncio.sleep(pause)
            delay = min(delay * 2, _RETRY_MAX_DELAY)

    def _signing_client(self) -> storage.Client:
        # Its own client: it carries the key and is built without I/O, whatever the data
        # client's credentials are (anonymous for an emulator).
        with self._lock:
            if self._signer is None:
                path = self.settings.credentials_file or os.environ.get(
                    "GOOGLE_APPLICATION_CREDENTIALS", ""
                )
                if not path:
                    raise not_configured("signed URLs need storage.credentials_file (a key)")
                credentials = _load_key(path)
                self._signer = storage.Client(
                    project=self.settings.project or credentials.project_id or "flyteadmin",
                    credentials=credentials,
                )
            return self._signer

    async def _run(self, call: Callable[[], Awaitable[T]], action: str, uri: str) -> T:
        started = time.monotonic()
        try:
            result = await self._call(call, action, uri)
        except Exception as error:
            missing = isinstance(error, AdminError) and error.code == Code.NOT_FOUND
            outcome = "not_found" if missing else "error"
            metrics.blob_call(action, outcome, time.monotonic() - started)
            raise
        metrics.blob_call(action, "ok", time.monotonic() - started)
        return result

    def _in_thread(self, call: Callable[[], T]) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, call)

    @staticmethod
    async def _call(call: Callable[[], Awaitable[T]], action: str, uri: str) -> T:
        """``call()`` with the failures of both clients mapped to our codes."""
        try:
            return await call()
        except AdminError:
            raise
        except (gexc.Forbidden, gexc.Unauthorized) as exc:
            # Our own identity lacks a permission: an operator problem, not the caller's.
            raise AdminError(Code.INTERNAL, f"blob store refused to {action} {uri}: {exc}") from exc
        except aiohttp.ClientResponseError as exc:
            if exc.status in (401, 403):
                raise AdminError(
                    Code.INTERNAL, f"blob store refused to {action} {uri}: {exc}"
                ) from exc
            raise AdminError(
                _code_of_status(exc.status), f"blob store failed to {action} {uri}: {exc}"
            ) from exc
        except gexc.GoogleAPICallError as exc:
            raise AdminError(
                _code_of_status(exc.code or 500), f"blob store failed to {action} {uri}: {exc}"
            ) from exc
        except (
            gexc.RetryError,
            requests.RequestException,
            auth_exc.GoogleAuthError,
            aiohttp.ClientError,
            TimeoutError,
            ConnectionError,
        ) as exc:
            raise AdminError(
                Code.UNAVAILABLE, f"blob store unavailable ({action} {uri}): {exc!r}"
            ) from exc


def _code_of_status(status: int) -> Code:
    return Code.UNAVAILABLE if status >= 500 or status in (408, 429) else Code.INTERNAL


def _load_key(path: str) -> service_account.Credentials:
    try:
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_file(path)
        )
        return credentials
    except (OSError, ValueError) as exc:
        raise not_configured(f"cannot read the service-account key {path}: {exc}") from exc
