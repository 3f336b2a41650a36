"""The clusters the operator writes to (docs/multicluster.md): a connection to each execution
cluster and to the control plane's own, and whether each can take work.

A call that cannot reach a cluster (no connection, a timeout, 429 or a 5xx answer), or a cluster
that serves no FlyteWorkflow kind, marks it unavailable with the reason. The operator then leaves
that cluster's work waiting, with the reason on each execution, without calling it again, so a
cluster that is down never slows the others. ``probe`` checks each unavailable cluster every
``execution_clusters.probe_seconds``; at the first success it is available again and the
operator's ``on_recovered`` catches up (namespaces, cluster resources, waiting executions).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flyteadmin.core import kube
from flyteadmin.core.clusters import HOME
from flyteadmin.core.config import Settings
from flyteadmin.core.flyteworkflow import crd as fw_crd

log = logging.getLogger(__name__)

# HTTP statuses that say "not now" rather than "no": the cluster, not the request, is the problem.
TRANSIENT_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
# A data-plane cluster far away must not hold a caller for a minute before failing.
REMOTE_TIMEOUT, REMOTE_CONNECT_TIMEOUT = 30.0, 5.0
FLYTEWORKFLOW_API = f"/apis/{fw_crd.GROUP}/{fw_crd.VERSION}"


class ClusterUnavailable(Exception):
    """A cluster cannot take work now; the message says why."""


def unavailable_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means its cluster cannot be reached now, or None when it is a real answer
    (a refusal the request itself caused)."""
    if isinstance(exc, ClusterUnavailable):
        return str(exc)
    if isinstance(exc, kube.KubeError):
        return exc.message if exc.status in TRANSIENT_STATUSES else None
    if isinstance(exc, ApiException):
        status = exc.status or 0
        return f"{status} {kube.status_message(exc)}" if status in TRANSIENT_STATUSES else None
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"cannot reach the Kubernetes API: {exc!r}"
    return None


@dataclasses.dataclass(eq=False)
class Target:
    name: str
    """The cluster id; HOME ("") is the control plane's own cluster."""
    api: client.ApiClient
    http: kube.KubeHttp
    enabled: bool = True
    template_data: Mapping[str, str] = dataclasses.field(default_factory=dict)
    shared: bool = False
    """Its connection is the control plane's own (closed by the Backend, not here)."""
    unavailable: str = ""
    """Why it cannot take work now; empty when it can."""

    def describe(self) -> str:
        return f"cluster {self.name}" if self.name else "the control plane's cluster"


class Targets:
    """Every cluster the operator may write to, by id; built from
    ``execution_clusters.clusters``. Creating it reads the kubeconfig files (no network)."""

    def __init__(self, settings: Settings, api: client.ApiClient, http: kube.KubeHttp) -> None:
        cfg = settings.execution_clusters
        self.probe_seconds = cfg.probe_seconds
        self.home = Target(HOME, api, http, shared=True)
        self._by_name: dict[str, Target] = {HOME: self.home}
        for cluster in cfg.clusters:
            if cluster.in_cluster:
                remote_api, remote_http, shared = api, http, True
            else:
                remote_api = kube.api_client(cluster.kubeconfig, context=cluster.context)
                remote_http = kube.KubeHttp(
                    remote_api, timeout=REMOTE_TIMEOUT, connect_timeout=REMOTE_CONNECT_TIMEOUT
                )
                shared = False
            self._by_name[cluster.name] = Target(
                cluster.name,
                remote_api,
                remote_http,
                enabled=cluster.enabled,
                template_data=dict(cluster.template_data),
                shared=shared,
            )

    @classmethod
    def local(cls, api: client.ApiClient, http: kube.KubeHttp | None = None) -> Targets:
        """The control plane's own cluster only (no execution clusters configured)."""
        return cls(Settings(), api, http or kube.KubeHttp(api))

    @property
    def multi(self) -> bool:
        return len(self._by_name) > 1

    def get(self, name: str) -> Target | None:
        return self._by_name.get(name)

    def clusters(self) -> list[Target]:
        """The configured execution clusters (not the control plane's own entry)."""
        return [t for name, t in self._by_name.items() if name != HOME]

    def namespace_targets(self) -> list[Target]:
        """Where project-domain namespaces are kept: the control plane's cluster (its
        namespaces carry the RBAC of per-project authorization) and every enabled execution
        cluster that is another cluster."""
        return [self.home] + [t for t in self.clusters() if t.enabled and not t.shared]

    def resource_targets(self) -> list[Target]:
        """Where cluster resources are applied: the enabled execution clusters, or the
        control plane's own cluster when none is configured (flyteadmin's valid targets)."""
        if not self.multi:
            return [self.home]
        return [t for t in self.clusters() if t.enabled]

    def mark_unavailable(self, target: Target, detail: str) -> None:
        """Record why ``target`` cannot take work (``detail``: what failed)."""
        reason = f"{target.describe()} is unavailable: {detail}"
        if target.unavailable != reason:
            log.warning("%s", reason)
        target.unavailable = reason

    async def check(self, target: Target) -> str:
        """Empty when ``target`` answers and serves FlyteWorkflows, else what failed."""
        try:
            await target.http.request("GET", FLYTEWORKFLOW_API)
        except kube.KubeError as exc:
            if exc.status == 404:
                return f"it does not serve {fw_crd.NAME} (install that CRD there)"
            return exc.message
        return ""

    async def probe(self, on_recovered: Callable[[Target], Awaitable[None]]) -> None:
        """Forever: every ``probe_seconds``, check the unavailable targets; call
        ``on_recovered`` for each that is back."""
        while True:
            await asyncio.sleep(self.probe_seconds)
            down = [t for t in self._by_name.values() if t.unavailable]
            reasons = await asyncio.gather(*(self.check(t) for t in down))
            for target, reason in zip(down, reasons, strict=True):
                if reason:
                    self.mark_unavailable(target, reason)
                    continue
                target.unavailable = ""
                log.info("%s is available again", target.describe())
                started = time.monotonic()
                try:
                    await on_recovered(target)
                except Exception:  # noqa: BLE001 - the next resync repairs what this missed
                    log.exception("catching up with %s", target.describe())
                log.info(
                    "caught up with %s in %.1fs", target.describe(), time.monotonic() - started
                )

    async def close(self) -> None:
        for target in self._by_name.values():
            if not target.shared:
                await target.http.close()
                target.api.close()
