"""Kubernetes Events (core/v1) on the control plane's own objects, so ``kubectl describe`` shows
users what the operator saw: why an execution waits for its cluster, why a project's cluster
resources failed. One body builder; a synchronous post (official client, for code running in
threads) and an asynchronous one (the core's KubeHttp, for the operator's event loop).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from kubernetes import client

from flyteadmin.core.kube import KubeHttp

MAX_MESSAGE = 1024  # the apiserver refuses longer Event messages


@dataclasses.dataclass(frozen=True)
class Involved:
    """The object an Event is about."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str


def event_body(
    involved: Involved, *, warning: bool, reason: str, message: str, component: str
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"generateName": f"{involved.name}.", "namespace": involved.namespace},
        "involvedObject": {
            "apiVersion": involved.api_version,
            "kind": involved.kind,
            "name": involved.name,
            "namespace": involved.namespace,
            "uid": involved.uid,
        },
        "type": "Warning" if warning else "Normal",
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def post_event(api: client.ApiClient, involved: Involved, **fields: Any) -> None:
    """Blocking; ``fields`` as for ``event_body``."""
    body: Any = event_body(involved, **fields)  # the client takes a dict for its CoreV1Event
    client.CoreV1Api(api).create_namespaced_event(involved.namespace, body)


async def post_event_async(http: KubeHttp, involved: Involved, **fields: Any) -> None:
    body = event_body(involved, **fields)
    await http.request("POST", f"/api/v1/namespaces/{involved.namespace}/events", body)
