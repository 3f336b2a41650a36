"""Running the Kopf operator: standalone by default, or with peering for several replicas.

Kopf settings chosen (docs/operator.md explains them):
- namespaced to the store namespace, where our custom resources live;
- ``posting.level = WARNING``: Kubernetes Events only for problems, not for every handler run;
- peering: ``operator.peering`` empty -> standalone (no peering CRDs). With a name, Kopf
  peering: operators that see each other with the same priority all pause, which guards against
  an accidental second operator (a rollout overlap, a developer's local run) but is not leader
  election, so the supported layout is one replica (the chart enforces it);
- no persistence is used by the handlers (``on.event``; projects follow the core's project
  cache, plus a plain resync loop), so Kopf adds no annotations and no finalizers to our
  resources; nor a diff base (``NoDiffBase``): Kopf deep-copies every object on every event to
  diff it for on.create/update handlers, and we have none.
"""

from __future__ import annotations

import asyncio
import threading
import time

import kopf
from kubernetes import client

from flyteadmin.core import crds, event_loop
from flyteadmin.core.backend import Backend
from flyteadmin.core.cluster_targets import Targets
from flyteadmin.core.config import Settings
from flyteadmin.operator import cluster_resources, clusters, notifications
from flyteadmin.operator.archiver import run_archiver
from flyteadmin.operator.context import OperatorContext
from flyteadmin.operator.handlers import (
    follow_executions,
    follow_projects,
    resync_executions,
    resync_projects,
)
from flyteadmin.operator.scheduler import run_scheduler


class NoDiffBase(kopf.DiffBaseStorage):
    """Kopf builds each event's "essence" (a deep copy of the object) to diff it against the
    last handled one, for on.create/update/resume handlers only; ours are all on.event, so the
    copy was never read, and cost a tenth of the operator's CPU while it launched executions
    (py-spy). No essence means no diff (``build_registry`` refuses handlers that need one)."""

    def build(self, *, body: kopf.Body, extra_fields: object = None) -> None:  # type: ignore[override]
        return None

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: object) -> None:
        return None


def build_registry(ctx: OperatorContext) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    cluster_resources.register(registry, ctx)
    refuse_changing_handlers(registry)
    return registry


def refuse_changing_handlers(registry: kopf.OperatorRegistry) -> None:
    """``NoDiffBase`` is right only while no handler needs a diff."""
    changing = registry._changing.get_all_handlers()  # no public accessor in Kopf 1.45
    if changing:
        raise RuntimeError(
            f"on.create/update/resume/delete handlers need Kopf's diff base, which NoDiffBase "
            f"turns off: {sorted(h.id for h in changing)}"
        )


def connection_info(api: client.ApiClient) -> kopf.ConnectionInfo:
    cfg = api.configuration
    token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    scheme, _, token_value = (token or "").partition(" ")
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        scheme=scheme or None,
        token=token_value or None,
    )


def _kopf_settings(settings: Settings) -> kopf.OperatorSettings:
    kopf_settings = kopf.OperatorSettings()
    kopf_settings.posting.level = 30  # logging.WARNING
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    kopf_settings.persistence.diffbase_storage = NoDiffBase()
    if settings.operator.peering:
        kopf_settings.peering.name = settings.operator.peering
        kopf_settings.peering.mandatory = True
        kopf_settings.peering.standalone = False
    else:
        kopf_settings.peering.standalone = True
    return kopf_settings


# What the operator never reads: task and description versions (it launches from workflows
# and their compiled closures). It does not watch them while kube-apiserver reports their size
# for the etcd budget (core/backend.py).
UNREAD = (crds.TASK, crds.DESCRIPTION_ENTITY)


def operator_backend(settings: Settings) -> Backend:
    return Backend(settings, unread=UNREAD)


async def run_operator(
    settings: Settings,
    *,
    ready_flag: asyncio.Event | threading.Event | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    backend: Backend | None = None,
) -> None:
    """Run until ``stop_flag``. ``backend``: one the caller made (not started yet), e.g. to
    serve its readiness on the metrics port (``flyteadmin operator``); it is stopped here."""
    backend = backend or operator_backend(settings)
    api = backend.api
    targets = Targets(settings, api, backend.http)
    ctx = OperatorContext(settings, api, backend, targets)
    registry = build_registry(ctx)
    notifier = notifications.notifier(ctx)

    @kopf.on.login(registry=registry)
    def login(**_: object) -> kopf.ConnectionInfo:
        # Kopf connects with the same credentials as the core's client.
        return connection_info(api)

    await backend.start()
    # Plain loops beside Kopf's handlers (one line per component).
    loops = [
        follow_projects(ctx, backend.project_records),
        follow_executions(ctx, backend.execution_records),
        notifications.follow_notifications(notifier, backend.execution_records),
        resync_projects(ctx, backend.project_records),
        resync_executions(ctx),
        cluster_resources.run(ctx),
        clusters.run(ctx),
        run_scheduler(ctx),
        run_archiver(ctx),
    ]
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        await kopf.operator(
            registry=registry,
            settings=_kopf_settings(settings),
            namespaces=[settings.kubernetes.namespace],
            standalone=not settings.operator.peering,
            peering_name=settings.operator.peering or None,
            ready_flag=ready_flag,
            stop_flag=stop_flag,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await targets.close()
        await backend.stop()
        api.close()


class OperatorThread:
    """The operator on its own event loop in a thread, as ``flyteadmin dev`` and tests run it.

    Off the main thread Kopf installs no signal handlers, so the embedding program keeps
    control of SIGINT/SIGTERM and stops the operator with ``stop()``.
    """

    def __init__(self, settings: Settings) -> None:
        self.ready = threading.Event()
        self._stop_flag = threading.Event()
        self._done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(settings,), name="operator", daemon=True
        )

    def _run(self, settings: Settings) -> None:
        try:
            event_loop.run(
                run_operator(settings, ready_flag=self.ready, stop_flag=self._stop_flag),
                settings.event_loop,
            )
        except BaseException as exc:  # noqa: BLE001 - reported to the embedding program
            self.error = exc
        finally:
            self._done.set()

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until Kopf is ready; raise what stopped it if it died instead."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self._done.is_set():
                raise RuntimeError("the operator stopped during start-up") from self.error
            if time.monotonic() > deadline:
                raise TimeoutError(f"the operator was not ready within {timeout}s")

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop_flag.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
