"""Execution phase notifications: a second ``on.event`` handler on executions.

Level-triggered like the others: every event of an execution, and the initial listing after a
restart, offers the execution to the core's Notifier, which starts in the background whatever
the execution is owed and not yet recorded in ``status.notified``, and returns at once. Kopf
does not retry ``on.event`` handlers, so retries live in the Notifier (with backoff), and the
handler itself never fails on a delivery. Nothing is registered when notifications are off.
"""

from __future__ import annotations

import logging

import kopf

from flyteadmin.core import crds, metrics
from flyteadmin.core.crmap.executions import ExecutionCodec
from flyteadmin.core.notifications import Notifier, build_routes
from flyteadmin.operator.context import OperatorContext

log = logging.getLogger(__name__)
_EXECUTIONS = (crds.GROUP, crds.VERSION, crds.EXECUTION.plural)


def register(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    settings = ctx.settings.notifications
    if not settings.enabled:
        return
    routes = build_routes(settings)  # a misconfiguration stops the operator's start here
    notifier = Notifier(settings, ctx.backend.execution_records, routes)
    codec = ExecutionCodec()

    @kopf.on.event(*_EXECUTIONS, registry=registry)
    async def notify_execution(
        event: kopf.RawEvent, body: kopf.Body, name: str, **_: object
    ) -> None:
        if event.get("type") == "DELETED":
            return
        with metrics.reconciling("notifications"):
            started = notifier.offer(name, codec.decode(dict(body)))
        if started:
            log.info("execution %s: sending %d notification(s)", name, len(started))

    @kopf.on.cleanup(registry=registry)
    async def stop_notifications(**_: object) -> None:
        await notifier.close()
