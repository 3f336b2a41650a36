"""The pod runner's one door to the Kubernetes API: JSON requests and watch streams, on plain dicts.

Built on the official client's connection pool and credentials (``core.kube.api_client``), but
without its models: the runner reads and patches a handful of fields of Pods, Nodes and Leases,
and dicts keep that code close to the API's own JSON. Failures raise ``KubeError`` (status 0
when the server could not be reached).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

from flyteadmin.core.kube import KubeError, decode_response

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class KubeApi:
    def __init__(self, api: client.ApiClient, timeout: float = 30.0) -> None:
        self._api = api
        self._cfg = api.configuration
        self._timeout = timeout
        self._streams: set[urllib3.BaseHTTPResponse] = set()
        self._lock = threading.Lock()
        self._closed = False

    def _headers(self, content_type: str) -> dict[str, str]:
        if self._cfg.refresh_api_key_hook is not None:
            self._cfg.refresh_api_key_hook(self._cfg)  # a rotated service-account token
        headers = {"Accept": JSON, "Content-Type": content_type}
        for auth in self._cfg.auth_settings().values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        return headers

    def _url(self, path: str, query: dict[str, Any] | None) -> str:
        url = self._cfg.host + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return url

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        query: dict[str, Any] | None,
        content_type: str,
        read_timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        pool = self._api.rest_client.pool_manager
        try:
            return pool.request(
                method,
                self._url(path, query),
                body=None if body is None else json.dumps(body),
                headers=self._headers(content_type),
                timeout=urllib3.Timeout(connect=10, read=read_timeout or self._timeout),
                preload_content=False,
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, f"cannot reach the Kubernetes API: {exc!r}") from exc

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        content_type: str = JSON,
    ) -> dict[str, Any]:
        response = self._send(method, path, body, query, content_type)
        try:
            text = response.read().decode("utf-8", errors="replace")
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, f"reading a Kubernetes API answer failed: {exc!r}") from exc
        finally:
            response.release_conn()
        return decode_response(response.status, response.reason or "", text)

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self.request("GET", path, query=query)

    def watch(self, path: str, resource_version: str, **query: Any) -> Iterator[dict[str, Any]]:
        """Watch events from ``resource_version`` until the server ends the stream.

        An ``ERROR`` event (410 Gone when the version is too old) raises ``KubeError``.
        ``close_streams`` ends every open stream, from another thread.
        """
        query = {
            **query,
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
        }
        # The server ends the stream after timeoutSeconds; reading waits a little longer.
        read_timeout = float(query.get("timeoutSeconds") or 300) + 30
        response = self._send("GET", path, None, query, JSON, read_timeout)
        if response.status >= 400:
            text = response.read().decode("utf-8", errors="replace")
            response.release_conn()
            decode_response(response.status, response.reason or "", text)
        with self._lock:
            self._streams.add(response)
            closed = self._closed
        try:
            if closed:  # close_streams() ran while this stream was being opened
                raise KubeError(0, "the client is closing")
            for line in iter_resp_lines(response):
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise KubeError(status.get("code") or 500, status.get("message") or "error")
                yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as exc:
            # A closed stream (stop(), or the server going away) ends up here.
            raise KubeError(0, f"watch of {path} ended: {exc!r}") from exc
        finally:
            with self._lock:
                self._streams.discard(response)
            response.close()

    def close_streams(self) -> None:
        with self._lock:
            self._closed = True
            streams = list(self._streams)
        for response in streams:
            try:
                response.shutdown()
            except Exception:  # noqa: BLE001 - best effort; the stream may be closing already
                pass


def pod_path(namespace: str, name: str, sub: str = "") -> str:
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    return f"{path}/{sub}" if sub else path
