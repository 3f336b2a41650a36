"""The operator's side of execution clusters (docs/multicluster.md): probing the unavailable
ones (``Targets.probe``) and catching up with a cluster that is back: its namespaces, then its
cluster resources (forced: it may have lost them), then every execution placed there (waiting
launches go out, terminations and clean-ups are done). The periodic resyncs would get there
too; this does it at once.
"""

from __future__ import annotations

import logging

from flyteadmin.core.cluster_targets import Target
from flyteadmin.core.executions.launch import cluster_of
from flyteadmin.operator import cluster_resources
from flyteadmin.operator.context import OperatorContext
from flyteadmin.operator.handlers import launcher, namespace_listings, reconcile_projects

log = logging.getLogger(__name__)


async def catch_up(ctx: OperatorContext, target: Target) -> None:
    if target in ctx.targets.namespace_targets():
        listings = await namespace_listings(ctx, [target])
        await reconcile_projects(ctx, ctx.backend.project_records.values(), [target], listings)
    sync = cluster_resources.controller(ctx)
    if sync.enabled and target in ctx.targets.resource_targets():
        await sync.sync(clusters=[target.name], force=True)
    launch = launcher(ctx)
    for stored in ctx.backend.execution_records.values():
        if cluster_of(stored.value) != target.name:
            continue
        try:
            await launch.reconcile(stored.value)
        except Exception as exc:  # noqa: BLE001 - one execution must not stop the others
            log.warning("execution %s: %s (retried at the next resync)", stored.name, exc)


async def run(ctx: OperatorContext) -> None:
    """One of the runner's loops."""
    await ctx.targets.probe(lambda target: catch_up(ctx, target))
