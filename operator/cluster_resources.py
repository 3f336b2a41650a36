"""Cluster resources in the operator: a periodic pass plus immediate re-applies.

- ``run`` (one of the runner's loops): a pass over every active project-domain at start and then
  every ``cluster_resources.resync_seconds``; each pass re-reads the templates, so a changed
  template directory (e.g. an updated ConfigMap volume) is applied at the next pass.
- ``register``: ``on.event`` handlers on MatchableAttributes (a CLUSTER_RESOURCE row changed:
  re-apply the project-domains it can affect, at once) and on Projects (a new or re-activated
  project gets its objects without waiting for the next pass).

Both share one ``ClusterResources`` per Backend (its hashes of what was applied and its lock).
Errors are per project-domain and never stop the loop (core/cluster_resources.py reports them).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import kopf

from flyteadmin.core import crds, metrics
from flyteadmin.core.cluster_resources import ClusterResources
from flyteadmin.core.store import Collection
from flyteadmin.operator.context import OperatorContext

log = logging.getLogger(__name__)

_ATTRIBUTES = (crds.GROUP, crds.VERSION, crds.MATCHABLE_ATTRIBUTES.plural)
_PROJECTS = (crds.GROUP, crds.VERSION, crds.PROJECT.plural)
_CACHE_WAIT_SECONDS = 10.0

_controllers: weakref.WeakKeyDictionary[Any, ClusterResources] = weakref.WeakKeyDictionary()


def controller(ctx: OperatorContext) -> ClusterResources:
    """The one ClusterResources of this operator (keyed by its Backend)."""
    found = _controllers.get(ctx.backend)
    if found is None:
        found = _controllers[ctx.backend] = ClusterResources(
            ctx.api,
            ctx.settings,
            attributes=ctx.backend.attributes,
            projects=ctx.backend.project_records,
            targets=ctx.targets,
        )
    return found


async def caught_up(collection: Collection[Any], body: kopf.Body) -> None:
    """Wait until the core's watch cache has seen this event (Kopf's watch and the cache's are
    two streams), so resolution reads the new rows. Gives up quietly after a while: the next
    pass repairs anything missed."""
    version = int(body["metadata"].get("resourceVersion") or 0)
    if not await collection.wait_seen(version, _CACHE_WAIT_SECONDS):
        name = body["metadata"]["name"]
        log.debug("the cache did not catch up with %s %s", collection.kind.kind, name)


def affected(spec: dict[str, Any]) -> tuple[list[str] | None, list[str] | None] | None:
    """(projects, domains) a CLUSTER_RESOURCE row can change (None: all), or None when the row
    is not one: workflow-level rows never apply to a project-domain."""
    if spec.get("resourceType") != "CLUSTER_RESOURCE":
        return None
    if spec.get("workflow") or spec.get("launchPlan"):
        return None
    project, domain = spec.get("project") or "", spec.get("domain") or ""
    return ([project] if project else None), ([domain] if domain else None)


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    sync = controller(ctx)
    if not sync.enabled:
        return

    @kopf.on.event(*_ATTRIBUTES, registry=registry)
    async def cluster_resource_attribute_event(
        event: kopf.RawEvent, body: kopf.Body, **_: object
    ) -> None:
        scope = affected(dict(body.get("spec") or {}))
        if scope is None:
            return
        with metrics.reconciling("cluster_resources_attribute"):
            await caught_up(ctx.backend.attribute_records, body)
            await sync.sync(*scope)

    @kopf.on.event(*_PROJECTS, registry=registry)
    async def cluster_resource_project_event(
        event: kopf.RawEvent, body: kopf.Body, **_: object
    ) -> None:
        if event.get("type") == "DELETED":
            return
        with metrics.reconciling("cluster_resources_project"):
            await caught_up(ctx.backend.project_records, body)
            await sync.sync([body["metadata"]["name"]])


async def run(ctx: OperatorContext) -> None:
    """The periodic pass (see the module docstring); returns at once when disabled."""
    sync = controller(ctx)
    if not sync.enabled:
        return
    while True:
        try:
            with metrics.resync("cluster_resources"):
                outcomes = await sync.sync()
            failed = sum(o.status == "failed" for o in outcomes)
            if failed:
                log.info("cluster resources pass: %d of %d failed", failed, len(outcomes))
        except Exception:  # noqa: BLE001 - a bug here must not end the loop
            log.exception("cluster resources pass failed")
        await asyncio.sleep(ctx.settings.cluster_resources.resync_seconds)
