"""The one door to the Kubernetes API: client construction, CRD installation, error mapping.

The official ``kubernetes`` client is synchronous; the store runs its calls in a bounded thread
pool. Every ``ApiException`` that reaches a caller is translated here, from one table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from flyteadmin.core import crds
from flyteadmin.core.errors import AdminError, Code


def api_client(kubeconfig: str = "", pool_size: int = 16) -> client.ApiClient:
    """From ``kubeconfig``; else in-cluster when running in a Pod; else $KUBECONFIG/~/.kube."""
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


# HTTP status of a failed Kubernetes call -> code for our client. A 409 is AlreadyExists on a
# create but a lost optimistic-concurrency race on an update; callers of update retry it.
_STATUS_CODES: dict[int, Code] = {
    400: Code.INVALID_ARGUMENT,
    403: Code.INTERNAL,  # our own service account lacks a permission: an operator problem
    404: Code.NOT_FOUND,
    409: Code.ABORTED,
    410: Code.ABORTED,
    422: Code.INVALID_ARGUMENT,
    429: Code.UNAVAILABLE,
}


def status_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body or "{}").get("message") or str(exc.reason)
    except ValueError:
        return str(exc.reason)


def translate(exc: ApiException, *, creating: bool = False) -> AdminError:
    status = exc.status or 0
    if status == 409 and creating:
        code = Code.ALREADY_EXISTS
    else:
        code = _STATUS_CODES.get(
            status, Code.UNAVAILABLE if status >= 500 or not status else Code.INTERNAL
        )
    return AdminError(code, f"kubernetes API: {status_message(exc)}")


def apply_crds(api: client.ApiClient, timeout: float = 60.0) -> None:
    """Create or update every CRD of ``core.crds`` and wait until each is Established."""
    ext = client.ApiextensionsV1Api(api)
    for kind in crds.KINDS:
        body = kind.manifest()
        try:
            current = ext.read_custom_resource_definition(kind.crd_name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            ext.create_custom_resource_definition(body)
        else:
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(kind.crd_name, body)
    deadline = time.monotonic() + timeout
    for kind in crds.KINDS:
        while True:
            crd = ext.read_custom_resource_definition(kind.crd_name)
            conditions = (crd.status and crd.status.conditions) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {kind.crd_name} not Established after {timeout}s")
            time.sleep(0.1)


def ensure_namespace(
    api: client.ApiClient, name: str, labels: dict[str, str] | None = None
) -> bool:
    """Create ``name`` if absent (True when created); an existing namespace is left alone."""
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})
        return True
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise


def manifests_dir() -> Path:
    return crds.MANIFEST_DIRS[0]
