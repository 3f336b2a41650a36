"""Kopf handlers: thin, level-triggered, idempotent. They call the core and hold no state.

Projects: every change the core's project cache sees (and every project at start) reconciles
the project's namespaces (``follow_projects``), and ``resync_projects`` repeats that for every
project periodically (a namespace deleted by hand comes back). Neither keeps progress
annotations or adds finalizers, so the operator can be stopped, restarted or replaced at any
point without leaving anything behind. Executions: a Kopf ``on.event`` handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

import kopf
from aiolimiter import AsyncLimiter
from flyteidl.admin import project_pb2

from flyteadmin.core import crds, metrics
from flyteadmin.core.cluster_targets import Target, unavailable_reason
from flyteadmin.core.crmap.executions import ExecutionCodec
from flyteadmin.core.executions.launch import Launcher
from flyteadmin.core.namespaces import namespace_labels, reconcile_project_namespaces
from flyteadmin.core.store import Collection, Stored
from flyteadmin.operator.context import OperatorContext

log = logging.getLogger(__name__)
_EXECUTIONS = (crds.GROUP, crds.VERSION, crds.EXECUTION.plural)
# Phases in which an execution event asks something of the operator at once: launch, abort.
# (A finished execution's object is deleted after its retention, by the periodic resync.)
_ACTS_ON = frozenset({"UNDEFINED", "ABORTING"})
# More projects than this waiting at once (a restart, a relist): list the namespaces first.
_LISTED_BURST = 16


async def reconcile_project(
    ctx: OperatorContext,
    project: project_pb2.Project,
    targets: list[Target] | None = None,
    listings: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
) -> None:
    """The project's namespaces in each cluster that keeps them (``targets``: those only).
    ``listings`` (cluster name -> ``namespace_labels``) spares the calls for what is right."""
    # One project at a time, and namespace writes paced (``namespace_pace``): a burst of
    # registrations then costs kube-apiserver a steady trickle of namespace creations (like a
    # controller's rate-limited work queue) instead of competing with the API's own writes.
    if (
        ctx.settings.operator.namespaces == "on_first_launch"
        and project.state == project_pb2.Project.ACTIVE
    ):
        return  # the launcher makes a project-domain's namespace at its first launch
    gate = ctx.shared.setdefault("namespaces", asyncio.Semaphore(1))
    async with gate:
        await _reconcile_namespaces(ctx, project, targets, listings or {})


def namespace_pace(ctx: OperatorContext) -> Callable[[], Awaitable[object]] | None:
    """What namespace writes wait on: ``operator.namespace_writes_per_second`` (None: no limit).
    One limiter for the operator, whatever the cluster: the writes share its CPU."""
    rate = ctx.settings.operator.namespace_writes_per_second
    if not rate:
        return None
    if "namespace_writes" not in ctx.shared:
        # Room for a second's worth at once, and at least one project's namespaces.
        burst = max(rate, len(ctx.settings.domains))
        ctx.shared["namespace_writes"] = AsyncLimiter(burst, burst / rate)
    limiter: AsyncLimiter = ctx.shared["namespace_writes"]
    return limiter.acquire


async def _reconcile_namespaces(
    ctx: OperatorContext,
    project: project_pb2.Project,
    targets: list[Target] | None,
    listings: Mapping[str, Mapping[str, Mapping[str, str]]],
) -> None:
    """An unavailable cluster is skipped (caught up when it is back); other errors are raised
    together after every cluster had its turn."""
    errors = []
    for target in ctx.targets.namespace_targets() if targets is None else targets:
        if target.unavailable:
            continue
        try:
            created = await reconcile_project_namespaces(
                target.http,
                project,
                list(ctx.settings.domain_ids()),
                ctx.settings.operator.namespace_template,
                listings.get(target.name),
                namespace_pace(ctx),
            )
        except Exception as exc:  # noqa: BLE001 - one cluster must not stop the others
            detail = unavailable_reason(exc)
            if detail is None:
                errors.append(f"{target.describe()}: {exc}")
            else:
                ctx.targets.mark_unavailable(target, detail)
            continue
        for name in created:
            log.info(
                "created namespace %s for project %s in %s", name, project.id, target.describe()
            )
    if errors:
        raise RuntimeError("; ".join(errors))


async def namespace_listings(
    ctx: OperatorContext, targets: list[Target] | None = None
) -> dict[str, dict[str, dict[str, str]]]:
    """The namespaces of each available cluster (``targets``, default all that keep them), for
    a pass over every project; a cluster whose list fails is left out (its projects are then
    reconciled call by call)."""
    listings = {}
    for target in ctx.targets.namespace_targets() if targets is None else targets:
        if target.unavailable:
            continue
        try:
            listings[target.name] = await namespace_labels(target.http)
        except Exception as exc:  # noqa: BLE001 - the per-project path reports it
            log.warning("namespaces of %s could not be listed: %s", target.describe(), exc)
    return listings


async def follow_projects(ctx: OperatorContext, projects: Collection[project_pb2.Project]) -> None:
    """Reconcile each project the cache sees change, and every project once at start.

    The core's watch cache has already decoded the project, so this costs one set entry per
    change, where a Kopf handler on projects cost a second watch stream (kube-apiserver sends
    every project to each) and Kopf's own processing of each event: together about 0.8 ms of the
    operator's CPU per RegisterProject (docs/operator.md). Changes that come while a project
    waits are one reconcile; a burst (a restart, a relist) lists the namespaces first, and
    what changes meanwhile waits for the next round (with a listing of its own if it is one)."""
    loop = asyncio.get_running_loop()
    waiting: dict[str, None] = {}  # names in the order they changed
    wake = asyncio.Event()

    def changed(name: str) -> None:
        waiting[name] = None
        wake.set()

    def on_change(event: str, stored: Stored[project_pb2.Project]) -> None:
        # From the cache's watch thread: hand over to the loop; must not raise.
        if event != "DELETED":
            with contextlib.suppress(RuntimeError):  # the loop is closed: stopping
                loop.call_soon_threadsafe(changed, stored.name)

    projects.add_listener(on_change)  # first, so no change between the two is missed
    waiting.update(dict.fromkeys(stored.name for stored in projects.values()))
    while True:
        if not waiting:
            await wake.wait()
        wake.clear()
        batch = list(waiting)
        waiting.clear()
        listings = await namespace_listings(ctx) if len(batch) > _LISTED_BURST else None
        # Each read when its turn comes (a round is paced); one deleted meanwhile is skipped.
        current = (stored for name in batch if (stored := projects.get(name)) is not None)
        await reconcile_projects(ctx, current, listings=listings, handler="project_namespaces")


async def reconcile_projects(
    ctx: OperatorContext,
    projects: Iterable[Stored[project_pb2.Project]],
    targets: list[Target] | None = None,
    listings: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
    handler: str | None = None,
) -> None:
    """``reconcile_project`` for each project in turn; a failure is logged per project (the
    periodic resync retries it). ``handler``: count each as a run of that operator handler."""
    for stored in projects:
        try:
            with metrics.reconciling(handler) if handler else contextlib.nullcontext():
                await reconcile_project(ctx, stored.value, targets, listings)
        except Exception as exc:  # noqa: BLE001 - one project must not stop the others
            log.warning("namespaces of project %s: %s", stored.name, exc)


def launcher(ctx: OperatorContext) -> Launcher:
    """The operator's one Launcher: the event handler and the resync share what it knows."""
    if "launcher" not in ctx.shared:
        retention = dt.timedelta(seconds=ctx.settings.operator.flyteworkflow_retention_seconds)
        ctx.shared["launcher"] = Launcher(ctx.backend, retention=retention, targets=ctx.targets)
    shared: Launcher = ctx.shared["launcher"]
    return shared


def _acts_on(event: kopf.RawEvent, body: kopf.Body, **_: object) -> bool:
    """Whether an execution's watch event asks something of the operator. Most are propeller's
    progress: filtered here, Kopf does not invoke the handler for them (its invocation, with its
    debug logging, was a fifth of the operator's CPU while events came in)."""
    if event.get("type") == "DELETED":
        return False
    return (body.get("status") or {}).get("phase", "UNDEFINED") in _ACTS_ON


def register_executions(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """New executions become FlyteWorkflow objects; terminated ones lose theirs. Kopf does not
    retry ``on.event`` handlers: a failure waits for ``resync_executions``."""
    codec = ExecutionCodec()
    launch = launcher(ctx)

    @kopf.on.event(*_EXECUTIONS, registry=registry, when=_acts_on)
    async def execution_event(body: kopf.Body, **_: object) -> None:
        record = codec.decode(dict(body))
        try:
            with metrics.reconciling("execution"):
                await launch.reconcile(record)
        except Exception as exc:  # noqa: BLE001 - Kubernetes or the blob store: resynced
            log.warning("execution %s: %s (retried at the next resync)", record.id.name, exc)


async def resync_executions(ctx: OperatorContext) -> None:
    """Every ``operator.resync_seconds``: each execution's step again (failed launches retried,
    finished executions' objects deleted once their retention is over)."""
    launch = launcher(ctx)
    while True:
        await asyncio.sleep(ctx.settings.operator.resync_seconds)
        live = ctx.backend.execution_records.values()
        launch.forget({stored.name for stored in live})
        with metrics.resync("executions"):
            for stored in live:
                try:
                    await launch.reconcile(stored.value, resync=True)
                except Exception as exc:  # noqa: BLE001 - one execution must not stop others
                    log.warning("resync of execution %s: %s", stored.name, exc)


async def resync_projects(ctx: OperatorContext, projects: Collection[project_pb2.Project]) -> None:
    """Reconcile every project each ``operator.resync_seconds``; errors are per project."""
    while True:
        await asyncio.sleep(ctx.settings.operator.resync_seconds)
        with metrics.resync("projects"):
            listings = await namespace_listings(ctx)
            await reconcile_projects(ctx, projects.values(), listings=listings)
