"""Kubernetes Events on the control plane's own objects: what ``kubectl describe`` shows an
operator of the cluster (a project's cluster-resource errors, why an execution failed to launch,
a notification that could not be delivered). Events are for problems and their repair, not for
every step, so they cost the apiserver nothing on the normal path.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flyteadmin.core.crds import Kind

log = logging.getLogger(__name__)

COMPONENT = "flyteadmin"
MAX_MESSAGE = 1024  # the apiserver truncates longer Event messages anyway


def event_body(
    kind: Kind,
    name: str,
    uid: str,
    namespace: str,
    *,
    warning: bool,
    reason: str,
    message: str,
    component: str = COMPONENT,
) -> dict[str, Any]:
    """A core/v1 Event about the ``kind`` object ``name`` (its ``uid``: kubectl describe finds
    Events by it) in ``namespace``."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "name": name,
            "namespace": namespace,
            "uid": uid,
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


async def report(
    http: Any, collection: Any, name: str, reason: str, message: str, *, warning: bool = True
) -> None:
    """Post an Event on the object ``name`` of ``collection`` (a store Collection) through
    ``http`` (kube.KubeHttp). Never raises: a report must not break what it reports on."""
    stored = collection.get(name)
    if stored is None:
        return
    namespace = collection.namespace
    body = event_body(
        collection.kind, name, stored.uid, namespace, warning=warning, reason=reason,
        message=message,
    )  # fmt: skip
    try:
        await http.request("POST", f"/api/v1/namespaces/{namespace}/events", body)
    except Exception as exc:  # noqa: BLE001 - e.g. no RBAC for events: logged, not fatal
        log.warning("cannot post an Event on %s %s: %s", collection.kind.kind, name, exc)
