"""The namespace of each project-domain, and keeping it present while the project is active.

Namespaces are labelled so that users (and the operator) can tell which ones the control plane
manages. An archived project's namespaces lose the managed label and are otherwise left alone:
the control plane never deletes a namespace, since it holds user workloads.

Calls go through the asyncio client (kube.KubeHttp). A periodic pass over every project first
lists the cluster's namespaces once (``namespace_labels``), so namespaces that are already right
cost it nothing; it used to try a create and a read of each one, six calls per project every
minute, which with thousands of projects kept kube-apiserver busy all the time.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote

from flyteidl.admin import project_pb2

from flyteadmin.core.crds import LABEL_PREFIX
from flyteadmin.core.crmap.labels import MANAGED_BY
from flyteadmin.core.kube import KubeError, KubeHttp, decode_response

MANAGED = LABEL_PREFIX + "managed"
PROJECT = LABEL_PREFIX + "project"
DOMAIN = LABEL_PREFIX + "domain"

NAMESPACES = "/api/v1/namespaces"
_LIST_PAGE = 500
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
_MERGE_PATCH = "application/merge-patch+json"

_PLACEHOLDER = re.compile(r"\{\{\s*(project|domain)\s*\}\}")


def namespace_for(template: str, project: str, domain: str) -> str:
    """``{{ project }}-{{ domain }}`` -> ``flytesnacks-development``."""
    values = {"project": project, "domain": domain}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def desired_labels(project: str, domain: str, active: bool) -> dict[str, str | None]:
    """The labels to merge-patch onto the namespace; None removes a label."""
    return {
        MANAGED_BY: "flyteadmin" if active else None,
        MANAGED: "true" if active else None,
        PROJECT: project,
        DOMAIN: domain,
    }


async def namespace_labels(http: KubeHttp) -> dict[str, dict[str, str]]:
    """Every namespace of the cluster and its labels, in pages of metadata only."""
    found: dict[str, dict[str, str]] = {}
    token = ""
    while True:
        query = f"?limit={_LIST_PAGE}" + (f"&continue={quote(token)}" if token else "")
        status, reason, text = await http.request_text(
            "GET", NAMESPACES + query, accept=_METADATA_LIST
        )
        page = decode_response(status, reason, text)
        for item in page.get("items") or []:
            metadata = item["metadata"]
            found[metadata["name"]] = metadata.get("labels") or {}
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return found


async def reconcile_project_namespaces(
    http: KubeHttp,
    project: project_pb2.Project,
    domains: list[str],
    template: str,
    existing: Mapping[str, Mapping[str, str]] | None = None,
    pace: Callable[[], Awaitable[object]] | None = None,
) -> list[str]:
    """Make the cluster match the project's state; returns the namespaces it created. Idempotent.

    ``existing`` (from ``namespace_labels``) says which namespaces there are and their labels:
    only what differs is written. Without it an active project's namespaces are created first
    (a new project's, the common case, then cost one call each) and read when they exist.
    ``pace`` is awaited before each write (the operator's rate limit)."""
    active = project.state == project_pb2.Project.ACTIVE
    created = []
    for domain in domains:
        name = namespace_for(template, project.id, domain)
        labels = desired_labels(project.id, domain, active)
        have = None if existing is None else existing.get(name)
        if have is None and existing is not None and not active:
            continue  # an archived project's namespace that is gone: nothing to release
        if have is None and active:
            body = {"metadata": {"name": name, "labels": {k: v for k, v in labels.items() if v}}}
            if pace is not None:
                await pace()
            try:
                await http.request("POST", NAMESPACES, body)
                created.append(name)
                continue
            except KubeError as exc:
                if exc.status != 409:
                    raise
        if have is None:
            try:
                current = await http.request("GET", f"{NAMESPACES}/{name}")
            except KubeError as exc:
                if exc.status == 404:
                    continue  # an archived project's namespace that is gone (or just deleted)
                raise
            have = current["metadata"].get("labels") or {}
        if any(have.get(k) != v for k, v in labels.items()):
            if not active and have.get(MANAGED) is None:
                continue  # never managed by us (or already released): leave it alone
            patch = {"metadata": {"labels": labels}}
            if pace is not None:
                await pace()
            await http.request("PATCH", f"{NAMESPACES}/{name}", patch, content_type=_MERGE_PATCH)
    return created
