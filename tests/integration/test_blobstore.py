"""The blob store on the GCS emulator: round trips, errors, the offload rule, and V4 signed URLs
used over real HTTP and checked by our own verifier (the emulator checks no signature)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from flyteadmin.core import blobstore
from flyteadmin.core.blobstore import BlobNotFound, GcsBlobStore, parse_uri, store_payload
from flyteadmin.core.config import StorageSettings
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.devstack.gcs import GcsEmulator, write_service_account_key
from flyteadmin.devstack.processes import free_port
from tests.gcs_signing import SignatureRejected, verify_v4
from tests.local_http import serve_locally

MiB = 1 << 20


@pytest.fixture
def store(storage_settings: StorageSettings) -> Iterator[GcsBlobStore]:
    blobs = GcsBlobStore(storage_settings)
    yield blobs
    asyncio.run(blobs.close())


def run(coro):
    return asyncio.run(coro)


def http(url: str, method: str = "GET", data: bytes | None = None, headers=None) -> bytes:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return response.read()


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("size", [0, 10, 5 * MiB])
def test_put_get_exists_delete(store: GcsBlobStore, size: int):
    uri = store.uri_for("p", "d", f"blob-{size}")
    data = os.urandom(size)

    async def scenario():
        assert not await store.exists(uri)
        await store.put(uri, data)
        assert await store.exists(uri)
        assert await store.get(uri) == data
        await store.put(uri, b"replaced")  # a put overwrites
        assert await store.get(uri) == b"replaced"
        await store.delete(uri)
        assert not await store.exists(uri)
        with pytest.raises(BlobNotFound):
            await store.get(uri)
        await store.delete(uri)  # deleting what is gone is fine (clean-ups are retried)

    run(scenario())


def test_content_type_is_stored(store: GcsBlobStore, gcs: GcsEmulator):
    uri = store.uri_for("typed")
    run(store.put(uri, b"{}", "application/json"))
    bucket, name = parse_uri(uri)
    meta = json.loads(http(f"{gcs.endpoint}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"))
    assert meta["contentType"] == "application/json"
    assert int(meta["size"]) == 2


def test_concurrent_puts_and_gets(store: GcsBlobStore):
    blobs = {store.uri_for("many", str(i)): os.urandom(1000 + i) for i in range(24)}

    async def scenario():
        await asyncio.gather(*(store.put(uri, data) for uri, data in blobs.items()))
        got = await asyncio.gather(*(store.get(uri) for uri in blobs))
        assert got == list(blobs.values())

    run(scenario())


# ------------------------------------------------------------------------------ errors


def test_missing_blob_is_not_found(store: GcsBlobStore):
    uri = store.uri_for("never-written")
    with pytest.raises(BlobNotFound) as caught:
        run(store.get(uri))
    assert caught.value.code == Code.NOT_FOUND
    assert caught.value.uri == uri
    assert caught.value.message == f"blob not found: {uri}"
    with pytest.raises(BlobNotFound):
        run(store.get("gs://no-such-bucket/x"))


def test_put_into_a_missing_bucket_is_unavailable(store: GcsBlobStore):
    with pytest.raises(AdminError) as caught:
        run(store.put("gs://no-such-bucket/x", b"x"))
    assert caught.value.code == Code.UNAVAILABLE
    assert "no bucket" in caught.value.message


def test_unreachable_store_is_unavailable(storage_settings: StorageSettings):
    settings = dataclasses.replace(storage_settings, endpoint=f"http://127.0.0.1:{free_port()}")
    blobs = GcsBlobStore(settings, retry_timeout=1.0)
    try:
        with pytest.raises(AdminError) as caught:
            run(blobs.get(blobs.uri_for("x")))
        assert caught.value.code == Code.UNAVAILABLE
        assert "blob store unavailable" in caught.value.message
    finally:
        run(blobs.close())


class _FlakyGcs:
    """A GCS JSON API stand-in on 127.0.0.1 that answers each path ``failures`` times with
    ``status`` before it stores or serves objects (in memory)."""

    def __init__(self, status: int, failures: int) -> None:
        self.status, self.failures = status, failures
        self.calls: dict[str, int] = {}
        self.objects: dict[str, bytes] = {}

    async def handle(self, request):
        from aiohttp import web

        key = f"{request.method} {request.path}"
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] <= self.failures:
            return web.json_response({"error": {"code": self.status}}, status=self.status)
        if request.method == "POST":  # upload: ?name=<object>
            self.objects[request.query["name"]] = await request.read()
            return web.json_response({"name": request.query["name"]})
        name = request.match_info["name"]
        if name not in self.objects:
            return web.json_response({"error": {"code": 404}}, status=404)
        if request.query.get("alt") == "media":
            return web.Response(body=self.objects[name])
        return web.json_response({"name": name, "md5Hash": "x"})

    async def serve(self, scenario):
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/upload/storage/v1/b/{bucket}/o", self.handle)
        app.router.add_get("/storage/v1/b/{bucket}/o/{name}", self.handle)
        runner, port = await serve_locally(app)
        try:
            return await scenario(f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()


@pytest.mark.parametrize("status", [503, 429, 409])
def test_transient_failures_are_retried(monkeypatch: pytest.MonkeyPatch, status: int):
    monkeypatch.setattr(blobstore, "_RETRY_FIRST_DELAY", 0.01)
    flaky = _FlakyGcs(status, failures=2)

    async def scenario(endpoint: str):
        store = GcsBlobStore(StorageSettings(bucket="b", endpoint=endpoint), retry_timeout=10)
        try:
            await store.put("gs://b/x", b"data")
            return await store.get("gs://b/x")
        finally:
            await store.close()

    assert run(flaky.serve(scenario)) == b"data"
    # Two refusals, then the call that worked: for the write and for the read.
    assert flaky.calls == {"POST /upload/storage/v1/b/b/o": 3, "GET /storage/v1/b/b/o/x": 3}


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        (503, Code.UNAVAILABLE, "blob store failed to write"),  # retried until the deadline
        (403, Code.INTERNAL, "blob store refused to write"),  # our identity: not retried
        (400, Code.INTERNAL, "blob store failed to write"),
    ],
)
def test_failures_that_persist_map_to_codes(
    monkeypatch: pytest.MonkeyPatch, status: int, code: Code, text: str
):
    monkeypatch.setattr(blobstore, "_RETRY_FIRST_DELAY", 0.01)
    flaky = _FlakyGcs(status, failures=1000)

    async def scenario(endpoint: str):
        store = GcsBlobStore(StorageSettings(bucket="b", endpoint=endpoint), retry_timeout=0.3)
        try:
            with pytest.raises(AdminError) as caught:
                await store.put("gs://b/x", b"data")
            return caught.value
        finally:
            await store.close()

    error = run(flaky.serve(scenario))
    assert error.code == code
    assert error.message.startswith(text)
    tries = flaky.calls["POST /upload/storage/v1/b/b/o"]
    assert tries > 1 if status == 503 else tries == 1


def test_not_configured_fails_at_first_use_not_at_construction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # Real GCS without a key file falls back to application default credentials: point them
    # at a missing file so the lookup fails at once, without probing a metadata server.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    cases = [
        (StorageSettings(bucket=""), "set storage.bucket"),
        (StorageSettings(), "set storage.endpoint (an emulator) or storage.credentials_file"),
        (StorageSettings(credentials_file=str(tmp_path / "nope.json")), "nope.json"),
    ]
    for settings, detail in cases:
        blobs = GcsBlobStore(settings)  # no I/O, no error
        with pytest.raises(AdminError) as caught:
            run(blobs.put("gs://b/x", b"x"))
        assert caught.value.code == Code.UNAVAILABLE
        assert caught.value.message.startswith("blob store not configured: ")
        assert detail in caught.value.message
        run(blobs.close())


def test_signing_needs_a_key(monkeypatch: pytest.MonkeyPatch, storage_settings: StorageSettings):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    blobs = GcsBlobStore(dataclasses.replace(storage_settings, credentials_file=""))
    with pytest.raises(AdminError) as caught:
        blobs.signed_url(blobs.uri_for("x"), method="GET", expires_in=timedelta(minutes=1))
    assert caught.value.code == Code.UNAVAILABLE
    assert "signed URLs need storage.credentials_file" in caught.value.message
    run(blobs.close())


# ------------------------------------------------------------------------------ URIs and offload


def test_uri_for_and_parse_uri(store: GcsBlobStore, storage_settings: StorageSettings):
    base = f"gs://{storage_settings.bucket}/{storage_settings.prefix}"
    assert store.uri_for("p", "d/exec", "inputs") == f"{base}/p/d/exec/inputs"
    assert store.uri_for("/p/", "", "d//x") == f"{base}/p/d/x"  # empty segments dropped
    assert parse_uri(f"{base}/p/d") == (storage_settings.bucket, f"{storage_settings.prefix}/p/d")
    for parts in [(), ("",), ("p", ".."), ("./x",)]:
        with pytest.raises(AdminError) as caught:
            store.uri_for(*parts)
        assert caught.value.code == Code.INVALID_ARGUMENT
    for uri in ["s3://b/x", "gs://b", "gs://b/", "gs:///x", "b/x"]:
        with pytest.raises(AdminError, match="not a gs:// object URI"):
            parse_uri(uri)


def test_store_payload_offloads_only_above_the_threshold(store: GcsBlobStore):
    threshold = 1000

    async def scenario():
        at = os.urandom(threshold)
        assert await store_payload(store, at, threshold, "p", "at") is None
        assert not await store.exists(store.uri_for("p", "at"))  # nothing written

        above = os.urandom(threshold + 1)
        uri = await store_payload(store, above, threshold, "p", "above")
        assert uri == store.uri_for("p", "above")
        assert await store.get(uri) == above

        # Literals never stay inline: threshold -1 offloads even an empty payload.
        uri = await store_payload(store, b"", -1, "p", "literal")
        assert uri == store.uri_for("p", "literal")
        assert await store.get(uri) == b""

    run(scenario())


# ------------------------------------------------------------------------------ signed URLs


def test_signed_put_then_get_over_http(
    store: GcsBlobStore, gcs: GcsEmulator, storage_settings: StorageSettings
):
    uri = store.uri_for("uploads", "file.bin")
    data = os.urandom(MiB + 3)
    md5 = hashlib.md5(data).digest()
    put_url, put_headers = store.signed_url(
        uri,
        method="PUT",
        expires_in=timedelta(minutes=10),
        content_md5=md5,
        content_type="application/octet-stream",
    )
    bucket, name = parse_uri(uri)
    assert put_url.startswith(f"{gcs.endpoint}/{bucket}/{name}?")
    assert put_headers == {
        "Content-MD5": base64.b64encode(md5).decode(),
        "Content-Type": "application/octet-stream",
    }
    verify_v4(put_url, method="PUT", headers=put_headers, credentials_file=gcs.credentials_file)
    http(put_url, "PUT", data, put_headers)
    assert run(store.get(uri)) == data

    get_url, get_headers = store.signed_url(uri, method="get", expires_in=timedelta(seconds=60))
    assert get_headers == {}
    verify_v4(get_url, method="GET", headers=get_headers, credentials_file=gcs.credentials_file)
    assert http(get_url) == data


def _flip_last_hex_digit(url: str) -> str:
    return url[:-1] + ("0" if url[-1] != "0" else "1")


@pytest.fixture
def other_key(tmp_path: Path) -> Path:
    path = tmp_path / "other.json"
    write_service_account_key(path)
    return path


def _signed_at(url: str) -> datetime:
    date = dict(parse_qsl(urlsplit(url).query))["X-Goog-Date"]
    return datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


ON_TIME = timedelta(seconds=1)


@pytest.mark.parametrize(
    "mutation, reason",
    [
        (lambda u, h, k, o: (u, "GET", h, k, ON_TIME), "bad signature"),
        (lambda u, h, k, o: (u, "PUT", {**h, "Content-MD5": "AAAA"}, k, ON_TIME), "bad signature"),
        (
            lambda u, h, k, o: (u, "PUT", {**h, "Content-Type": "text/plain"}, k, ON_TIME),
            "bad signature",
        ),
        (
            lambda u, h, k, o: (u, "PUT", {"Content-Type": h["Content-Type"]}, k, ON_TIME),
            "not sent",
        ),
        (lambda u, h, k, o: (_flip_last_hex_digit(u), "PUT", h, k, ON_TIME), "bad signature"),
        (lambda u, h, k, o: (u.replace("/up/", "/uP/"), "PUT", h, k, ON_TIME), "bad signature"),
        (lambda u, h, k, o: (u + "&x=1", "PUT", h, k, ON_TIME), "bad signature"),
        (lambda u, h, k, o: (u, "PUT", h, o, ON_TIME), "bad signature"),
        (lambda u, h, k, o: (u, "PUT", h, k, timedelta(seconds=61)), "expired"),
        (lambda u, h, k, o: (u, "PUT", h, k, -timedelta(minutes=6)), "in the future"),
    ],
    ids=[
        "method",
        "content-md5",
        "content-type",
        "md5-missing",
        "signature",
        "path",
        "query",
        "other-key",
        "expired",
        "future",
    ],
)
def test_verifier_rejects_what_gcs_would(
    store: GcsBlobStore, gcs: GcsEmulator, other_key: Path, mutation, reason: str
):
    data = b"payload"
    url, headers = store.signed_url(
        store.uri_for("up", "x"),
        method="PUT",
        expires_in=timedelta(seconds=60),
        content_md5=hashlib.md5(data).digest(),
        content_type="application/octet-stream",
    )
    key, signed_at = gcs.credentials_file, _signed_at(url)
    for control in (timedelta(0), timedelta(seconds=60), -timedelta(minutes=4)):
        verify_v4(url, method="PUT", headers=headers, credentials_file=key, now=signed_at + control)
    verify_v4(url, method="PUT", headers=headers, credentials_file=key)  # now
    bad_url, method, bad_headers, bad_key, offset = mutation(url, headers, key, other_key)
    with pytest.raises(SignatureRejected, match=reason):
        verify_v4(
            bad_url,
            method=method,
            headers=bad_headers,
            credentials_file=bad_key,
            now=signed_at + offset,
        )


def test_signed_urls_point_at_the_public_endpoint(
    storage_settings: StorageSettings, gcs: GcsEmulator
):
    port = gcs.endpoint.rsplit(":", 1)[1]
    public = f"http://localhost:{port}"
    blobs = GcsBlobStore(dataclasses.replace(storage_settings, public_endpoint=public + "/"))
    try:
        url, headers = blobs.signed_url(
            blobs.uri_for("pub"), method="GET", expires_in=timedelta(minutes=1)
        )
        assert url.startswith(f"{public}/{storage_settings.bucket}/")
        verify_v4(url, method="GET", headers=headers, credentials_file=gcs.credentials_file)
        # The host is signed: the same URL presented for another host fails.
        moved = url.replace(public, gcs.endpoint)
        with pytest.raises(SignatureRejected, match="bad signature"):
            verify_v4(moved, method="GET", headers=headers, credentials_file=gcs.credentials_file)
    finally:
        run(blobs.close())


@pytest.mark.parametrize("expires_in", [timedelta(0), timedelta(days=7, seconds=1)])
def test_signed_url_lifetime_is_bounded(store: GcsBlobStore, expires_in: timedelta):
    with pytest.raises(AdminError) as caught:
        store.signed_url(store.uri_for("x"), method="GET", expires_in=expires_in)
    assert caught.value.code == Code.INVALID_ARGUMENT
