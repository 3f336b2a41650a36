"""History at scale: seed N executions straight into history files, then time the engine.

Seeding goes through ``HistoryWriter`` into a GCS emulator kept on disk (``--work-dir``):
executions with ``--nodes`` node executions and as many task executions each (realistic
records, cloned from tests/history_samples.py), several launch plans and principals, a spread of
terminal phases, creation times spread over ``--months`` months, written in creation order in
batches of ``--batch`` executions (what an archiver does), by ``--workers`` processes. Every
finished batch is recorded in ``<work-dir>/seeded.jsonl``, so an interrupted seeding resumes
where it stopped. Then compaction merges each partition's small files (``compacted.jsonl``).

The measurement runs in this process, on a ``HistoryEngine`` that registers every segment and
downloads the files into its cache first; one client, ``--seconds`` per figure:
ListExecutions-like lists (``eq(phase,FAILED)`` newest first, limit 100; ``eq(launch_plan.name,
...)`` resolved like the API server will), ``get_execution`` and ``node_executions`` of random
executions, and this process's RSS. Figures go to stdout, progress to stderr.

    .venv/bin/python -m bench.history                       # 1,000,000 executions
    .venv/bin/python -m bench.history --executions 20000    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import json
import multiprocessing
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import machine_info, percentile, print_table, run_main, say
from flyteadmin.core import listing
from flyteadmin.core.blobstore import GcsBlobStore
from flyteadmin.core.config import HistorySettings, StorageSettings
from flyteadmin.core.crmap.history_segments import DONE, HistorySegment, HistorySegmentCodec
from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.executions.listing import execution_schema
from flyteadmin.core.history import compaction
from flyteadmin.core.history.engine import HistoryEngine
from flyteadmin.core.history.writer import Batch, HistoryWriter
from flyteadmin.core.registration import tasks as task_registration
from flyteadmin.core.registration import workflows as workflow_registration
from flyteadmin.core.registration.entities import entity_schema, id_columns
from flyteadmin.core.store import Stored
from flyteadmin.devstack.gcs import start_gcs_emulator
from tests import history_samples as samples

PROJECT, DOMAIN = "flytesnacks", "production"
LAUNCH_PLANS = tuple(
    f"pipelines.{n}.wf"
    for n in ("train", "etl", "report", "score", "ingest", "backfill", "eval", "export")
)
VERSIONS = ("v-8f1c2a", "v-93be07", "v-a4417d")
PRINCIPALS = tuple(f"user{i}@example.com" for i in range(19)) + ("flyte-scheduler",)
WF = samples.WF
# Terminal phases (history holds finished executions): most succeed.
PHASES = (WF.SUCCEEDED,) * 14 + (WF.FAILED,) * 3 + (WF.ABORTED, WF.TIMED_OUT, WF.FAILED)
END = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
SEGMENT_CODEC = HistorySegmentCodec()


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.history", description=__doc__.split("\n")[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--nodes", type=int, default=10, help="node (and task) executions each")
    parser.add_argument("--months", type=int, default=12, help="creation times spread (12)")
    parser.add_argument("--batch", type=int, default=5000, help="executions per write (5000)")
    parser.add_argument("--workers", type=int, default=2, help="seeding processes (2)")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "flyteadmin-bench-history",
        help="emulator data, journals and the engine's cache (kept, so seeding resumes)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds each")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--no-compact", action="store_true", help="measure the small files")
    parser.add_argument(
        "--row-groups",
        default="",
        help="executions,children rows per row group (default: the settings')",
    )
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (settings')")
    return parser.parse_args(argv)


def history_settings(args: argparse.Namespace) -> HistorySettings:
    settings = HistorySettings(cache_dir=str(args.work_dir / "cache"))
    if args.row_groups:
        executions, children = (int(v) for v in args.row_groups.split(","))
        settings = dataclasses.replace(
            settings, executions_row_group_rows=executions, children_row_group_rows=children
        )
    if args.threads:
        settings = dataclasses.replace(settings, duckdb_threads=args.threads)
    return settings


# ---------------------------------------------------------------------------------- records


def execution_name(n: int) -> str:
    """Flyte-like generated names: 20 characters, random-looking, deterministic in n."""
    digest = hashlib.blake2b(n.to_bytes(8, "big"), digest_size=12).hexdigest()
    return "a" + digest[:19]


def created_at(n: int, total: int, months: int) -> dt.datetime:
    span = dt.timedelta(days=30.4 * months)
    return END - span + span * (n / total)


def shape_of(n: int, total: int, months: int, nodes: int) -> samples.Shape:
    rng = random.Random(n)
    phase = rng.choice(PHASES)
    return samples.Shape(
        project=PROJECT,
        domain=DOMAIN,
        name=execution_name(n),
        created_at=created_at(n, total, months),
        phase=phase,
        launch_plan=LAUNCH_PLANS[n % len(LAUNCH_PLANS)],
        version=VERSIONS[(n // len(LAUNCH_PLANS)) % len(VERSIONS)],
        principal=rng.choice(PRINCIPALS),
        nodes=nodes,
        failed=phase == WF.FAILED,
        duration=dt.timedelta(seconds=rng.randrange(30, 7200), microseconds=rng.randrange(10**6)),
    )


_TEMPLATE = "TEMPLATENAME"


def _stamp(field: Any, moment: dt.datetime) -> None:
    field.FromDatetime(moment)


class Cloner:
    """Records like tests/history_samples.py builds, made ~10x faster: each kind is built once
    per variant (launch plan, version, phase, node) and cloned, with the execution's name,
    times and principal written into the copy."""

    def __init__(self) -> None:
        self._executions: dict[tuple, Any] = {}
        self._nodes: dict[tuple, Any] = {}
        self._tasks: dict[tuple, Any] = {}

    def _variant(self, s: samples.Shape) -> samples.Shape:
        return dataclasses.replace(s, name=_TEMPLATE, principal="p", duration=dt.timedelta(1))

    def execution(self, s: samples.Shape):
        key = (s.launch_plan, s.version, s.phase)
        template = self._executions.get(key)
        if template is None:
            template = self._executions[key] = samples.execution(self._variant(s))
        ex = type(template.execution)()
        ex.CopyFrom(template.execution)
        ex.id.name = s.name
        ex.spec.metadata.principal = s.principal
        ex.spec.annotations.values["flyte.org/owner"] = s.principal
        c = ex.closure
        started = s.created_at + dt.timedelta(seconds=3)
        _stamp(c.created_at, s.created_at)
        _stamp(c.state_change_details.occurred_at, s.created_at)
        _stamp(c.started_at, started)
        _stamp(c.updated_at, started + s.duration)
        c.duration.FromTimedelta(s.duration)
        if c.HasField("outputs"):
            c.outputs.uri = c.outputs.uri.replace(_TEMPLATE, s.name)
        if c.HasField("error"):
            c.error.error_uri = c.error.error_uri.replace(_TEMPLATE, s.name)
        return dataclasses.replace(
            template,
            execution=ex,
            inputs_uri=template.inputs_uri.replace(_TEMPLATE, s.name),
            user_inputs_uri=template.user_inputs_uri.replace(_TEMPLATE, s.name),
        )

    def node(self, s: samples.Shape, i: int):
        key = (i, s.failed)
        template = self._nodes.get(key)
        if template is None:
            template = self._nodes[key] = samples.node_execution(self._variant(s), i)
        node = type(template.node)()
        node.CopyFrom(template.node)
        node.id.execution_id.name = s.name
        node.input_uri = node.input_uri.replace(_TEMPLATE, s.name)
        c = node.closure
        c.output_uri = c.output_uri.replace(_TEMPLATE, s.name)
        c.task_node_metadata.checkpoint_uri = c.task_node_metadata.checkpoint_uri.replace(
            _TEMPLATE, s.name
        )
        created = s.created_at + dt.timedelta(seconds=5 + 40 * i)
        _stamp(c.created_at, created)
        _stamp(c.started_at, created + dt.timedelta(seconds=1))
        _stamp(c.updated_at, created + dt.timedelta(seconds=31 + i))
        return dataclasses.replace(template, node=node)

    def task(self, s: samples.Shape, i: int):
        key = (i, s.failed)
        template = self._tasks.get(key)
        if template is None:
            template = self._tasks[key] = samples.task_execution(self._variant(s), i)
        task = type(template.task)()
        task.CopyFrom(template.task)
        task.id.node_execution_id.execution_id.name = s.name
        task.input_uri = task.input_uri.replace(_TEMPLATE, s.name)
        c = task.closure
        c.output_uri = c.output_uri.replace(_TEMPLATE, s.name)
        for log in c.logs:
            log.uri = log.uri.replace(_TEMPLATE, s.name)
        c.metadata.generated_name = c.metadata.generated_name.replace(_TEMPLATE, s.name)
        c.custom_info["podName"] = c.metadata.generated_name
        created = s.created_at + dt.timedelta(seconds=6 + 40 * i)
        _stamp(c.created_at, created)
        _stamp(c.started_at, created + dt.timedelta(seconds=2))
        _stamp(c.updated_at, created + dt.timedelta(seconds=27 + i))
        for n, reason in enumerate(c.reasons):
            _stamp(reason.occurred_at, created + dt.timedelta(seconds=2 * n))
        return dataclasses.replace(template, task=task)


def batch_of(first: int, count: int, args: argparse.Namespace, cloner: Cloner) -> Batch:
    shapes = [
        shape_of(n, args.executions, args.months, args.nodes) for n in range(first, first + count)
    ]
    return Batch(
        executions=[cloner.execution(s) for s in shapes],
        node_executions=[cloner.node(s, i) for s in shapes for i in range(s.nodes)],
        task_executions=[cloner.task(s, i) for s in shapes for i in range(s.nodes)],
    )


# ---------------------------------------------------------------------------------- seeding


_CLONER = Cloner()  # one per seeding process


def _segment_json(segment: HistorySegment) -> dict[str, Any]:
    return SEGMENT_CODEC.encode(segment)


def _segment(body: dict[str, Any]) -> HistorySegment:
    return SEGMENT_CODEC.decode(body)


def _write_batch(
    index: int, args: argparse.Namespace, storage: StorageSettings
) -> tuple[int, list[dict], float]:
    """One batch, in a worker process: its files as segment bodies, and the seconds it took."""
    started = time.perf_counter()
    count = min(args.batch, args.executions - index * args.batch)
    batch = batch_of(index * args.batch, count, args, _CLONER)

    async def write():
        store = GcsBlobStore(storage)
        try:
            return await HistoryWriter(store, history_settings(args)).write(batch)
        finally:
            await store.close()

    files = asyncio.run(write())
    done = [_segment_json(HistorySegment(dataclasses.replace(f, execution_names=()), phase=DONE))
            for f in files]  # fmt: skip
    return index, done, time.perf_counter() - started


def read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def seed(args: argparse.Namespace, storage: StorageSettings) -> None:
    journal = args.work_dir / "seeded.jsonl"
    done = {entry["batch"] for entry in read_lines(journal)}
    batches = [i for i in range(-(-args.executions // args.batch)) if i not in done]
    if not batches:
        say(f"seeding: all {len(done)} batches were written before")
        return
    say(f"seeding: {len(batches)} batches of {args.batch} executions ({len(done)} done before)")
    started = time.perf_counter()
    written = 0
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [pool.submit(_write_batch, i, args, storage) for i in batches]
        with journal.open("a") as out:
            for future in concurrent.futures.as_completed(futures):
                index, segments, seconds = future.result()
                out.write(json.dumps({"batch": index, "segments": segments}) + "\n")
                out.flush()
                written += 1
                rate = written * args.batch / (time.perf_counter() - started)
                rows = rate * (1 + 2 * args.nodes)
                say(
                    f"batch {index} in {seconds:.1f}s; {written}/{len(batches)}, "
                    f"{rate:,.0f} executions/s ({rows:,.0f} rows/s)"
                )
    elapsed = time.perf_counter() - started
    say(f"seeded {len(batches) * args.batch:,} executions in {elapsed:,.0f}s")


def _compact_group(group: list[dict], args: argparse.Namespace, storage: StorageSettings) -> dict:
    async def run() -> dict:
        store = GcsBlobStore(storage)
        settings = history_settings(args)
        engine = HistoryEngine(store, settings)  # for its cache
        try:
            segments = [_segment(b) for b in group]
            merged, replaced = await compaction.compact(segments, store, settings, engine.cache)
            return _segment_json(HistorySegment(merged, replaced, DONE))
        finally:
            engine.close()
            await store.close()

    return asyncio.run(run())


def all_segments(args: argparse.Namespace) -> list[HistorySegment]:
    bodies = [b for entry in read_lines(args.work_dir / "seeded.jsonl") for b in entry["segments"]]
    bodies += [entry["segment"] for entry in read_lines(args.work_dir / "compacted.jsonl")]
    return [_segment(b) for b in bodies]


def compact(args: argparse.Namespace, storage: StorageSettings) -> None:
    groups = compaction.plan(all_segments(args), history_settings(args))
    if not groups:
        say("compaction: nothing to merge")
        return
    say(f"compaction: {len(groups)} groups")
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [
            pool.submit(_compact_group, [_segment_json(s) for s in g], args, storage)
            for g in groups
        ]
        with (args.work_dir / "compacted.jsonl").open("a") as out:
            for future in concurrent.futures.as_completed(futures):
                out.write(json.dumps({"segment": future.result()}) + "\n")
                out.flush()
    say(f"compacted in {time.perf_counter() - started:,.0f}s")


# ---------------------------------------------------------------------------------- measuring


def registries() -> dict[str, samples.Registry]:
    def records(rt, message_type, names) -> list[Stored]:
        out = []
        for name in names:
            for version in VERSIONS:
                ident = samples.ident(rt, PROJECT, DOMAIN, name, version)
                out.append(Stored(name, 1, "", END, Registered(message_type(id=ident), "d")))
        return out

    from flyteidl.admin import launch_plan_pb2, workflow_pb2

    return {
        "launch_plan": samples.Registry(
            entity_schema("launch_plan", id_columns()),
            records(samples.RT.LAUNCH_PLAN, launch_plan_pb2.LaunchPlan, LAUNCH_PLANS),
        ),
        "workflow": samples.Registry(
            workflow_registration.SCHEMA,
            records(samples.RT.WORKFLOW, workflow_pb2.Workflow, LAUNCH_PLANS),
        ),
        "task": samples.Registry(task_registration.SCHEMA, []),
    }


@dataclasses.dataclass
class Figure:
    name: str
    latencies: list[float]
    cpu: list[float]
    """CPU seconds of this process per call (all its threads): on a busy machine, closer to
    what the call costs than its wall time."""
    rows: int

    def ms(self, q: float, values: list[float] | None = None) -> str:
        return f"{percentile(self.latencies if values is None else values, q) * 1000:.1f}"


async def timed(name: str, op: Callable[[int], Awaitable[int]], args: argparse.Namespace) -> Figure:
    say(f"{name}: {args.warmup}s warm-up, {args.seconds}s measured, 1 client")
    rng = random.Random(name)
    loop = asyncio.get_running_loop()
    for window, keep in ((args.warmup, False), (args.seconds, True)):
        latencies: list[float] = []
        cpu: list[float] = []
        rows = 0
        deadline = loop.time() + window
        while loop.time() < deadline:
            started, used = time.perf_counter(), time.process_time()
            rows += await op(rng.randrange(args.executions))
            latencies.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
        if keep:
            return Figure(name, latencies, cpu, rows)
    raise AssertionError("unreachable")


def rss_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / 1024
    return 0.0


async def write_stalls(args: argparse.Namespace, storage: StorageSettings) -> str:
    """Write one archive batch (1,000 executions of another project, so the figures below do
    not see it) while a heartbeat measures how long the event loop is held."""
    settings = history_settings(args)
    count = 1000
    shapes = [
        dataclasses.replace(shape_of(n, args.executions, args.months, args.nodes), project="stalls")
        for n in range(count)
    ]
    cloner = Cloner()
    batch = Batch(
        executions=[cloner.execution(s) for s in shapes],
        node_executions=[cloner.node(s, i) for s in shapes for i in range(s.nodes)],
        task_executions=[cloner.task(s, i) for s in shapes for i in range(s.nodes)],
    )
    stalls: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.001)
            stalls.append(loop.time() - before - 0.001)

    store = GcsBlobStore(storage)
    beat = asyncio.create_task(heartbeat())
    started = time.perf_counter()
    try:
        await HistoryWriter(store, settings).write(batch)
    finally:
        done.set()
        await beat
        await store.close()
    seconds = time.perf_counter() - started
    return (
        f"write of {count:,} executions ({count * (1 + 2 * args.nodes):,} rows) in {seconds:.1f}s; "
        f"event loop held p50 {percentile(stalls, 50) * 1000:.1f} ms, "
        f"p99 {percentile(stalls, 99) * 1000:.1f} ms, max {max(stalls) * 1000:.1f} ms"
    )


async def measure(args: argparse.Namespace, storage: StorageSettings) -> None:
    settings = history_settings(args)
    store = GcsBlobStore(storage)
    engine = HistoryEngine(store, settings)
    segments = all_segments(args)
    for s in segments:
        engine.add(s)
    regs = registries()
    schema = execution_schema(regs["launch_plan"], regs["workflow"], regs["task"])
    resolve = samples.resolver(schema, regs)
    files = engine.active_files()
    say(f"{len(segments)} segments, {len(files)} active files, "
        f"{sum(f.bytes for f in files) / 2**20:,.0f} MiB; downloading into the cache")  # fmt: skip
    started = time.perf_counter()
    await engine.prefetch()
    download = time.perf_counter() - started
    rss_start = rss_mib("VmRSS")

    def parse(filters: str) -> listing.ListQuery:
        return listing.parse_list_request(
            schema, filters=filters, sort_key="created_at", ascending=False, token="",
            limit=100, rpc="ListExecutions",
        )  # fmt: skip

    phase_query = parse("eq(phase,FAILED)")

    async def list_phase(_: int) -> int:
        return len(await engine.list_executions(phase_query, PROJECT, DOMAIN, resolve))

    async def list_launch_plan(n: int) -> int:
        query = parse(f"eq(launch_plan.name,{LAUNCH_PLANS[n % len(LAUNCH_PLANS)]})")
        return len(await engine.list_executions(query, PROJECT, DOMAIN, resolve))

    async def get(n: int) -> int:
        found = await engine.get_execution(PROJECT, DOMAIN, execution_name(n))
        assert found is not None, execution_name(n)
        return 1

    async def nodes(n: int) -> int:
        got = await engine.node_executions(PROJECT, DOMAIN, execution_name(n))
        assert len(got) == args.nodes, (execution_name(n), len(got))
        return len(got)

    cold = {}
    for name, op in (("list", list_phase), ("get", get), ("nodes", nodes)):
        t0 = time.perf_counter()
        await op(0)
        cold[name] = time.perf_counter() - t0
    figures = [
        await timed("list eq(phase,FAILED) created_at desc, limit 100", list_phase, args),
        await timed(
            "list eq(launch_plan.name,...) created_at desc, limit 100", list_launch_plan, args
        ),
        await timed("get_execution (random)", get, args),
        await timed("node_executions (random execution)", nodes, args),
    ]
    engine.close()
    await store.close()
    stalls = await write_stalls(args, storage)
    print(f"\n{machine_info()}")
    print(f"history: {args.executions:,} executions x {args.nodes} node + {args.nodes} task "
          f"executions, {len(files)} files, {sum(f.bytes for f in files) / 2**20:,.0f} MiB; "
          f"row groups {settings.executions_row_group_rows}/{settings.children_row_group_rows}, "
          f"DuckDB {settings.duckdb_threads} threads, {settings.duckdb_memory_limit}")  # fmt: skip
    print(f"download into the cache: {download:.1f}s; first calls (cold): "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in cold.items()))  # fmt: skip
    print_table(
        ["engine call (1 client)", "calls", "p50 ms", "p90 ms", "p99 ms", "cpu p50 ms", "rows"],
        [
            [
                f.name,
                f"{len(f.latencies):,}",
                f.ms(50),
                f.ms(90),
                f.ms(99),
                f.ms(50, f.cpu),
                f"{f.rows / max(len(f.latencies), 1):.0f}",
            ]
            for f in figures
        ],  # fmt: skip
    )
    print(stalls)
    print(f"RSS: {rss_start:,.0f} MiB after registering and downloading, "
          f"{rss_mib('VmRSS'):,.0f} MiB at the end, peak {rss_mib('VmHWM'):,.0f} MiB")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    say(f"work dir {args.work_dir.resolve()} (kept: seeding resumes from it)")
    emulator = start_gcs_emulator(args.work_dir / "emulator", data_dir=args.work_dir / "gcs")
    try:
        storage = emulator.storage_settings(StorageSettings(prefix="bench"))
        seed(args, storage)
        if not args.no_compact:
            compact(args, storage)
        asyncio.run(measure(args, storage))
    finally:
        emulator.stop()


if __name__ == "__main__":
    run_main(main)
