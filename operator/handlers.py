"""Kopf handlers: thin, level-triggered, idempotent. They call the core and hold no state.

Projects: every watch event (including the initial listing after a restart) and a periodic
timer reconcile the project's namespaces. ``on.event`` and timers keep no progress annotations
and add no finalizers to our resources, so the operator can be stopped, restarted or replaced at
any point without leaving anything behind.
"""

from __future__ import annotations

import asyncio
import logging

import kopf
from flyteadmin.core import crds
from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.namespaces import reconcile_project_namespaces
from flyteadmin.operator.context import OperatorContext

log = logging.getLogger(__name__)
_PROJECTS = (crds.GROUP, crds.VERSION, crds.PROJECT.plural)


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    codec = ProjectCodec()
    settings = ctx.settings

    async def reconcile(body: kopf.Body) -> None:
        project = codec.decode(dict(body))
        try:
            created = await asyncio.to_thread(
                reconcile_project_namespaces,
                ctx.api,
                project,
                list(settings.domain_ids()),
                settings.operator.namespace_template,
            )
        except Exception as exc:  # Kubernetes unavailable, forbidden, ...: retry later
            raise kopf.TemporaryError(
                f"namespaces of project {project.id}: {exc}", delay=10
            ) from exc
        for name in created:
            log.info("created namespace %s for project %s", name, project.id)

    @kopf.on.event(*_PROJECTS, registry=registry)
    async def project_event(event: kopf.RawEvent, body: kopf.Body, **_: object) -> None:
        if event.get("type") == "DELETED":
            return
        await reconcile(body)

    @kopf.timer(*_PROJECTS, registry=registry, interval=settings.operator.resync_seconds, idle=None)
    async def project_resync(body: kopf.Body, **_: object) -> None:
        await reconcile(body)
