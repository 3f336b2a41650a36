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

import aiohttp
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from flyteadmin.core import crds, metrics, tracing
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


_TOO_LARGE = "request is too large"  # etcd's answer, passed on by kube-apiserver as a 500
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
    elif status == 413 or _TOO_LARGE in message:
        # The object is more than kube-apiserver (3 MiB) or etcd (1.5 MiB by default) takes:
        # the request's fault, and retrying it cannot help (UNAVAILABLE would say it might).
        code = Code.RESOURCE_EXHAUSTED
    elif status in _STATUS_CODES:
        code = _STATUS_CODES[status]
    else:
        code = Code.UNAVAILABLE if status >= 500 or not status else Code.INTERNAL
    return AdminError(code, f"kubernetes API: {message}")


def decode_response(status: int, reason: str, text: str) -> dict[str, Any]:
    """A Kubernetes API answer as JSON; a status of 400 or more raises KubeError with the
    server's message (or the HTTP reason when the body has none)."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {"message": text[:500]}
    if status >= 400:
        message = data.get("message") if isinstance(data, dict) else None
        raise KubeError(status, message or reason)
    return data


class KubeHttp:
    """An asyncio client for the Kubernetes REST API, with the credentials of ``api``.

    The store's writes go through it: an aiohttp request costs about half the CPU of the
    official (synchronous, urllib3) client's, and needs no thread per request in flight. It is
    bound to the event loop it is first used on; ``close()`` it on that loop.
    """

    def __init__(
        self,
        api: client.ApiClient,
        max_connections: int = 16,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        self._cfg = api.configuration
        self._max_connections = max_connections
        self._timeout = timeout or aiohttp.ClientTimeout(total=60)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._auth: dict[str, str] | None = None
        self._auth_read_at = 0.0

    def _ssl(self) -> ssl.SSLContext | bool:
        cfg = self._cfg
        if not cfg.host.startswith("https"):
            return False
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if not cfg.verify_ssl:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        return ctx

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("KubeHttp is bound to another event loop")
        return self._session

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = ""
    ) -> dict[str, Any]:
        """``content_type`` for a body that is not plain JSON (e.g. a merge patch)."""
        status, reason, text = await self.request_text(
            method, path, body, content_type=content_type
        )
        return decode_response(status, reason, text)

    async def send(self, method: str, path: str, body: Any = None) -> None:
        """``request`` for a caller that needs no answer: a successful body (a created
        FlyteWorkflow is ~5 KB) is not parsed."""
        status, reason, text = await self.request_text(method, path, body)
        if status >= 400:
            decode_response(status, reason, text)  # raises KubeError with the server's message

    async def request_sized(
        self, method: str, path: str, body: Any = None
    ) -> tuple[dict[str, Any], int]:
        """``request``, and the answer's JSON size in bytes (what the object costs in etcd,
        measured without encoding the object again; without the final newline kube-apiserver
        adds, so that it equals the object's size on a watch line)."""
        status, reason, text = await self.request_text(method, path, body)
        return decode_response(status, reason, text), len(text.removesuffix("\n").encode())

    async def request_text(
        self,
        method: str,
        path: str,
        body: Any = None,
        accept: str = "application/json",
        content_type: str = "",
    ) -> tuple[int, str, str]:
        """The raw answer: HTTP status, reason and body text."""
        headers = {"Accept": accept, **self._auth_headers()}
        if content_type:
            headers["Content-Type"] = content_type
        session = self._session_for_loop()
        started, status = time.monotonic(), 0
        with tracing.kube_span(method, path, headers) as span:
            try:
                async with session.request(
                    method, self._cfg.host + path, json=body, headers=headers
                ) as response:
                    text = await response.text()
                    status, reason = response.status, response.reason or ""
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise KubeError(0, f"cannot reach the Kubernetes API: {exc!r}") from exc
            finally:
                metrics.kube_call(method, path, status, time.monotonic() - started)
                tracing.set_status(span, status)
        return status, reason, text

    def _auth_headers(self) -> dict[str, str]:
        """The client's own auth headers, re-read every ``AUTH_REFRESH_SECONDS``: in a Pod the
        service-account token is rotated on disk (long before the old one expires) and the
        client's refresh hook reloads it; the hook costs ~45 µs, too much for every call."""
        now = time.monotonic()
        if self._auth is None or now - self._auth_read_at >= AUTH_REFRESH_SECONDS:
            self._auth = {
                auth["key"]: auth["value"]
                for auth in self._cfg.auth_settings().values()
                if auth.get("in") == "header" and auth.get("value")
            }
            self._auth_read_at = now
        return self._auth

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
