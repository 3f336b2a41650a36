"""The namespace of each project-domain, and keeping it present while the project is active.

Namespaces are labelled so that users (and the operator) can tell which ones the control plane
manages. An archived project's namespaces lose the managed label and are otherwise left alone:
the control plane never deletes a namespace, since it holds user workloads.
"""

from __future__ import annotations

import re
from typing import Any

from flyteidl.admin import project_pb2
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flyteadmin.core.crds import LABEL_PREFIX
from flyteadmin.core.crmap.labels import MANAGED_BY
from flyteadmin.core.kube import SYNC_TIMEOUT

MANAGED = LABEL_PREFIX + "managed"
PROJECT = LABEL_PREFIX + "project"
DOMAIN = LABEL_PREFIX + "domain"

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


def reconcile_project_namespaces(
    api: client.ApiClient, project: project_pb2.Project, domains: list[str], template: str
) -> list[str]:
    """Make the cluster match the project's state; returns the namespaces it created. Idempotent."""
    core = client.CoreV1Api(api)
    active = project.state == project_pb2.Project.ACTIVE
    created = []
    for domain in domains:
        name = namespace_for(template, project.id, domain)
        labels = desired_labels(project.id, domain, active)
        if active:
            # Create first: a new project's namespaces (the common case, e.g. a burst of
            # registrations) then cost one call each instead of a read and a create.
            # Any: the client takes a plain dict where its annotations name V1Namespace.
            body: Any = {
                "metadata": {"name": name, "labels": {k: v for k, v in labels.items() if v}}
            }
            try:
                core.create_namespace(body, _request_timeout=SYNC_TIMEOUT)
                created.append(name)
                continue
            except ApiException as exc:
                if exc.status != 409:
                    raise
        try:
            current = core.read_namespace(name, _request_timeout=SYNC_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                continue  # an archived project's namespace that is gone (or just deleted)
            raise
        assert current.metadata is not None  # a stored object has metadata
        have = current.metadata.labels or {}
        if any(have.get(k) != v for k, v in labels.items()):
            if not active and have.get(MANAGED) is None:
                continue  # never managed by us (or already released): leave it alone
            core.patch_namespace(
                name, {"metadata": {"labels": labels}}, _request_timeout=SYNC_TIMEOUT
            )
    return created
