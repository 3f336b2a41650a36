"""Kopf handlers: thin, level-triggered, idempotent. They call the core and hold no state.

Projects: every change the core's project cache sees (and every project at start) reconciles
the project's namespaces (``follow_projects``), and ``resync_projects`` repeats that for every
project periodically (a namespace deleted by hand comes back). Neither keeps progress
annotations or adds finalizers, so the operator can be stopped, restarted or replaced at any
point without leaving anything behind. Executions the same way: every change of the core's
execution cache that asks something of the operator (a launch, an abort), and every such
execution at start, is reconciled (``follow_executions``); ``resync_executions`` repeats every
execution's step periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TypeVar

from aiolimiter import AsyncLimiter
from flyteidl.admin import project_pb2

from flyteadmin.core import metrics
from flyteadmin.core.cluster_targets import Target, unavailable_reason
from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.executions.launch import Launcher, Phase
from flyteadmin.core.namespaces import namespace_labels, reconcile_project_namespaces
from flyteadmin.core.store import Collection, Stored
from flyteadmin.operator.context import OperatorContext

log = logging.getLogger(__name__)
T = TypeVar("T")
# Phases in which an execution's change asks something of the operator at once: launch, abort.
# (A finished execution's object is deleted after its retention, by the periodic resync.)
_ACTS_ON = frozenset({Phase.UNDEFINED, Phase.ABORTING})
# Executions reconciled at once (each mostly waits: a blob read, a FlyteWorkflow create).
_CONCURRENT_EXECUTIONS = 64
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


@contextlib.contextmanager
def following(
    collection: Collection[T], changed: Callable[[str], None], wanted: Callable[[T], bool]
) -> Iterator[None]:
    """While inside, call ``changed(name)`` on this event loop for every object of
    ``collection`` that ``wanted`` accepts: each one on entry, and each later change of one but
    a deletion. The listener is added first, so no change between the two is missed. After the
    block ``changed`` is not called again, not even for a change already handed over, so a
    follower that stops (the operator's shutdown) starts no work behind its own cleanup."""
    loop = asyncio.get_running_loop()
    active = True

    def hand_over(name: str) -> None:
        if active:
            changed(name)

    def on_change(event: str, stored: Stored[T]) -> None:
        # From the cache's watch thread (or this loop's own writes): hand over; must not raise.
        if event != "DELETED" and wanted(stored.value):
            with contextlib.suppress(RuntimeError):  # the loop is closed: stopping
                loop.call_soon_threadsafe(hand_over, stored.name)

    collection.add_listener(on_change)
    try:
        for stored in collection.values():
            if wanted(stored.value):
                changed(stored.name)
        yield
    finally:
        active = False
        collection.remove_listener(on_change)


async def follow_projects(ctx: OperatorContext, projects: Collection[project_pb2.Project]) -> None:
    """Reconcile each project the cache sees change, and every project once at start.

    The core's watch cache has already decoded the project, so this costs one set entry per
    change, where a Kopf handler on projects cost a second watch stream (kube-apiserver sends
    every project to each) and Kopf's own processing of each event: together about 0.8 ms of the
    operator's CPU per RegisterProject (docs/operator.md). Changes that come while a project
    waits are one reconcile; a burst (a restart, a relist) lists the namespaces first, and
    what changes meanwhile waits for the next round (with a listing of its own if it is one)."""
    waiting: dict[str, None] = {}  # names in the order they changed
    wake = asyncio.Event()

    def changed(name: str) -> None:
        waiting[name] = None
        wake.set()

    with following(projects, changed, lambda project: True):
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


async def follow_executions(ctx: OperatorContext, executions: Collection[ExecutionRecord]) -> None:
    """Reconcile each execution whose change in the core's cache asks for a launch or an abort,
    and every such execution at start; one at a time per execution (a change that comes while it
    runs is reconciled after, from the newest value), up to ``_CONCURRENT_EXECUTIONS`` at once.

    The cache has already decoded the execution, so a change costs a phase check. A Kopf
    ``on.event`` handler on executions cost a second watch stream (kube-apiserver sends every
    execution write to each) and Kopf's own processing of every write, propeller's progress
    included, though only launches and aborts call the handler (docs/operator.md). A failure is
    logged; the periodic resync retries it."""
    launch = launcher(ctx)
    limit = asyncio.Semaphore(_CONCURRENT_EXECUTIONS)
    running: dict[str, asyncio.Task[None]] = {}
    again: set[str] = set()  # changed while being reconciled

    async def reconcile(name: str) -> None:
        try:
            while True:
                again.discard(name)
                stored = executions.get(name)
                if stored is not None and stored.value.phase in _ACTS_ON:
                    async with limit:
                        try:
                            with metrics.reconciling("execution"):
                                await launch.reconcile(stored.value)
                        except Exception as exc:  # noqa: BLE001 - Kubernetes or the blob store
                            log.warning("execution %s: %s (retried at the next resync)", name, exc)
                if name not in again:
                    return
        finally:
            running.pop(name, None)

    def changed(name: str) -> None:
        if name in running:
            again.add(name)
        else:
            running[name] = asyncio.create_task(reconcile(name))

    try:
        with following(executions, changed, lambda record: record.phase in _ACTS_ON):
            await asyncio.Event().wait()  # until cancelled
    finally:
        tasks = list(running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
