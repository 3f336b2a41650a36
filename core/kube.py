"""The one door to the Kubernetes API: client construction, CRD installation, error mapping.

The official ``kubernetes`` client is synchronous; the store runs its calls in a bounded thread
pool. Every ``ApiException`` that reaches a caller is translated here, from one table.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from flyteadmin.core import crds, http1, metrics, tracing
from flyteadmin.core.errors import AdminError, Code


def api_client(kubeconfig: str = "", pool_size: int = 16, context: str = "") -> client.ApiClient:
    """From ``kubeconfig`` (its ``context``, default the current one); else in-cluster when
    running in a Pod; else $KUBECONFIG/~/.kube."""
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(
            config_file=kubeconfig, context=context or None, client_configuration=configuration
        )
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


def watch_client(api: client.ApiClient) -> client.ApiClient:
    """A client on ``api``'s configuration whose requests never retry inside urllib3.

    urllib3's default retries sleep (honouring Retry-After, e.g. kube-apiserver's 429 while a
    new kind's watch cache initialises) where nothing can wake them: a watch thread asleep there
    cannot be stopped, and one that wakes during interpreter exit aborts the process (CPython
    3.11 ends such daemon threads with pthread_exit). The store's list+watch loop retries itself,
    with waits that ``stop()`` interrupts."""
    configuration = copy.copy(api.configuration)
    configuration.retries = False
    return client.ApiClient(configuration)


JSON = "application/json"
USER_AGENT = "flyteadmin"
"""Also the field manager kube-apiserver records for the objects this client creates."""

AUTH_REFRESH_SECONDS = 10.0
"""How long ``KubeHttp`` reuses the credentials it read from its client's configuration."""

SYNC_TIMEOUT = (5, 60)
"""(connect, read) seconds of the official client's calls that pass it: without one a cluster
that stopped answering holds the calling thread for ever."""


# HTTP status of a failed Kubernetes call -> code for our client. A 409 is AlreadyExists on a
# create but a lost optimistic-concurrency race on an update; callers of update retry it.
log = logging.getLogger(__name__)

_STATUS_CODES: dict[int, Code] = {
    400: Code.INVALID_ARGUMENT,
    403: Code.INTERNAL,  # our own service account lacks a permission: an operator problem
    404: Code.NOT_FOUND,
    409: Code.ABORTED,
    410: Code.ABORTED,
    422: Code.INVALID_ARGUMENT,
    429: Code.UNAVAILABLE,
}


# An object too large for etcd, passed on by kube-apiserver as a 500: etcd's answer (over its
# --max-request-bytes, 1.5 MiB by default), or, over 2 MiB, kube-apiserver's own etcd client's
# (grpc-go refuses to send it).
_TOO_LARGE = ("request is too large", "trying to send message larger than max")
ETCD_FULL = "database space exceeded"  # etcd's "mvcc: database space exceeded"


class KubeError(Exception):
    """A failed call to the Kubernetes API: its HTTP status and the Status message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def status_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body or "{}").get("message") or str(exc.reason)
    except ValueError:
        return str(exc.reason)


def translate(exc: ApiException | KubeError, *, creating: bool = False) -> AdminError:
    """The one mapping from a Kubernetes failure to the status our client sees."""
    if isinstance(exc, KubeError):
        status, message = exc.status, exc.message
    else:
        status, message = exc.status or 0, status_message(exc)
    if ETCD_FULL in message:
        # etcd's NOSPACE alarm: the whole cluster refuses writes until an operator frees space
        # (core/budget.py exists to keep us from getting here). Not UNAVAILABLE: clients must
        # not retry into it.
        log.error("etcd is out of space (%s): compact, defragment and disarm its alarm", message)
        return AdminError(Code.RESOURCE_EXHAUSTED, f"kubernetes API: {message}")
    if status == 409 and creating:
        code = Code.ALREADY_EXISTS
    elif status == 413 or any(m in message for m in _TOO_LARGE):
        # The object is more than kube-apiserver (3 MiB) or etcd (1.5 MiB by default) takes:
        # the request's fault, and retrying it cannot help (UNAVAILABLE would say it might).
        return AdminError(
            Code.RESOURCE_EXHAUSTED, f"kubernetes API: the object is too large to store: {message}"
        )
    elif status in _STATUS_CODES:
        code = _STATUS_CODES[status]
    else:
        code = Code.UNAVAILABLE if status >= 500 or not status else Code.INTERNAL
    return AdminError(code, f"kubernetes API: {message}")


def decode_response(status: int, reason: str, text: str | bytes) -> dict[str, Any]:
    """A Kubernetes API answer as JSON; a status of 400 or more raises KubeError with the
    server's message (or the HTTP reason when the body has none)."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {"message": (text if isinstance(text, str) else text.decode(errors="replace"))[:500]}
    if status >= 400:
        message = data.get("message") if isinstance(data, dict) else None
        raise KubeError(status, message or reason)
    return data


def ssl_context(cfg: client.Configuration) -> ssl.SSLContext | None:
    """TLS as the client's configuration says (None for an http:// host)."""
    if not cfg.host.startswith("https"):
        return None
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx


def auth_headers(cfg: client.Configuration) -> dict[str, str]:
    """The headers the client's configuration authenticates with (its refresh hook runs)."""
    settings: dict[str, Any] = dict(cfg.auth_settings())
    return {
        auth["key"]: auth["value"]
        for auth in settings.values()
        if auth.get("in") == "header" and auth.get("value")
    }


class KubeHttp:
    """An asyncio client for the Kubernetes REST API, with the credentials of ``api``.

    The store's writes and the operator's calls go through it: a request over its transport
    (core/http1.py) costs about half the CPU of an aiohttp request (which cost about half the
    official, synchronous, client's), and needs no thread per request in flight. It is bound to
    the event loop it is first used on; ``close()`` it on that loop. ``timeout`` bounds a whole
    call, ``connect_timeout`` opening a connection.
    """

    def __init__(
        self,
        api: client.ApiClient,
        max_connections: int = 16,
        timeout: float = 60.0,
        connect_timeout: float | None = None,
    ) -> None:
        self._cfg = api.configuration
        self._max_connections = max_connections
        self._timeout, self._connect_timeout = timeout, connect_timeout
        self._url = url = urlsplit(self._cfg.host)
        self._base = url.path.rstrip("/")  # a host URL with a path (a proxy's, e.g. Rancher's)
        self._host_line = f"Host: {url.netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
        self._pool: http1.Http1Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._auth_lines: str | None = None
        self._auth_read_at = 0.0

    def _pool_for_loop(self) -> http1.Http1Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None:
            url, tls = self._url, ssl_context(self._cfg)
            self._pool = http1.Http1Pool(
                url.hostname or "localhost",
                url.port or (443 if tls is not None else 80),
                tls,
                server_hostname=getattr(self._cfg, "tls_server_name", None) or None,
                max_connections=self._max_connections,
                timeout=self._timeout,
                connect_timeout=self._connect_timeout,
            )
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("KubeHttp is bound to another event loop")
        return self._pool

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = ""
    ) -> dict[str, Any]:
        """``content_type`` for a body that is not plain JSON (e.g. a merge patch)."""
        status, reason, data = await self._call(method, path, body, content_type=content_type)
        return decode_response(status, reason, data)

    async def send(self, method: str, path: str, body: Any = None) -> None:
        """``request`` for a caller that needs no answer: a successful body (a created
        FlyteWorkflow is ~5 KB) is not parsed."""
        status, reason, data = await self._call(method, path, body)
        if status >= 400:
            decode_response(status, reason, data)  # raises KubeError with the server's message

    async def request_sized(
        self, method: str, path: str, body: Any = None
    ) -> tuple[dict[str, Any], int]:
        """``request``, and the answer's JSON size in bytes (what the object costs in etcd,
        measured without encoding the object again; without the final newline kube-apiserver
        adds, so that it equals the object's size on a watch line)."""
        status, reason, data = await self._call(method, path, body)
        return decode_response(status, reason, data), len(data.removesuffix(b"\n"))

    async def request_text(
        self,
        method: str,
        path: str,
        body: Any = None,
        accept: str = JSON,
        content_type: str = "",
    ) -> tuple[int, str, str]:
        """The raw answer: HTTP status, reason and body text."""
        status, reason, data = await self._call(method, path, body, accept, content_type)
        return status, reason, data.decode()

    async def _call(
        self, method: str, path: str, body: Any, accept: str = JSON, content_type: str = ""
    ) -> http1.Answer:
        pool = self._pool_for_loop()
        target = pool.target(self._base + path)
        head = f"{method} {target} HTTP/1.1\r\n{self._host_line}{self._auth_header_lines()}"
        head += f"Accept: {accept}\r\n"
        payload = b""
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            head += f"Content-Type: {content_type or JSON}\r\n"
            head += f"Content-Length: {len(payload)}\r\n"
        started, status = time.monotonic(), 0
        traced: dict[str, str] = {}
        with tracing.kube_span(method, path, traced) as span:
            for name, value in traced.items():  # the trace context, when tracing is on
                head += f"{name}: {value}\r\n"
            try:
                answer = await pool.request(method, (head + "\r\n").encode() + payload)
                status = answer[0]
            except http1.HttpError as exc:
                raise KubeError(0, f"cannot reach the Kubernetes API: {exc}") from exc
            finally:
                metrics.kube_call(method, path, status, time.monotonic() - started)
                tracing.set_status(span, status)
        return answer

    def _auth_header_lines(self) -> str:
        """The client's own auth headers, re-read every ``AUTH_REFRESH_SECONDS``: in a Pod the
        service-account token is rotated on disk (long before the old one expires) and the
        client's refresh hook reloads it; the hook costs ~45 µs, too much for every call."""
        now = time.monotonic()
        if self._auth_lines is None or now - self._auth_read_at >= AUTH_REFRESH_SECONDS:
            headers = auth_headers(self._cfg)
            self._auth_lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            self._auth_read_at = now
        return self._auth_lines

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def apply_crds(
    api: client.ApiClient, timeout: float = 60.0, *, flyteworkflow: bool = False, store: bool = True
) -> None:
    """Create or update every CRD of ``core.crds`` (``store=False``: none, as a data-plane
    cluster needs) and, with ``flyteworkflow``, create propeller's FlyteWorkflow CRD if the
    cluster has none; wait until each is Established."""
    from flyteadmin.core.flyteworkflow import crd as fw_crd

    ext = client.ApiextensionsV1Api(api)
    # Any: the client takes a plain dict where its annotations name a model class.
    manifests: list[Any] = [kind.manifest() for kind in crds.KINDS] if store else []
    if flyteworkflow:
        manifests.append(fw_crd.manifest())
    for body in manifests:
        name = body["metadata"]["name"]
        try:
            current = ext.read_custom_resource_definition(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            ext.create_custom_resource_definition(body)
        else:
            if name == fw_crd.NAME:
                continue  # propeller's own (e.g. from its chart) is kept as it is
            assert current.metadata is not None  # a stored object has metadata
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, body)
    deadline = time.monotonic() + timeout
    for name in (m["metadata"]["name"] for m in manifests):
        while True:
            crd = ext.read_custom_resource_definition(name)
            conditions = (crd.status and crd.status.conditions) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout}s")
            time.sleep(0.1)


def ensure_namespace(
    api: client.ApiClient, name: str, labels: dict[str, str] | None = None
) -> bool:
    """Create ``name`` if absent (True when created); an existing namespace is left alone."""
    core = client.CoreV1Api(api)
    try:
        body: Any = {"metadata": {"name": name, "labels": labels or {}}}  # the client takes a dict
        core.create_namespace(body)
        return True
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise


def manifests_dir() -> Path:
    return crds.MANIFEST_DIRS[0]
