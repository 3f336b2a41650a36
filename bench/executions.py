"""Executions: CreateExecution throughput, event ingestion as flytepropeller sends it,
ListExecutions with phase filters and GetExecution over 10,000 seeded executions, and the API
server's memory with 10,000 executions and 100,000 node executions stored.

    python -m bench.executions [--clients N] [--seconds S] [--executions E]
                               [--nodes-per-execution K] [--kubeconfig K] [--warmup W]
                               [--seed-clients C] [--event-executions X] [--event-nodes M]
                               [--only ...]
                               [--profile OUT]

Prints figures only (see bench/README.md); never asserts timings.

Domains keep the figures apart: the E seeded executions (and their K node executions each) are
alone in ``development`` (so ListExecutions scans exactly E of them), the timed CreateExecution
writes go to ``staging`` and the event streams to ``production``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import itertools
import random
import time

import grpc
from flyteidl.admin import common_pb2, event_pb2, execution_pb2, launch_plan_pb2, project_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2
from flyteidl.event import event_pb2 as ev
from flyteidl.service import admin_pb2_grpc
from google.protobuf import timestamp_pb2

from bench.common import (
    CPU_NOTE_GCS,
    Figure,
    Result,
    Stack,
    load_options,
    measure_async,
    measure_count_async,
    measure_phases,
    note_memory,
    parse_args,
    print_figures_and_errors,
    print_results,
    run_main,
    say,
    stack,
    stack_options,
    start_figures,
)
from bench.requests import (
    INT,
    PROJECT,
    RPC_TIMEOUT,
    RT,
    Stubs,
    admin_stubs,
    caller,
    chain_workflow,
    ident,
    task_request,
)
from flyteadmin.core import crds, kube
from flyteadmin.core.crmap.executions import ExecutionCodec, execution_object_name

SEED_DOMAIN, WRITE_DOMAIN, EVENT_DOMAIN = "development", "staging", "production"
DOMAINS = (SEED_DOMAIN, WRITE_DOMAIN, EVENT_DOMAIN)
TASK_NAME, WF_NAME, LP_NAME, VERSION = "bench.exec.t", "bench.exec.wf", "bench.exec.lp", "v1"
PRODUCER = "propeller"
WF = core_execution.WorkflowExecution.Phase
NODE = core_execution.NodeExecution.Phase
TASK = core_execution.TaskExecution.Phase
LIST_FILTERS = {
    "eq": "eq(phase,SUCCEEDED)",
    "in": "value_in(phase,RUNNING;SUCCEEDED)",
}
PHASES = (
    "create",
    "events",
    "list-eq1",
    "list-eq",
    "list-in1",
    "list-in",
    "get1",
    "get",
)

# --------------------------------------------------------------------------------- requests


def seeded_phase(n: int) -> int:
    """The workflow phase seeded execution ``n`` is left in: half SUCCEEDED, a quarter RUNNING,
    a quarter never started (UNDEFINED). ``eq(phase,SUCCEEDED)`` matches half of them and
    ``value_in(phase,RUNNING;SUCCEEDED)`` three quarters."""
    return (WF.SUCCEEDED, WF.RUNNING, WF.SUCCEEDED, WF.UNDEFINED)[n % 4]


def seed_name(n: int) -> str:
    return f"s{n:06d}"


def exec_id(domain: str, name: str) -> identifier_pb2.WorkflowExecutionIdentifier:
    return identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=domain, name=name)


def launch_plan_request(domain: str) -> launch_plan_pb2.LaunchPlanCreateRequest:
    default = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=5))
    )
    params = {"x": interface_pb2.Parameter(var=interface_pb2.Variable(type=INT), default=default)}
    return launch_plan_pb2.LaunchPlanCreateRequest(
        id=ident(RT.LAUNCH_PLAN, domain, LP_NAME, VERSION),
        spec=launch_plan_pb2.LaunchPlanSpec(
            workflow_id=ident(RT.WORKFLOW, domain, WF_NAME, VERSION),
            default_inputs=interface_pb2.ParameterMap(parameters=params),
        ),
    )


def create_request(domain: str, name: str) -> execution_pb2.ExecutionCreateRequest:
    return execution_pb2.ExecutionCreateRequest(
        project=PROJECT,
        domain=domain,
        name=name,
        spec=execution_pb2.ExecutionSpec(
            launch_plan=ident(RT.LAUNCH_PLAN, domain, LP_NAME, VERSION)
        ),
    )


def now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


class Propeller:
    """Builds the events of one execution the way flytepropeller sends them."""

    def __init__(self, domain: str, name: str) -> None:
        self.ex = exec_id(domain, name)
        self.task = ident(RT.TASK, domain, TASK_NAME, VERSION)
        self.prefix = f"gs://bench-data/metadata/{PROJECT}/{domain}/{name}"
        self.sent = itertools.count()

    def _request_id(self) -> str:
        return f"{self.ex.name}-{next(self.sent)}"

    def workflow(self, phase: int) -> event_pb2.WorkflowExecutionEventRequest:
        kw = {}
        if phase == WF.SUCCEEDED:
            kw["output_uri"] = f"{self.prefix}/end-node/data/0/outputs.pb"
        event = ev.WorkflowExecutionEvent(
            execution_id=self.ex, producer_id=PRODUCER, phase=phase, occurred_at=now(), **kw
        )
        return event_pb2.WorkflowExecutionEventRequest(request_id=self._request_id(), event=event)

    def node(self, node: str, phase: int) -> event_pb2.NodeExecutionEventRequest:
        kw = {}
        if phase == NODE.QUEUED:
            kw["input_uri"] = f"{self.prefix}/{node}/data/inputs.pb"
        elif phase == NODE.SUCCEEDED:
            kw["output_uri"] = f"{self.prefix}/{node}/data/0/outputs.pb"
        event = ev.NodeExecutionEvent(
            id=identifier_pb2.NodeExecutionIdentifier(execution_id=self.ex, node_id=node),
            producer_id=PRODUCER,
            phase=phase,
            occurred_at=now(),
            spec_node_id=node,
            node_name=node,
            **kw,
        )
        return event_pb2.NodeExecutionEventRequest(request_id=self._request_id(), event=event)

    def task_event(self, node: str, phase: int) -> event_pb2.TaskExecutionEventRequest:
        kw = {}
        if phase == TASK.RUNNING:
            kw["logs"] = [
                core_execution.TaskLog(name="k8s", uri=f"http://logs/{self.ex.name}/{node}")
            ]
        else:
            kw["output_uri"] = f"{self.prefix}/{node}/data/0/outputs.pb"
        event = ev.TaskExecutionEvent(
            task_id=self.task,
            parent_node_execution_id=identifier_pb2.NodeExecutionIdentifier(
                execution_id=self.ex, node_id=node
            ),
            retry_attempt=0,
            phase=phase,
            producer_id=PRODUCER,
            occurred_at=now(),
            task_type="python-task",
            **kw,
        )
        return event_pb2.TaskExecutionEventRequest(request_id=self._request_id(), event=event)

    def stream(self, nodes: int) -> list[tuple[str, object]]:
        """(rpc, request) in order: workflow RUNNING; per node: node QUEUED, RUNNING, task
        RUNNING, SUCCEEDED (attempt 0), node SUCCEEDED; workflow SUCCEEDED. Built lazily, so
        occurred_at is the send time: returns factories."""
        out: list[tuple[str, object]] = [("CreateWorkflowEvent", lambda: self.workflow(WF.RUNNING))]
        for i in range(nodes):
            node = f"n{i}"
            out += [
                ("CreateNodeEvent", lambda n=node: self.node(n, NODE.QUEUED)),
                ("CreateNodeEvent", lambda n=node: self.node(n, NODE.RUNNING)),
                ("CreateTaskEvent", lambda n=node: self.task_event(n, TASK.RUNNING)),
                ("CreateTaskEvent", lambda n=node: self.task_event(n, TASK.SUCCEEDED)),
                ("CreateNodeEvent", lambda n=node: self.node(n, NODE.SUCCEEDED)),
            ]
        out.append(("CreateWorkflowEvent", lambda: self.workflow(WF.SUCCEEDED)))
        return out


# --------------------------------------------------------------------------------- phases


async def setup(stubs: Stubs, nodes: int) -> None:
    """Project, and per domain a task, a ``nodes``-node chain workflow and its launch plan."""
    say(f"registering project {PROJECT}, a task, a {nodes}-node workflow and a launch plan")
    stub = stubs[0]
    await stub.RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name=PROJECT)),
        timeout=RPC_TIMEOUT,
    )
    for domain in DOMAINS:
        task_id = ident(RT.TASK, domain, TASK_NAME, VERSION)
        await stub.CreateTask(task_request(domain, TASK_NAME, VERSION), timeout=RPC_TIMEOUT)
        await stub.CreateWorkflow(
            chain_workflow(domain, WF_NAME, VERSION, task_id, nodes), timeout=RPC_TIMEOUT
        )
        await stub.CreateLaunchPlan(launch_plan_request(domain), timeout=RPC_TIMEOUT)


async def run_phases(stack: Stack, args: argparse.Namespace) -> tuple[dict[str, Result], dict]:
    info: dict = {}
    results: dict[str, Result] = {}
    async with admin_stubs(stack.grpc_target, args.clients) as stubs:
        await setup(stubs, max(args.nodes_per_execution, args.event_nodes, 1))
        info["rss_before_seed"] = stack.server_rss_mib()
        if "create" in args.only:
            results["create"] = await create_phase(stack, args, stubs)
        if "events" in args.only:
            results |= await event_phase(stack, args, stubs, info)
        if args.executions:
            results |= await seed(stack, args, stubs, info)
            results |= await read_phases(stack, args, stubs, info)
    return results, info


async def create_phase(stack: Stack, args: argparse.Namespace, stubs: Stubs) -> Result:
    counter = itertools.count()

    async def create(i: int) -> None:
        name = f"c{next(counter):07d}"
        await stubs[i].CreateExecution(create_request(WRITE_DOMAIN, name), timeout=RPC_TIMEOUT)

    return await measure_async(
        "CreateExecution (launch plan, unique names)",
        create,
        clients=args.clients,
        seconds=args.seconds,
        warmup=args.warmup,
        stack=stack,
    )


async def event_phase(
    stack: Stack,
    args: argparse.Namespace,
    stubs: Stubs,
    info: dict,
) -> dict[str, Result]:
    """``--event-executions`` executions run at once, each sending its events one after another
    (as propeller does for one workflow); the window is the wall time of all the streams."""
    count, nodes = args.event_executions, args.event_nodes
    names = [f"e{n:05d}" for n in range(count)]
    say(f"creating {count} executions for the event streams (not measured)")
    for start in range(0, count, len(stubs) * 4):
        batch = names[start : start + len(stubs) * 4]
        await asyncio.gather(
            *(
                stubs[j % len(stubs)].CreateExecution(
                    create_request(EVENT_DOMAIN, name), timeout=RPC_TIMEOUT
                )
                for j, name in enumerate(batch)
            )
        )
    per_kind: dict[str, list[float]] = {
        "CreateWorkflowEvent": [],
        "CreateNodeEvent": [],
        "CreateTaskEvent": [],
    }
    errors: dict[str, list[str]] = {k: [] for k in per_kind}

    async def run(j: int, name: str) -> None:
        stub = stubs[j % len(stubs)]
        for rpc, build in Propeller(EVENT_DOMAIN, name).stream(nodes):
            request = build()
            t0 = time.perf_counter()
            try:
                await getattr(stub, rpc)(request, timeout=RPC_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors[rpc].append(f"{type(exc).__name__}: {str(exc)[:200]}")
            else:
                per_kind[rpc].append(time.perf_counter() - t0)

    events = count * (2 + 5 * nodes)
    say(f"event streams: {count} executions x {2 + 5 * nodes} events = {events:,} events")
    before = stack.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(run(j, name) for j, name in enumerate(names)))
    wall = time.perf_counter() - started
    cpu = {k: (v - before.get(k, v)) / wall for k, v in stack.cpu_seconds().items()}
    label = f"({count} executions x {nodes} nodes at once)"
    results = {
        "events": Result(
            f"all events {label}",
            wall,
            [x for v in per_kind.values() for x in v],
            sum(len(v) for v in errors.values()),
            next((e[0] for e in errors.values() if e), ""),
            cpu,
        )
    }
    for rpc, latencies in per_kind.items():
        results[f"events-{rpc}"] = Result(
            f"  of which {rpc}",
            wall,
            latencies,
            len(errors[rpc]),
            errors[rpc][0] if errors[rpc] else "",
            cpu,
        )
    # Check one stream's outcome (a benchmark of refused events would be no use).
    got = await stubs[0].GetExecution(
        execution_pb2.WorkflowExecutionGetRequest(id=exec_id(EVENT_DOMAIN, names[0])),
        timeout=RPC_TIMEOUT,
    )
    info["event_check_phase"] = WF.Name(got.closure.phase)
    if got.closure.phase != WF.SUCCEEDED:
        say(f"WARNING: execution {names[0]} is {WF.Name(got.closure.phase)} after its events")
    return results


async def seed(
    stack: Stack,
    args: argparse.Namespace,
    stubs: Stubs,
    info: dict,
) -> dict[str, Result]:
    """E executions (CreateExecution), their workflow RUNNING events, K node executions each
    (one node QUEUED event per node), then the SUCCEEDED events (after the node events: a
    terminal execution takes no more node events)."""
    total, per = args.executions, args.nodes_per_execution
    results: dict[str, Result] = {}
    seed_clients = args.seed_clients
    seeding = functools.partial(measure_count_async, clients=seed_clients, stack=stack)

    def stub(i: int) -> admin_pb2_grpc.AdminServiceStub:
        return stubs[i % len(stubs)]

    async def create(i: int, n: int) -> None:
        await stub(i).CreateExecution(
            create_request(SEED_DOMAIN, seed_name(n)), timeout=RPC_TIMEOUT
        )

    if args.seed_by == "clone":
        await create(0, 0)
        results["seed"] = await clone_executions(stack, total, seeding)

        async def visible(i: int, n: int) -> None:
            # The clones reach the server through its watch: wait until each one is served.
            request = execution_pb2.WorkflowExecutionGetRequest(
                id=exec_id(SEED_DOMAIN, seed_name(n))
            )
            for _ in range(300):
                try:
                    await stub(i).GetExecution(request, timeout=RPC_TIMEOUT)
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    await asyncio.sleep(0.1)
            raise TimeoutError(f"{seed_name(n)} never became visible")

        await seeding(f"GetExecution of each clone, {total:,}", visible, count=total)
    else:
        results["seed"] = await seeding(
            f"CreateExecution, seeding {total:,} executions ({seed_clients} clients)",
            create,
            count=total,
        )
    note_memory(stack, info, "executions")

    started = [n for n in range(total) if seeded_phase(n) != WF.UNDEFINED]
    propellers = {n: Propeller(SEED_DOMAIN, seed_name(n)) for n in range(total)}

    async def running(i: int, k: int) -> None:
        request = propellers[started[k]].workflow(WF.RUNNING)
        await stub(i).CreateWorkflowEvent(request, timeout=RPC_TIMEOUT)

    results["seed-running"] = await seeding(
        f"CreateWorkflowEvent RUNNING, seeding {len(started):,}", running, count=len(started)
    )
    if per:

        async def node(i: int, n: int) -> None:
            # Spread over executions: neighbours in time go to different executions.
            request = propellers[n % total].node(f"n{n // total}", NODE.QUEUED)
            await stub(i).CreateNodeEvent(request, timeout=RPC_TIMEOUT)

        results["seed-nodes"] = await seeding(
            f"CreateNodeEvent QUEUED, seeding {total * per:,} node executions",
            node,
            count=total * per,
        )
        note_memory(stack, info, "nodes")
    done = [n for n in started if seeded_phase(n) == WF.SUCCEEDED]

    async def succeeded(i: int, k: int) -> None:
        request = propellers[done[k]].workflow(WF.SUCCEEDED)
        await stub(i).CreateWorkflowEvent(request, timeout=RPC_TIMEOUT)

    results["seed-succeeded"] = await seeding(
        f"CreateWorkflowEvent SUCCEEDED, seeding {len(done):,}", succeeded, count=len(done)
    )
    note_memory(stack, info, "seed")
    return results


async def clone_executions(stack: Stack, total: int, seeding) -> Result:
    """Executions 1 .. total-1 as copies of execution 0 (made by CreateExecution), renamed
    and written straight to the Kubernetes API with our codec: the same objects the API server
    would store, without the blob-store writes that make the GCS emulator O(n²)."""
    api = kube.api_client(stack.kubeconfig)
    http = kube.KubeHttp(api, max_connections=16)
    codec = ExecutionCodec()
    kind = crds.EXECUTION
    path = f"/apis/{kind.group}/{kind.version}/namespaces/{stack.namespace}/{kind.plural}"
    template = codec.decode(
        await http.request(
            "GET", f"{path}/{execution_object_name(exec_id(SEED_DOMAIN, seed_name(0)))}"
        )
    )

    async def clone(_i: int, n: int) -> None:
        execution = execution_pb2.Execution()
        execution.CopyFrom(template.execution)
        execution.id.name = seed_name(n + 1)
        record = dataclasses.replace(template, execution=execution, request_digest="")
        body = codec.encode(record)
        metadata = {**body.get("metadata", {}), "name": codec.name(record)}
        await http.request(
            "POST",
            path,
            {**body, "apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata},
        )

    try:
        return await seeding(
            f"Execution objects cloned from a created one, seeding {total:,} executions",
            clone,
            count=total - 1,
        )
    finally:
        await http.close()
        api.close()


async def read_phases(
    stack: Stack,
    args: argparse.Namespace,
    stubs: Stubs,
    info: dict,
) -> dict[str, Result]:
    total = args.executions
    pd = common_pb2.NamedEntityIdentifier(project=PROJECT, domain=SEED_DOMAIN)
    newest_first = common_pb2.Sort(key="execution_created_at", direction=common_pb2.Sort.DESCENDING)
    requests = {
        key: common_pb2.ResourceListRequest(id=pd, limit=100, filters=f, sort_by=newest_first)
        for key, f in LIST_FILTERS.items()
    }
    matching = {
        "eq": sum(seeded_phase(n) == WF.SUCCEEDED for n in range(total)),
        "in": sum(seeded_phase(n) in (WF.RUNNING, WF.SUCCEEDED) for n in range(total)),
    }
    for key, request in requests.items():
        page = await stubs[0].ListExecutions(request, timeout=RPC_TIMEOUT)
        info[f"list_{key}_items"] = len(page.executions)
        if len(page.executions) != min(100, matching[key]):
            say(
                f"WARNING: {request.filters} returned {len(page.executions)} executions, "
                f"expected {min(100, matching[key])}"
            )

    def lister(request: common_pb2.ResourceListRequest):
        return caller(stubs, "ListExecutions", request, RPC_TIMEOUT)

    rng = random.Random(1)
    ids = [exec_id(SEED_DOMAIN, seed_name(n)) for n in range(total)]

    async def get(i: int) -> None:
        request = execution_pb2.WorkflowExecutionGetRequest(id=rng.choice(ids))
        await stubs[i].GetExecution(request, timeout=RPC_TIMEOUT)

    def list_name(key: str) -> str:
        return (
            f"ListExecutions {LIST_FILTERS[key]} created_at desc "
            f"({matching[key]:,} of {total:,} match)"
        )

    phases = {
        "list-eq1": (f"{list_name('eq')}, 1 client", lister(requests["eq"]), 1),
        "list-eq": (list_name("eq"), lister(requests["eq"]), args.clients),
        "list-in1": (f"{list_name('in')}, 1 client", lister(requests["in"]), 1),
        "list-in": (list_name("in"), lister(requests["in"]), args.clients),
        "get1": (f"GetExecution (random of {total:,}), 1 client", get, 1),
        "get": (f"GetExecution (random of {total:,})", get, args.clients),
    }
    return await measure_phases(stack, args, phases)


# --------------------------------------------------------------------------------- report


def _mib(value: float | None) -> str:
    return f"{value:.0f}" if value else "n/a"


def memory_figures(args: argparse.Namespace, info: dict) -> list[Figure]:
    total, per = args.executions, args.nodes_per_execution
    base = info.get("rss_before_seed")
    after_ex = info.get("rss_after_executions")
    after_nodes = info.get("rss_after_nodes")
    figures: list[Figure] = [
        ("API server RSS before seeding (VmRSS)", f"{_mib(base)} MiB", "", None)
    ]
    if after_ex is None:
        return figures
    figures.append(
        (
            f"API server RSS, {total:,} executions (VmRSS / VmHWM)",
            f"{_mib(after_ex)} / {_mib(info.get('hwm_after_executions'))} MiB",
            "",
            None,
        )
    )
    per_execution = (after_ex - base) * 1024 / total if base and total else 0.0
    figures.append(("  per execution (RSS growth / count)", f"{per_execution:.1f} KiB", "", None))
    per_node = 0.0
    if after_nodes is not None:
        nodes = total * per
        figures.append(
            (
                f"API server RSS, + {nodes:,} node executions (VmRSS / VmHWM)",
                f"{_mib(after_nodes)} / {_mib(info.get('hwm_after_nodes'))} MiB",
                "",
                None,
            )
        )
        per_node = (after_nodes - after_ex) * 1024 / nodes if nodes else 0.0
        figures.append(
            ("  per node execution (RSS growth / count)", f"{per_node:.1f} KiB", "", None)
        )
    hwm = info.get("hwm_after_seed")
    figures.append(
        (
            "API server RSS after seeding (VmRSS / VmHWM)",
            f"{_mib(info.get('rss_after_seed'))} / {_mib(hwm)} MiB",
            "",
            None,
        )
    )
    if total >= 10_000 and per * total >= 100_000 and hwm:
        figures.append(
            (
                f"API server memory at {total:,} executions, {total * per:,} nodes (VmHWM)",
                f"{hwm:.0f} MiB",
                "< 1024 MiB",
                hwm < 1024,
            )
        )
    elif base:
        estimate = base + (10_000 * per_execution + 100_000 * per_node) / 1024
        figures.append(
            (
                "EXTRAPOLATED memory at 10,000 executions, 100,000 nodes",
                f"~{estimate:.0f} MiB",
                "< 1024 MiB",
                estimate < 1024,
            )
        )
    return figures


def report(stack: Stack, args: argparse.Namespace, by_key: dict[str, Result], info: dict) -> None:
    results = list(by_key.values())
    command = f"python -m bench.executions --clients {args.clients} --seconds {args.seconds:g}"
    command += f" --executions {args.executions} --nodes-per-execution {args.nodes_per_execution}"
    command += f" --warmup {args.warmup:g} --seed-clients {args.seed_clients}"
    command += f" --event-executions {args.event_executions} --event-nodes {args.event_nodes}"
    command += f" --seed-by {args.seed_by}"
    print_results(args, PHASES, command, results, CPU_NOTE_GCS)
    figures: list[Figure] = start_figures(stack)
    n = args.clients
    if r := by_key.get("create"):
        figures.append(
            (
                f"CreateExecution, {n} clients",
                f"{r.rate:,.0f} /s, p50 {r.ms(50):.0f} ms, p99 {r.ms(99):.0f} ms",
                "",
                None,
            )
        )
    if r := by_key.get("events"):
        figures.append(
            (
                f"event ingestion, {args.event_executions} executions at once",
                f"{r.rate:,.0f} events/s, p50 {r.ms(50):.1f} ms, p99 {r.ms(99):.0f} ms",
                ">= 300 events/s",
                r.rate >= 300 and not r.errors,
            )
        )
    seeding = [
        by_key[k] for k in ("seed", "seed-running", "seed-nodes", "seed-succeeded") if k in by_key
    ]
    for r in seeding:
        figures.append(
            (
                f"seeding: {r.name.split(', seeding ')[-1]}",
                f"{r.seconds:.1f} s, {r.rate:,.0f} /s",
                "",
                None,
            )
        )
    if seeding:
        figures.append(("seeding: total", f"{sum(r.seconds for r in seeding):.1f} s", "", None))
    figures += memory_figures(args, info)
    total = args.executions
    for key, label, target in (
        ("list-eq1", f"ListExecutions eq(phase) p50 at {total:,}, 1 client", 20.0),
        ("list-eq", f"ListExecutions eq(phase) p50 at {total:,}, {n} clients", 20.0),
        ("list-in1", f"ListExecutions value_in(phase) p50 at {total:,}, 1 client", 20.0),
        ("list-in", f"ListExecutions value_in(phase) p50 at {total:,}, {n} clients", 20.0),
    ):
        if r := by_key.get(key):
            p50 = r.ms(50)
            figures.append((label, f"{p50:.2f} ms", f"< {target:g} ms", p50 < target))
    for key, label in (("get1", "GetExecution, 1 client"), ("get", f"GetExecution, {n} clients")):
        if r := by_key.get(key):
            figures.append((label, f"p50 {r.ms(50):.2f} ms, p99 {r.ms(99):.2f} ms", "", None))
    peak = stack.server_peak_rss_mib()
    figures.append(("API server peak RSS at the end (VmHWM)", f"{_mib(peak)} MiB", "", None))
    print_figures_and_errors(figures, results)


def main(argv: list[str] | None = None) -> None:
    parser = load_options("python -m bench.executions", __doc__)
    parser.add_argument(
        "--executions",
        type=int,
        default=10_000,
        help="executions seeded before the lists and gets (10000; 0: no seeding, lists, gets)",
    )
    parser.add_argument(
        "--nodes-per-execution",
        type=int,
        default=10,
        help="node executions seeded per execution, and nodes of the workflow (10)",
    )
    parser.add_argument(
        "--seed-clients",
        type=int,
        default=64,
        help="concurrent calls while seeding, over the --clients channels (64)",
    )
    parser.add_argument(
        "--event-executions",
        type=int,
        default=100,
        help="executions whose event streams run at once in the event phase (100)",
    )
    parser.add_argument(
        "--event-nodes",
        type=int,
        default=10,
        help="nodes of each execution in the event phase (10)",
    )
    parser.add_argument(
        "--seed-by",
        choices=("api", "clone"),
        default="api",
        help="seed executions by CreateExecution (api), or create one and write renamed copies "
        "of its custom resource straight to the Kubernetes API (clone: no GCS emulator writes)",
    )
    stack_options(parser, PHASES, "timed phases")
    args = parse_args(parser, PHASES, argv)
    if (
        args.clients < 1
        or args.seconds <= 0
        or args.executions < 0
        or args.nodes_per_execution < 0
        or args.seed_clients < 1
        or args.event_executions < 1
        or args.event_nodes < 1
    ):
        parser.error("--clients, --seconds, --seed-clients, --event-executions must be positive")
    with stack(args.kubeconfig, profile=args.profile, blobstore=True) as s:
        results, info = asyncio.run(run_phases(s, args))
        report(s, args, results, info)


if __name__ == "__main__":
    run_main(main)
