"""The data proxy (spec §13.1): signed URLs through which clients upload to and download from
the blob store without credentials of their own.

CreateUploadLocation serves fast registration (`pyflyte register` PUTs its tarball to the
signed URL, and tasks later read it through ``native_url``) and flytekit's remote file uploads.
CreateDownloadLocation (deprecated) signs a GET for a ``gs://`` URI. CreateDownloadLink signs a
GET for a node execution's deck; GetData resolves a ``flyte://v1/...`` URL (the ``flyte_urls`` of
GetNodeExecutionData / GetTaskExecutionData) to a literal map, one literal, or a deck's signed URL.

Deliberate differences from flyteadmin: the project must exist and be active and the domain
known (flyteadmin checks neither here), ``content_md5`` must be a 16-byte digest, and a lifetime
shorter than one second is InvalidArgument (flyteadmin signs it and fails, or hands out a dead
URL).
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flyteidl.core import identifier_pb2
from flyteidl.service import dataproxy_pb2
from google.protobuf import duration_pb2

from flyteadmin.core.blobstore import BlobStore, object_name_problem, parse_uri
from flyteadmin.core.config import DataProxySettings
from flyteadmin.core.errors import (
    AdminError,
    already_exists,
    invalid_argument,
    not_found,
    quoted,
)
from flyteadmin.core.projects import Projects
from flyteadmin.core.timestamps import stamp

# The custom-metadata key flytekit and flyteadmin's signers use (stow.FlyteContentMD5).
MD5_METADATA_KEY = "flyteContentMD5"
MD5_METADATA_HEADER = "x-goog-meta-" + MD5_METADATA_KEY
# What k8s.io/apimachinery's rand.String draws from (no vowels, no look-alikes).
FILE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_PROTO_DURATION_SECONDS = 315_576_000_000
NANOS = 1_000_000_000
_SEGMENT = r"[a-zA-Z0-9_-]+"
# flyteadmin's two forms (pkg/common/flyte_url.go): a whole map (or a deck), or one literal.
_FLYTE_URL = re.compile(
    rf"flyte://v1/(?P<project>{_SEGMENT})/(?P<domain>{_SEGMENT})/(?P<exec>{_SEGMENT})/"
    rf"(?P<node>{_SEGMENT})(?:/(?P<attempt>[0-9]+))?/"
    rf"(?:(?P<kind>[iod])|(?P<named_kind>[io])/(?P<name>{_SEGMENT}))"
)
DECK = dataproxy_pb2.ARTIFACT_TYPE_DECK


class DataProxy:
    def __init__(
        self,
        blobs: BlobStore,
        projects: Projects,
        settings: DataProxySettings,
        events: Any = None,  # core.events.service.Events: node and task execution reads
    ) -> None:
        self._blobs = blobs
        self._projects = projects
        self._settings = settings
        self._events = events

    async def create_upload_location(
        self, request: dataproxy_pb2.CreateUploadLocationRequest
    ) -> dataproxy_pb2.CreateUploadLocationResponse:
        if not request.project or not request.domain:
            raise invalid_argument("project and domain are required parameters")
        if not request.filename_root and not request.content_md5:
            raise invalid_argument("content_md5 or filename_root is a required parameter")
        md5 = request.content_md5
        if md5 and len(md5) != 16:
            # GCS would refuse the PUT anyway; say so before the client uploads.
            raise invalid_argument(f"content_md5 must be a 16-byte MD5 digest, got {len(md5)}")
        lifetime = self._upload_lifetime(request)
        self._projects.check_project_domain(request.project, request.domain)

        upload = self._settings.upload
        root = request.filename_root or base64.b32encode(md5).decode()
        filename = request.filename or _random_name(upload.default_file_name_length)
        # uri_for drops empty segments (an unset org) and refuses "." and "..".
        uri = self._blobs.uri_for(
            upload.storage_prefix, request.org, request.project, request.domain, root, filename
        )
        _check_object_name(uri, "filename_root and filename")
        if request.filename and request.filename_root:
            # A caller-chosen full path may already hold someone's object: only a re-upload of
            # the same bytes may overwrite it. Best effort, like flyteadmin: two racing
            # uploads of different content can both pass.
            await self._check_overwrite(uri, md5)

        md5_b64 = base64.b64encode(md5).decode() if md5 else None
        extra = (
            {MD5_METADATA_HEADER: md5_b64} if md5_b64 and request.add_content_md5_metadata else {}
        )
        now = datetime.now(UTC)
        url, headers = self._blobs.signed_url(
            uri,
            method="PUT",
            expires_in=lifetime,
            content_md5=md5 or None,
            headers=extra,
        )
        return dataproxy_pb2.CreateUploadLocationResponse(
            signed_url=url,
            native_url=uri,
            expires_at=stamp(now + lifetime),
            headers=headers,
        )

    async def create_download_location(
        self, request: dataproxy_pb2.CreateDownloadLocationRequest
    ) -> dataproxy_pb2.CreateDownloadLocationResponse:
        lifetime = self._download_lifetime(request)
        try:
            parse_uri(request.native_url)
        except AdminError as exc:
            raise invalid_argument(
                "error while validating request: failed to parse native_url "
                f"[{quoted(request.native_url)}]"
            ) from exc
        _check_object_name(request.native_url, "native_url")
        now = datetime.now(UTC)
        url, _ = self._blobs.signed_url(request.native_url, method="GET", expires_in=lifetime)
        return dataproxy_pb2.CreateDownloadLocationResponse(
            signed_url=url, expires_at=stamp(now + lifetime)
        )

    async def create_download_link(
        self, request: dataproxy_pb2.CreateDownloadLinkRequest
    ) -> dataproxy_pb2.CreateDownloadLinkResponse:
        """A signed GET for a node execution's deck (the only artifact type and source)."""
        lifetime = self._download_lifetime(request)
        if request.artifact_type != DECK:
            raise invalid_argument(
                "error while validating request. Error: invalid artifact type "
                f"[{request.artifact_type}]: only ARTIFACT_TYPE_DECK is supported"
            )
        if not request.HasField("node_execution_id"):
            raise invalid_argument(
                "error while validating request. Error: source is required: node_execution_id"
            )
        node = (await self._events.find_node(request.node_execution_id))[0].value.node
        uri = node.closure.deck_uri
        if not uri:
            raise not_found(
                f"no deckUrl found for node execution [{_describe_node(request.node_execution_id)}]"
            )
        try:
            parse_uri(uri)
        except AdminError:
            raise not_found(f"deck [{uri}] is not in this blob store") from None
        if await self._blobs.stat(uri) is None:
            raise not_found(f"object not found: {uri}")
        now = datetime.now(UTC)
        url, _ = self._blobs.signed_url(uri, method="GET", expires_in=lifetime)
        expires_at = stamp(now + lifetime)
        return dataproxy_pb2.CreateDownloadLinkResponse(
            signed_url=[url],
            expires_at=expires_at,
            pre_signed_urls=dataproxy_pb2.PreSignedURLs(signed_url=[url], expires_at=expires_at),
        )

    async def get_data(
        self, request: dataproxy_pb2.GetDataRequest
    ) -> dataproxy_pb2.GetDataResponse:
        """``flyte://v1/<p>/<d>/<exec>/<node>[/<attempt>]/<i|o|d>[/<literal name>]``: without an
        attempt the node execution's data, with one the data of that retry's task execution."""
        url = request.flyte_url
        if not url:
            raise invalid_argument("flyte_url is required")
        match = _FLYTE_URL.fullmatch(url)
        if match is None:
            raise invalid_argument(
                f"failed to parse flyte url [{url}]: expected "
                "flyte://v1/<project>/<domain>/<execution>/<node>[/<attempt>]/<i|o|d>"
                "[/<literal name>] (a literal name only after i or o)"
            )
        node_id = identifier_pb2.NodeExecutionIdentifier(
            node_id=match["node"],
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project=match["project"], domain=match["domain"], name=match["exec"]
            ),
        )
        kind, name = match["kind"] or match["named_kind"], match["name"] or ""
        attempt = match["attempt"]
        if attempt is None:
            if kind == "d":
                link = await self.create_download_link(
                    dataproxy_pb2.CreateDownloadLinkRequest(
                        artifact_type=DECK, node_execution_id=node_id
                    )
                )
                return dataproxy_pb2.GetDataResponse(pre_signed_urls=link.pre_signed_urls)
            data = await self._events.get_node_data(node_id)
            where = f"node execution [{_describe_node(node_id)}]"
        else:
            if kind == "d":
                raise invalid_argument(
                    "deck type cannot be specified with a retry attempt, just use the node instead"
                )
            task_id = await self._task_execution_id(node_id, int(attempt))
            data = await self._events.get_task_data(task_id)
            where = f"task execution [{_describe_node(node_id)} retry_attempt:{attempt}]"
        literals = data.full_inputs if kind == "i" else data.full_outputs
        if not name:
            return dataproxy_pb2.GetDataResponse(literal_map=literals)
        if name not in literals.literals:
            raise invalid_argument(f"name [{name}] not found in {where}")
        return dataproxy_pb2.GetDataResponse(literal=literals.literals[name])

    async def _task_execution_id(
        self, node: identifier_pb2.NodeExecutionIdentifier, attempt: int
    ) -> identifier_pb2.TaskExecutionIdentifier:
        _, children = await self._events.find_node(node)  # NotFound for an unknown node
        rows = children.tasks_of(node.node_id)
        ids: list[identifier_pb2.TaskExecutionIdentifier] = sorted(
            (r.value.id for r in rows if r.value.id.retry_attempt == attempt),
            key=lambda i: (i.task_id.name, i.task_id.version),
        )
        if not ids:
            raise invalid_argument(
                f"no task executions were listed for [{_describe_node(node)}] with retry "
                f"attempt {attempt}"
            )
        return ids[0]

    # ------------------------------------------------------------------ internals

    async def _check_overwrite(self, uri: str, md5: bytes) -> None:
        info = await self._blobs.stat(uri)
        if info is None:
            return
        # Prefer the digest the uploader recorded; else the one GCS computed (flyteadmin falls
        # back to the ETag, which on GCS's JSON API is not a digest; md5Hash is).
        stored = info.metadata.get(MD5_METADATA_KEY) or info.md5_hash
        if not md5 or not stored or base64.b64encode(md5).decode() != stored:
            raise already_exists(
                f"file already exists at location [{uri}], specify a matching hash if you "
                f"wish to rewrite"
            )

    def _upload_lifetime(self, request: dataproxy_pb2.CreateUploadLocationRequest) -> timedelta:
        maximum = timedelta(seconds=self._settings.upload.max_expires_in_seconds)
        if not request.HasField("expires_in"):
            return maximum
        d = request.expires_in
        if not _valid(d):
            raise invalid_argument(f"expiresIn [{_proto_text(d)}] is invalid")
        duration = d.ToTimedelta()
        if duration > maximum:
            raise invalid_argument(
                f"expiresIn [{go_duration(duration)}] cannot exceed max allowed expiration "
                f"[{go_duration(maximum)}]"
            )
        if duration < timedelta(seconds=1):
            raise invalid_argument(f"expiresIn [{go_duration(duration)}] must be at least 1s")
        return duration

    def _download_lifetime(
        self,
        request: dataproxy_pb2.CreateDownloadLocationRequest
        | dataproxy_pb2.CreateDownloadLinkRequest,
    ) -> timedelta:
        maximum = timedelta(seconds=self._settings.download.max_expires_in_seconds)
        if not request.HasField("expires_in"):
            return maximum
        d = request.expires_in
        prefix = "error while validating request: expiresIn is invalid. Error: input duration"
        if not _valid(d):
            raise invalid_argument(f"{prefix} [{_proto_text(d)}] is invalid")
        duration = d.ToTimedelta()
        shown = go_duration(duration)
        if duration < timedelta(0):
            raise invalid_argument(f"{prefix} [{shown}] should not less than 0")
        if duration > maximum:
            raise invalid_argument(
                f"{prefix} [{shown}] cannot exceed max allowed expiration [{go_duration(maximum)}]"
            )
        if duration < timedelta(seconds=1):
            raise invalid_argument(f"{prefix} [{shown}] must be at least 1s")
        return duration


def _check_object_name(uri: str, what: str) -> None:
    """Refuse what the blob store would refuse, before asking it anything (a very long name
    took the GCS emulator seconds, and real GCS answers 400, which is no client error here)."""
    problem = object_name_problem(parse_uri(uri)[1])
    if problem is not None:
        raise invalid_argument(f"invalid {what}: {problem}")


def _describe_node(ident: identifier_pb2.NodeExecutionIdentifier) -> str:
    ex = ident.execution_id
    return f"project:{ex.project} domain:{ex.domain} name:{ex.name} node_id:{ident.node_id}"


def _random_name(length: int) -> str:
    return "".join(secrets.choice(FILE_NAME_ALPHABET) for _ in range(length))


def _valid(d: duration_pb2.Duration) -> bool:
    """protobuf's Duration.IsValid: in range, and seconds and nanos of one sign."""
    if abs(d.seconds) > MAX_PROTO_DURATION_SECONDS or abs(d.nanos) >= NANOS:
        return False
    return not (d.seconds > 0 and d.nanos < 0 or d.seconds < 0 and d.nanos > 0)


def _proto_text(d: duration_pb2.Duration) -> str:
    return f"seconds:{d.seconds} nanos:{d.nanos}"


def go_duration(value: timedelta) -> str:
    """Go's time.Duration.String (flyteadmin's messages): 1h0m0s, 1m30s, 1.5s, 250ms, 0s."""
    total = (value.days * 86_400 + value.seconds) * NANOS + value.microseconds * 1_000
    sign, total = ("-", -total) if total < 0 else ("", total)
    if total == 0:
        return "0s"
    if total < NANOS:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if total >= size:
                return sign + _decimal(total, size) + unit
    hours, rest = divmod(total, 3600 * NANOS)
    minutes, rest = divmod(rest, 60 * NANOS)
    seconds = _decimal(rest, NANOS) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
