"""The embedded query engine over the registered history files (DuckDB; docs/storage.md).

The engine knows the files from HistorySegment objects (``add``/``remove``, fed by their watch
events) and reads them from a local content-addressed cache (core/history/cache.py), fetching
what a query needs on the way. Each read takes one snapshot of the registered files, so a
compaction's swap (a segment that ``replaces`` others) is seen whole or not at all.

Rows are versioned: of several rows with one id, the newest ``archived_at`` wins (ties: the
file that sorts last). For one execution's rows this is done on the rows read. For
``list_executions``, where it would cost a pass over every row, the engine keeps per
project-domain the few rows that another row supersedes (found when files arrive: only
re-archived executions have them, and compaction removes them), over-fetches by that many and
drops them.

Reads are coroutines: files are fetched with the (async) blob store, DuckDB runs in a small
thread pool with one cursor per thread, so the event loop is never held. ``add``/``remove``
only update memory and are cheap. Memory: DuckDB's buffer pool is capped
(``duckdb_memory_limit``); the Parquet footers it caches grow with the number of files (which
compaction bounds), not with rows. DuckDB never forgets the footer of a file that is gone
(compaction replaces files all the time), so the engine opens a fresh database once
``RECYCLE_AFTER_DEAD_FILES`` files it has read are no longer registered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from flyteadmin.core.blobstore import BlobNotFound, BlobStore
from flyteadmin.core.config import HistorySettings
from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.crmap.history_segments import HistorySegment
from flyteadmin.core.crmap.node_executions import NodeExecutionRecord
from flyteadmin.core.crmap.signals import SignalRecord
from flyteadmin.core.crmap.task_executions import TaskExecutionRecord
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.executions.listing import CREATED_COLUMNS
from flyteadmin.core.history import parquet, sql
from flyteadmin.core.history.cache import FileCache, default_dir
from flyteadmin.core.history.layout import NO_MONTH, HistoryFile, parse_uri
from flyteadmin.core.history.rows import (
    EXECUTIONS,
    NODE_EXECUTIONS,
    SIGNALS,
    TASK_EXECUTIONS,
    Table,
)
from flyteadmin.core.listing import ListQuery
from flyteadmin.core.store import Stored

T = TypeVar("T")
# Footers of unregistered files DuckDB may keep before the engine starts a fresh database
# (each costs tens of KB of DuckDB's object cache, and more of the process's RSS; measured in
# bench/README.md "Memory"). Reopening costs one footer parse per active file.
RECYCLE_AFTER_DEAD_FILES = 64
Key = tuple[str, str, str]  # (table, project, domain)
Row = tuple[Any, ...]


@dataclass(frozen=True)  # not slots: cached_property needs the instance's __dict__
class _Active:
    """The files queries read: per (table, project, domain), from one consistent moment."""

    files: dict[Key, tuple[HistoryFile, ...]]

    @functools.cached_property
    def digests(self) -> frozenset[str]:
        return frozenset(f.sha256 for files in self.files.values() for f in files)

    def of(self, table: str, project: str, domain: str) -> tuple[HistoryFile, ...]:
        return self.files.get((table, project, domain), ())


@dataclass(frozen=True)
class _Superseded:
    """Rows of a project-domain's executions that a newer row of the same id supersedes,
    as (local path, execution name), valid for exactly ``paths``."""

    paths: frozenset[str]
    rows: frozenset[tuple[str, str]]


def open_cache(settings: HistorySettings) -> FileCache:
    directory = Path(settings.cache_dir) if settings.cache_dir else default_dir()
    return FileCache(directory, settings.cache_max_bytes)


def connect(settings: HistorySettings, cache: FileCache) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the configured limits; sorts and joins spill next to the
    cache. Nothing is ever downloaded at run time (no extension autoloading)."""
    spill = cache.directory / "duckdb-tmp"
    spill.mkdir(parents=True, exist_ok=True)
    db = duckdb.connect(
        config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
            "temp_directory": str(spill),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    # GLOBAL: the engine's cursors (one per thread) are sessions of their own.
    db.execute("SET GLOBAL TimeZone = 'UTC'")
    db.execute("SET GLOBAL parquet_metadata_cache = true")  # footers are parsed once per file
    db.execute("SET enable_progress_bar = false")  # long merges would draw one on stderr
    return db


class HistoryEngine:
    def __init__(self, store: BlobStore, settings: HistorySettings) -> None:
        self.store = store
        self.settings = settings
        self.cache = open_cache(settings)
        self._db = connect(settings, self.cache)
        self._pool = ThreadPoolExecutor(settings.query_workers, thread_name_prefix="history")
        # The database's cursors (one per pool thread), the queries running on them and the
        # files (by digest) the database has read since it was opened; under _db_lock.
        self._db_lock = threading.Lock()
        self._cursors: dict[int, duckdb.DuckDBPyConnection] = {}
        self._running = 0
        self._read: set[str] = set()
        self.databases_opened = 1
        self._lock = threading.Lock()
        self._segments: dict[str, HistorySegment] = {}
        self._active: _Active | None = _Active({})
        self._superseded: dict[tuple[str, str], _Superseded] = {}

    # ------------------------------------------------------------------ the segment registry

    def add(self, segment: HistorySegment) -> None:
        """Register (or update) a segment; called for the watch's ADDED/MODIFIED events.
        A segment whose ``replaces`` names others hides them from the next read on."""
        with self._lock:
            self._segments[segment.name] = segment
            self._active = None

    def remove(self, segment_name: str) -> None:
        """Forget a segment (its object was deleted); unknown names are fine."""
        with self._lock:
            if self._segments.pop(segment_name, None) is not None:
                self._active = None

    def segments(self) -> list[HistorySegment]:
        with self._lock:
            return list(self._segments.values())

    def active_files(self) -> list[HistoryFile]:
        """The files reads use now (registered and not replaced)."""
        return [f for files in self._snapshot().files.values() for f in files]

    def _snapshot(self) -> _Active:
        with self._lock:
            if self._active is None:
                replaced = {n for s in self._segments.values() for n in s.replaces}
                files: dict[Key, list[HistoryFile]] = {}
                for name, segment in sorted(self._segments.items()):
                    if name not in replaced:
                        f = segment.file
                        files.setdefault((f.table, f.project, f.domain), []).append(f)
                self._active = _Active({k: tuple(v) for k, v in files.items()})
            return self._active

    async def ensure(self, file: HistoryFile | str) -> None:
        """Make one file queryable now, before its segment arrives through the watch (e.g.
        right after archiving an execution, to serve it from history): registers it unless a
        segment for it is known, and downloads it. Given only a URI, the file is read to
        describe it. May take as long as a download."""
        if isinstance(file, str):
            known = next((s for s in self.segments() if s.file.uri == file), None)
            if known is not None:
                file = known.file
            else:
                file = await self._describe(file)
        if file.segment_name not in {s.name for s in self.segments()}:
            self.add(HistorySegment(dataclasses.replace(file, execution_names=())))
        await self.cache.fetch(self.store, file.uri, file.sha256)

    async def _describe(self, uri: str) -> HistoryFile:
        partition, _ = parse_uri(uri)
        path, _ = await self.cache.fetch(self.store, uri, None)
        facts = await asyncio.to_thread(parquet.file_facts, path)
        return HistoryFile.of(uri, partition, facts)

    async def prefetch(self) -> None:
        """Download every registered file not cached yet (e.g. at start, in the background),
        then evict what nothing references. May be slow."""
        slots = asyncio.Semaphore(4)  # downloads at once

        async def fetch(f: HistoryFile) -> None:
            async with slots:
                await self.cache.fetch(self.store, f.uri, f.sha256)

        await asyncio.gather(*(fetch(f) for f in self.active_files()))
        referenced = {s.file.sha256 for s in self.segments()}
        await asyncio.to_thread(self.cache.evict, referenced)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._db_lock:
            self._close_database()

    # ------------------------------------------------------------------ reads

    async def get_execution(
        self, project: str, domain: str, name: str
    ) -> Stored[ExecutionRecord] | None:
        """The newest archived version of one execution, or None."""
        paths = await self._paths(EXECUTIONS, project, domain)
        if not paths:
            return None
        statement = (
            f"SELECT {EXECUTIONS.select()} FROM read_parquet(?, filename = true) "
            'WHERE "execution_name" = ? ORDER BY "archived_at" DESC, "filename" DESC LIMIT 1'
        )
        rows = await self._query(statement, [paths, name])
        return EXECUTIONS.stored(rows[0]) if rows else None

    async def list_executions(
        self, query: ListQuery, project: str, domain: str, resolve_join: sql.ResolveJoin
    ) -> list[Stored[ExecutionRecord]]:
        """The first ``offset + limit`` archived executions of one project-domain in the
        query's order (all of them with limit 0): the caller merges them with the live ones
        and cuts the page. ``resolve_join`` answers ``launch_plan.``/``workflow.``/``task.``
        filters (see core/history/sql.py).

        Sorted by creation time (the default), the rows are read through a time window at
        the newest end (the oldest, ascending) that widens until the page is full: the window
        prunes files and row groups, so a first page reads a few row groups whatever the
        history's size (DuckDB's own top-N pruning cannot: files are sorted ascending)."""
        located = await self._located(EXECUTIONS, project, domain)
        if not located:
            return []
        superseded = await self._superseded_rows(project, domain, [p for _, p in located])
        clause = sql.where(query, resolve_join)
        wanted = query.offset + query.limit if query.limit else None

        async def first_rows(
            chosen: list[tuple[HistoryFile, str]], window: str = "TRUE", bound: Any = None
        ) -> list[Row]:
            """The first rows of ``chosen`` inside ``window`` (SQL with ``bound`` as its one
            parameter), superseded rows dropped."""
            paths = [p for _, p in chosen]
            statement = (
                f'SELECT {EXECUTIONS.select()}, "filename", "execution_name" '
                f"FROM read_parquet(?, filename = true) WHERE ({clause.sql}) AND {window} "
                f"ORDER BY {sql.order_by(query)}"
            )
            params = [paths, *clause.params]
            if bound is not None:
                params.append(bound)
            if wanted is not None:
                statement += " LIMIT ?"
                params.append(wanted + sum(1 for r in superseded if r[0] in paths))
            rows = await self._query(statement, params)
            return [r[:-2] for r in rows if (r[-2], r[-1]) not in superseded][:wanted]

        by_creation = query.sort is not None and query.sort.key in CREATED_COLUMNS
        if wanted is not None and by_creation:
            assert query.sort is not None
            rows = await self._windowed(located, query.sort.ascending, wanted, first_rows)
        else:
            rows = await first_rows(located)
        return [EXECUTIONS.stored(r) for r in rows]

    @staticmethod
    async def _windowed(
        located: list[tuple[HistoryFile, str]],
        ascending: bool,
        wanted: int,
        first_rows: Callable[..., Awaitable[list[Row]]],
    ) -> list[Row]:
        """``first_rows`` in creation-time order through a widening window: first about four
        pages' worth of time (from the files' row counts and time ranges), four times wider
        each time the page is not full, all rows at last. A window holding ``wanted`` rows
        holds the first ``wanted`` rows overall: every row outside sorts after it (NULLs
        are inside ascending, outside descending)."""
        timed = [(fp, r) for fp in located if (r := _time_range(fp[0])) is not None]
        untimed = [fp for fp in located if _time_range(fp[0]) is None]
        if timed:
            low = min(r[0] for _, r in timed)
            high = max(r[1] for _, r in timed)
            span = high - low
            share = min(1.0, 4 * wanted / max(1, sum(fp[0].rows for fp, _ in timed)))
            width = max(span * share, span / 4096, dt.timedelta(microseconds=1))
            while width < span:
                if ascending:
                    bound = low + width
                    chosen = untimed + [fp for fp, r in timed if r[0] <= bound]
                    window = '("created_at" IS NULL OR "created_at" <= ?)'
                else:
                    bound = high - width
                    chosen = [fp for fp, r in timed if r[1] >= bound]
                    window = '"created_at" >= ?'
                rows = await first_rows(chosen, window, bound)
                if len(rows) >= wanted:
                    return rows
                width *= 4
        return await first_rows(located)

    async def node_executions(
        self, project: str, domain: str, name: str, month: str | None = None
    ) -> list[Stored[NodeExecutionRecord]]:
        """Every archived node execution of one execution (newest version of each, in node id
        order). With
        ``month``, the execution's partition (``layout.month_of`` its created_at), only that
        month's files are read: much less work than every month's."""
        return await self._of_execution(NODE_EXECUTIONS, project, domain, name, month)

    async def task_executions(
        self, project: str, domain: str, name: str, month: str | None = None
    ) -> list[Stored[TaskExecutionRecord]]:
        return await self._of_execution(TASK_EXECUTIONS, project, domain, name, month)

    async def signals(
        self, project: str, domain: str, name: str, month: str | None = None
    ) -> list[Stored[SignalRecord]]:
        return await self._of_execution(SIGNALS, project, domain, name, month)

    async def _of_execution(
        self, table: Table[T], project: str, domain: str, name: str, month: str | None
    ) -> list[Stored[T]]:
        paths = await self._paths(table, project, domain, month)
        if not paths:
            return []
        keys = ", ".join(sql.quoted(k) for k in table.key)
        statement = (
            f"SELECT {table.select()}, {keys} FROM read_parquet(?, filename = true) "
            'WHERE "execution_name" = ? ORDER BY "archived_at", "filename"'
        )
        rows = await self._query(statement, [paths, name])
        width = len(table.key)
        newest = {r[-width:]: r[:-width] for r in rows}  # later rows (newer) overwrite
        return [table.stored(newest[key]) for key in sorted(newest)]  # in key order

    # ------------------------------------------------------------------ files and queries

    async def _located(
        self, table: Table[Any], project: str, domain: str, month: str | None = None
    ) -> list[tuple[HistoryFile, str]]:
        """The table's registered files for a project-domain (and month, if given) with their
        local paths (fetched when not cached), from one snapshot of the registry. Queries
        need not filter on project and domain: a file holds one partition's rows."""
        files = self._snapshot().of(table.name, project, domain)
        if month is not None:
            files = tuple(f for f in files if f.month == month)
        try:
            fetched = await asyncio.gather(
                *(self.cache.fetch(self.store, f.uri, f.sha256) for f in files)
            )
        except BlobNotFound as exc:
            # A registered file is gone: replaced by compaction, its blob deleted, and this
            # replica has not seen the replacing segment yet. Retrying soon works.
            raise AdminError(
                Code.UNAVAILABLE, f"history file {exc.uri} is gone; the registry is catching up"
            ) from exc
        return [(f, str(path)) for f, (path, _) in zip(files, fetched, strict=True)]

    async def _paths(
        self, table: Table[Any], project: str, domain: str, month: str | None = None
    ) -> list[str]:
        return sorted(p for _, p in await self._located(table, project, domain, month))

    async def _query(self, statement: str, params: list[Any]) -> list[Row]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, self._execute, statement, params)
        except duckdb.IOException:
            # A file another process evicted between our fetch and DuckDB's open: fetch the
            # missing ones again (paths are content addresses: the same) and retry once.
            await self._refetch(params)
            return await loop.run_in_executor(self._pool, self._execute, statement, params)

    async def _refetch(self, params: Iterable[Any]) -> None:
        by_digest = {f.sha256: f for fs in self._snapshot().files.values() for f in fs}
        for digest, path in self._read_files(params).items():
            f = by_digest.get(digest)
            if f is not None and not path.exists():
                await self.cache.fetch(self.store, f.uri, f.sha256)

    def _read_files(self, params: Iterable[Any]) -> dict[str, Path]:
        """The cached files a query's parameters name (lists of paths), by digest."""
        paths = {Path(p) for v in params if isinstance(v, list) for p in v if isinstance(p, str)}
        return {d: p for p in paths if (d := self.cache.digest_of(p)) is not None}

    def _execute(self, statement: str, params: Sequence[Any]) -> list[Row]:
        digests = set(self._read_files(params))
        with self._db_lock:
            dead = self._read - self._snapshot().digests
            if self._running == 0 and len(dead) >= RECYCLE_AFTER_DEAD_FILES:
                self._close_database()
                self._db = connect(self.settings, self.cache)
                self.databases_opened += 1
            thread = threading.get_ident()
            cursor = self._cursors.get(thread)
            if cursor is None:  # a session of its own (settings: see connect)
                cursor = self._cursors[thread] = self._db.cursor()
            self._read |= digests
            self._running += 1
        try:
            return cursor.execute(statement, params).fetchall()
        finally:
            with self._db_lock:
                self._running -= 1

    def _close_database(self) -> None:
        """Close every cursor and the database (nothing may be running on them)."""
        for cursor in self._cursors.values():
            cursor.close()
        self._cursors.clear()
        self._read.clear()
        self._db.close()

    async def _superseded_rows(
        self, project: str, domain: str, paths: list[str]
    ) -> frozenset[tuple[str, str]]:
        """(path, execution name) of every superseded executions row of a project-domain,
        for exactly these files: known ones are reused, files added since are checked against
        all (their names only), and after a removal everything is checked again."""
        current = frozenset(paths)
        known = self._superseded.get((project, domain))
        if known is not None and known.paths == current:
            return known.rows
        if known is not None and known.paths <= current:
            new = sorted(current - known.paths)
            statement = (
                'SELECT "filename", "execution_name", epoch_us("archived_at") '
                'FROM read_parquet(?, filename = true) WHERE "execution_name" IN '
                '(SELECT "execution_name" FROM read_parquet(?))'
            )
            rows = await self._query(statement, [paths, new])
            names = {r[1] for r in rows}
            kept = {r for r in known.rows if r[1] not in names}
        else:
            # Names first (a hash aggregate of one column), then only their rows.
            statement = (
                'SELECT "filename", "execution_name", epoch_us("archived_at") '
                'FROM read_parquet(?, filename = true) WHERE "execution_name" IN '
                '(SELECT "execution_name" FROM read_parquet(?) GROUP BY 1 HAVING count(*) > 1)'
            )
            rows = await self._query(statement, [paths, paths])
            kept = set()
        result = frozenset(kept | _older_versions(rows))
        self._superseded[(project, domain)] = _Superseded(current, result)
        return result


def _time_range(f: HistoryFile) -> tuple[dt.datetime, dt.datetime] | None:
    """The created_at range of an executions file; None when its rows have none."""
    if f.month == NO_MONTH or f.min_created_at is None or f.max_created_at is None:
        return None
    return f.min_created_at, f.max_created_at


def _older_versions(rows: Iterable[Row]) -> set[tuple[str, str]]:
    """Of (path, name, archived_at) rows, the (path, name) of all but each name's newest."""
    newest: dict[str, tuple[Any, str]] = {}
    every: dict[str, list[str]] = {}
    for path, name, archived_at in rows:
        every.setdefault(name, []).append(path)
        version = (archived_at, path)
        if name not in newest or version > newest[name]:
            newest[name] = version
    return {
        (path, name) for name, paths in every.items() for path in paths if path != newest[name][1]
    }
