"""Kopf handlers: thin, level-triggered, idempotent. They call the core and hold no state.

Projects: every watch event (including the initial listing after a restart) reconciles the
project's namespaces, and ``resync_projects`` repeats that for every project periodically (a
namespace deleted by hand comes back). ``on.event`` keeps no progress annotations and adds no
finalizers, so the operator can be stopped, restarted or replaced at any point without leaving
anything behind. (Kopf timers would add a finalizer to every project; hence the plain loop.)
"""

from __future__ import annotations

import asyncio
import logging

import kopf
from flyteidl.admin import project_pb2

from flyteadmin.core import crds
from flyteadmin.core.crmap.executions import ExecutionCodec
from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.executions.launch import Launcher
from flyteadmin.core.namespaces import reconcile_project_namespaces
from flyteadmin.core.store import Collection
from flyteadmin.operator.context import OperatorContext

log = logging.getLogger(__name__)
_PROJECTS = (crds.GROUP, crds.VERSION, crds.PROJECT.plural)
_EXECUTIONS = (crds.GROUP, crds.VERSION, crds.EXECUTION.plural)


async def reconcile_project(ctx: OperatorContext, project: project_pb2.Project) -> None:
    created = await asyncio.to_thread(
        reconcile_project_namespaces,
        ctx.api,
        project,
        list(ctx.settings.domain_ids()),
        ctx.settings.operator.namespace_template,
    )
    for name in created:
        log.info("created namespace %s for project %s", name, project.id)


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    codec = ProjectCodec()

    @kopf.on.event(*_PROJECTS, registry=registry)
    async def project_event(event: kopf.RawEvent, body: kopf.Body, **_: object) -> None:
        if event.get("type") == "DELETED":
            return
        project = codec.decode(dict(body))
        try:
            await reconcile_project(ctx, project)
        except Exception as exc:  # noqa: BLE001 - the periodic resync retries; report it
            log.warning("namespaces of project %s: %s", project.id, exc)


def register_executions(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """New executions become FlyteWorkflow objects; terminated ones lose theirs."""
    codec = ExecutionCodec()
    launcher = Launcher(ctx.backend)

    @kopf.on.event(*_EXECUTIONS, registry=registry)
    async def execution_event(event: kopf.RawEvent, body: kopf.Body, **_: object) -> None:
        if event.get("type") == "DELETED":
            return
        record = codec.decode(dict(body))
        try:
            await launcher.reconcile(record)
        except Exception as exc:  # noqa: BLE001 - Kubernetes or the blob store: retried
            raise kopf.TemporaryError(f"execution {record.id.name}: {exc}", delay=5) from exc


async def resync_projects(ctx: OperatorContext, projects: Collection[project_pb2.Project]) -> None:
    """Reconcile every project each ``operator.resync_seconds``; errors are per project."""
    while True:
        await asyncio.sleep(ctx.settings.operator.resync_seconds)
        for stored in projects.values():
            try:
                await reconcile_project(ctx, stored.value)
            except Exception as exc:  # noqa: BLE001 - one project's failure must not stop others
                log.warning("resync of project %s: %s", stored.name, exc)
