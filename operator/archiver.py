"""The archiver loop beside the Kopf handlers: finished executions move from etcd to history
(core/archive.py), and the small history files of a partition are merged (compaction).

One pass every ``archive.interval_seconds``; while a pass moves a full batch it goes again at
once, so a backlog (or budget pressure) drains as fast as kube-apiserver allows. Compaction
runs one merge per pass when a partition has enough small files; the merged file's segment
replaces the inputs at once (readers switch atomically), the input segments are deleted, and
their blobs after a grace period (a reader may still be reading them).
"""

from __future__ import annotations

import asyncio
import logging
import time

from flyteadmin.core.archive import Archiver
from flyteadmin.core.crmap.history_segments import DONE, HistorySegment
from flyteadmin.core.history.compaction import compact, plan
from flyteadmin.core.store import NotFound
from flyteadmin.operator.context import OperatorContext
from flyteadmin.operator.handlers import launcher

log = logging.getLogger(__name__)

BLOB_GRACE_SECONDS = 600.0  # replaced files stay readable this long after compaction


class ArchiveLoop:
    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.archiver = Archiver(
            ctx.backend,
            settings.archive,
            settings.etcd,
            delete_workflow_object=launcher(ctx).delete_object,
        )
        self._retired: list[tuple[float, str]] = []  # (when replaced, blob URI)

    async def run(self) -> None:
        settings = self.ctx.settings.archive
        while True:
            moved = 0
            try:
                outcome = await self.archiver.run_once()
                moved = outcome.archived + outcome.skipped
                await self.compact_once()
                await self._delete_retired()
            except Exception:  # noqa: BLE001 - the next pass tries again
                log.exception("archive pass failed")
            if moved < settings.batch_executions:
                await asyncio.sleep(settings.interval_seconds)

    async def compact_once(self) -> bool:
        """Merge one group of small files; whether there was one."""
        backend = self.ctx.backend
        engine = backend.history_engine
        segments = [s.value for s in backend.segment_records.values()]
        groups = plan(segments, engine.settings)
        if not groups:
            return False
        group = groups[0]
        merged, replaced = await compact(group, engine.store, engine.settings, engine.cache)
        await backend.segment_records.create(HistorySegment(merged, replaced, DONE))
        for segment in group:
            try:
                await backend.segment_records.delete(segment.name)
            except NotFound:
                pass
            self._retired.append((time.monotonic(), segment.file.uri))
        log.info("compacted %d history files of %s into one", len(group), merged.partition)
        return True

    async def _delete_retired(self) -> None:
        store = self.ctx.backend.history_engine.store
        now = time.monotonic()
        keep = []
        for when, uri in self._retired:
            if now - when < BLOB_GRACE_SECONDS:
                keep.append((when, uri))
                continue
            try:
                await store.delete(uri)
            except Exception as exc:  # noqa: BLE001 - a leftover file is harmless; say so
                log.warning("replaced history file %s not deleted: %s", uri, exc)
        self._retired = keep


async def run_archiver(ctx: OperatorContext) -> None:
    if not ctx.settings.archive.enabled:
        return
    await ArchiveLoop(ctx).run()
