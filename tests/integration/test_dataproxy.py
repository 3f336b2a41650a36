"""DataProxyService on the API server and the GCS emulator: CreateUploadLocation's rules, the
signed URLs (checked by our V4 verifier, since the emulator checks none) used for real PUTs and
GETs, overwrite protection, CreateDownloadLocation, and the HTTP routes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import grpc
import pytest
import requests
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc, dataproxy_pb2, dataproxy_pb2_grpc
from google.protobuf import duration_pb2

from flyteadmin.core.blobstore import GcsBlobStore
from flyteadmin.core.config import StorageSettings
from flyteadmin.core.dataproxy import FILE_NAME_ALPHABET, go_duration
from flyteadmin.devstack.gcs import GcsEmulator
from tests.gcs_signing import SignatureRejected, verify_v4
from tests.integration.conftest import run

PROJECT, DOMAIN = "flytesnacks", "development"
Upload = dataproxy_pb2.CreateUploadLocationRequest
Download = dataproxy_pb2.CreateDownloadLocationRequest
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def proxy(api_server) -> Iterator[dataproxy_pb2_grpc.DataProxyServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        admin_pb2_grpc.AdminServiceStub(channel).RegisterProject(
            project_pb2.ProjectRegisterRequest(
                project=project_pb2.Project(id=PROJECT, name=PROJECT)
            )
        )
        yield dataproxy_pb2_grpc.DataProxyServiceStub(channel)


@pytest.fixture
def store(storage_settings: StorageSettings) -> Iterator[GcsBlobStore]:
    blobs = GcsBlobStore(storage_settings)
    yield blobs
    run(blobs.close())


def error_of(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return info.value.code(), info.value.details()


def seconds(value: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=value))
    return d


def put(url: str, data: bytes, headers: dict[str, str]) -> requests.Response:
    """The upload as flytekit does it: Content-Length and Content-MD5, then the returned map."""
    sent = {"Content-Length": str(len(data))}
    if "Content-MD5" in headers:
        sent["Content-MD5"] = headers["Content-MD5"]
    return requests.put(url, data=data, headers={**sent, **headers}, timeout=30)


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def signed_at(url: str) -> datetime:
    return datetime.strptime(query(url)["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


# ------------------------------------------------------------------------ CreateUploadLocation

MD5 = hashlib.md5(b"x").digest()


@pytest.mark.parametrize(
    "request_, message",
    [
        (Upload(domain=DOMAIN, content_md5=MD5), "project and domain are required parameters"),
        (Upload(project=PROJECT, content_md5=MD5), "project and domain are required parameters"),
        (
            Upload(project=PROJECT, domain=DOMAIN, filename="f"),
            "content_md5 or filename_root is a required parameter",
        ),
        (
            Upload(project=PROJECT, domain=DOMAIN, content_md5=b"abc"),
            "content_md5 must be a 16-byte MD5 digest, got 3",
        ),
        (
            Upload(project=PROJECT, domain=DOMAIN, content_md5=MD5, expires_in=seconds(3601)),
            "expiresIn [1h0m1s] cannot exceed max allowed expiration [1h0m0s]",
        ),
        (
            Upload(
                project=PROJECT,
                domain=DOMAIN,
                content_md5=MD5,
                expires_in=duration_pb2.Duration(seconds=1, nanos=-1),
            ),
            "expiresIn [seconds:1 nanos:-1] is invalid",
        ),
        (
            Upload(project=PROJECT, domain=DOMAIN, content_md5=MD5, expires_in=seconds(0)),
            "expiresIn [0s] must be at least 1s",
        ),
        (
            Upload(project="nope", domain=DOMAIN, content_md5=MD5),
            "failed to validate that project [nope] and domain [development] are registered, "
            "err: [project [nope] not found]",
        ),
        (
            Upload(project=PROJECT, domain="qa", content_md5=MD5),
            "domain [qa] is unrecognized by system",
        ),
        (
            Upload(project=PROJECT, domain=DOMAIN, filename_root="..", filename="f"),
            "invalid blob path",
        ),
        (
            Upload(project=PROJECT, domain=DOMAIN, filename_root="r" * 10_000, filename="f"),
            "invalid filename_root and filename: the object name would have 100",
        ),
        (
            Upload(project=PROJECT, domain=DOMAIN, filename_root="é" * 1_000_000),
            "the object name would have 2000",
        ),
        (
            Upload(project=PROJECT, domain=DOMAIN, filename_root="a\nb", filename="f"),
            "invalid filename_root and filename: the object name would contain a control character",
        ),
    ],
    ids=[
        "no-project",
        "no-domain",
        "no-md5-or-root",
        "short-md5",
        "too-long",
        "invalid-duration",
        "zero-duration",
        "unknown-project",
        "unknown-domain",
        "dot-dot",
        "long-root",
        "megabyte-root",
        "newline",
    ],
)
def test_upload_location_validation(proxy, request_, message):
    code, details = error_of(proxy.CreateUploadLocation, request_)
    assert code == INVALID
    assert message in details


def test_fast_register_upload_is_signed_and_lands_in_the_store(
    proxy, store: GcsBlobStore, gcs: GcsEmulator, storage_settings: StorageSettings
):
    data = os.urandom(300_000)
    md5 = hashlib.md5(data).digest()
    b64 = base64.b64encode(md5).decode()
    filename = f"fast{md5.hex()}.tar.gz"
    before = datetime.now(UTC)
    # What `pyflyte register` sends (reference clients.md §2.1).
    answer = proxy.CreateUploadLocation(
        Upload(
            project=PROJECT,
            domain=DOMAIN,
            filename=filename,
            content_md5=md5,
            add_content_md5_metadata=True,
        )
    )
    root = base64.b32encode(md5).decode()
    assert root.endswith("=")  # padded, like flyteadmin
    bucket, prefix = storage_settings.bucket, storage_settings.prefix
    assert answer.native_url == (
        f"gs://{bucket}/{prefix}/uploads/{PROJECT}/{DOMAIN}/{root}/{filename}"
    )
    assert dict(answer.headers) == {"Content-MD5": b64, "x-goog-meta-flyteContentMD5": b64}
    expires_at = answer.expires_at.ToDatetime(tzinfo=UTC)
    assert before + timedelta(seconds=3599) <= expires_at <= datetime.now(UTC) + timedelta(hours=1)
    url = answer.signed_url
    object_path = f"/{bucket}/{quote(answer.native_url.split('/', 3)[3], safe='/~')}"
    assert url.startswith(f"{gcs.endpoint}{object_path}?")
    assert query(url)["X-Goog-Expires"] == "3600"
    assert query(url)["X-Goog-SignedHeaders"] == "content-md5;host;x-goog-meta-flytecontentmd5"

    key = gcs.credentials_file
    headers = dict(answer.headers)
    verify_v4(url, method="PUT", headers=headers, credentials_file=key)
    at = signed_at(url)
    rejected = [
        (url, "GET", headers, at),  # another method
        (url, "PUT", {**headers, "Content-MD5": base64.b64encode(MD5).decode()}, at),  # other MD5
        (url[:-1] + ("0" if url[-1] != "0" else "1"), "PUT", headers, at),  # tampered signature
        (url.replace(f"/{PROJECT}/", "/other/"), "PUT", headers, at),  # tampered path
        (url, "PUT", headers, at + timedelta(seconds=3601)),  # expired
    ]
    for bad_url, method, bad_headers, now in rejected:
        with pytest.raises(SignatureRejected):
            verify_v4(bad_url, method=method, headers=bad_headers, credentials_file=key, now=now)
    without_metadata = {"Content-MD5": b64}
    with pytest.raises(SignatureRejected, match="not sent"):
        verify_v4(url, method="PUT", headers=without_metadata, credentials_file=key)

    response = put(url, data, headers)
    assert response.status_code in (200, 201), response.text
    assert run(store.get(answer.native_url)) == data


def test_upload_with_filename_root_only_gets_a_random_name(
    proxy, store: GcsBlobStore, gcs: GcsEmulator, storage_settings: StorageSettings
):
    # flytekit's small in-memory writes: only filename_root (and here an org and a lifetime).
    answer = proxy.CreateUploadLocation(
        Upload(
            project=PROJECT,
            domain=DOMAIN,
            org="acme",
            filename_root="root-1",
            expires_in=seconds(60),
        )
    )
    base = f"gs://{storage_settings.bucket}/{storage_settings.prefix}/uploads/acme/"
    head, _, name = answer.native_url.rpartition("/")
    assert head == base + f"{PROJECT}/{DOMAIN}/root-1"
    assert len(name) == 20 and set(name) <= set(FILE_NAME_ALPHABET)
    assert dict(answer.headers) == {}  # no MD5: nothing to send but the body
    url = answer.signed_url
    assert query(url)["X-Goog-Expires"] == "60"
    verify_v4(url, method="PUT", headers={}, credentials_file=gcs.credentials_file)
    with pytest.raises(SignatureRejected, match="expired"):
        verify_v4(
            url,
            method="PUT",
            headers={},
            credentials_file=gcs.credentials_file,
            now=signed_at(url) + timedelta(seconds=61),
        )
    assert put(url, b"small", {}).status_code in (200, 201)
    assert run(store.get(answer.native_url)) == b"small"
    # Two such requests never share a name.
    again = proxy.CreateUploadLocation(Upload(project=PROJECT, domain=DOMAIN, filename_root="r"))
    assert again.native_url.rsplit("/", 1)[1] != name


def test_a_chosen_path_is_only_rewritten_with_the_same_content(proxy, store: GcsBlobStore):
    data = b"first version"
    md5 = hashlib.md5(data).digest()
    other = hashlib.md5(b"second version").digest()

    def request(**extra) -> dataproxy_pb2.CreateUploadLocationRequest:
        return Upload(project=PROJECT, domain=DOMAIN, filename_root="fixed", **extra)

    first = proxy.CreateUploadLocation(request(filename="a.txt", content_md5=md5))
    assert put(first.signed_url, data, dict(first.headers)).status_code in (200, 201)

    # The same bytes again (a repeated `pyflyte register`): allowed, same place.
    again = proxy.CreateUploadLocation(request(filename="a.txt", content_md5=md5))
    assert again.native_url == first.native_url
    message = (
        f"file already exists at location [{first.native_url}], specify a matching hash if you "
        f"wish to rewrite"
    )
    # Other bytes, or no hash to compare: refused.
    for refused in (request(filename="a.txt", content_md5=other), request(filename="a.txt")):
        assert error_of(proxy.CreateUploadLocation, refused) == (
            grpc.StatusCode.ALREADY_EXISTS,
            message,
        )
    # Without a filename the path is not the caller's choice: no check.
    proxy.CreateUploadLocation(request(content_md5=other))
    # Another file under the same root is new.
    proxy.CreateUploadLocation(request(filename="b.txt", content_md5=other))
    assert run(store.get(first.native_url)) == data


# ---------------------------------------------------------------------- CreateDownloadLocation


def test_download_location_signs_a_get(proxy, store: GcsBlobStore, gcs: GcsEmulator):
    uri = store.uri_for("some", "object.bin")
    run(store.put(uri, b"contents"))
    answer = proxy.CreateDownloadLocation(Download(native_url=uri))
    url = answer.signed_url
    assert query(url)["X-Goog-Expires"] == "3600"  # the maximum is the default
    verify_v4(url, method="GET", headers={}, credentials_file=gcs.credentials_file)
    with pytest.raises(SignatureRejected):
        verify_v4(url, method="PUT", headers={}, credentials_file=gcs.credentials_file)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"contents"

    short = proxy.CreateDownloadLocation(Download(native_url=uri, expires_in=seconds(90)))
    assert query(short.signed_url)["X-Goog-Expires"] == "90"
    expires_at = short.expires_at.ToDatetime(tzinfo=UTC)
    assert abs(expires_at - datetime.now(UTC) - timedelta(seconds=90)) < timedelta(seconds=30)


@pytest.mark.parametrize(
    "request_, message",
    [
        (
            Download(native_url="gs://b/k", expires_in=seconds(7200)),
            "error while validating request: expiresIn is invalid. Error: input duration "
            "[2h0m0s] cannot exceed max allowed expiration [1h0m0s]",
        ),
        (
            Download(native_url="gs://b/k", expires_in=seconds(-1)),
            "error while validating request: expiresIn is invalid. Error: input duration "
            "[-1s] should not less than 0",
        ),
        (
            Download(native_url="s3://b/k"),
            "error while validating request: failed to parse native_url [s3://b/k]",
        ),
        (Download(), "error while validating request: failed to parse native_url []"),
        (
            Download(native_url="gs://b/" + "k" * 2000),
            "invalid native_url: the object name would have 2000 bytes, at most 1024",
        ),
    ],
    ids=["too-long", "negative", "not-gcs", "empty", "long-name"],
)
def test_download_location_validation(proxy, request_, message):
    assert error_of(proxy.CreateDownloadLocation, request_) == (INVALID, message)


def test_execution_data_rpcs_check_their_requests(proxy):
    # Served with executions: tests/integration/test_dataproxy_data.py.
    code, message = error_of(proxy.CreateDownloadLink, dataproxy_pb2.CreateDownloadLinkRequest())
    assert code == INVALID and "invalid artifact type" in message
    code, message = error_of(proxy.GetData, dataproxy_pb2.GetDataRequest(flyte_url="flyte://v1/"))
    assert code == INVALID and "failed to parse flyte url" in message


# ------------------------------------------------------------------------------------ HTTP


def http(api_server, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_server.http_port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Accept": "application/json", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_http_routes(proxy, api_server, store: GcsBlobStore, gcs: GcsEmulator):
    data = b"over http"
    md5 = hashlib.md5(data).digest()
    b64 = base64.b64encode(md5).decode()
    body = {"project": PROJECT, "domain": DOMAIN, "filename": "h.tar.gz", "content_md5": b64}
    status, answer = http(api_server, "POST", "/api/v1/dataproxy/artifact_urn", body)
    assert status == 200, answer
    assert answer["native_url"].endswith(f"/{base64.b32encode(md5).decode()}/h.tar.gz")
    assert answer["headers"] == {"Content-MD5": b64}
    verify_v4(
        answer["signed_url"],
        method="PUT",
        headers=answer["headers"],
        credentials_file=gcs.credentials_file,
    )
    assert put(answer["signed_url"], data, answer["headers"]).status_code in (200, 201)
    assert run(store.get(answer["native_url"])) == data

    status, error = http(api_server, "POST", "/api/v1/dataproxy/artifact_urn", {"project": PROJECT})
    assert status == 400
    assert error["code"] == 3
    assert error["message"] == "project and domain are required parameters"

    path = f"/api/v1/dataproxy/artifact_urn?native_url={quote(answer['native_url'])}&expires_in=90s"
    status, download = http(api_server, "GET", path)
    assert status == 200, download
    assert query(download["signed_url"])["X-Goog-Expires"] == "90"
    with urllib.request.urlopen(download["signed_url"], timeout=10) as response:
        assert response.read() == data


# ------------------------------------------------------------------------- message formatting


@pytest.mark.parametrize(
    "value, text",
    [
        (timedelta(hours=1), "1h0m0s"),
        (timedelta(hours=2, seconds=1), "2h0m1s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(0), "0s"),
        (timedelta(seconds=-1), "-1s"),
    ],
)
def test_durations_read_like_go(value: timedelta, text: str):
    assert go_duration(value) == text
