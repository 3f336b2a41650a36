"""Registration: CreateTask/CreateWorkflow throughput, GetWorkflow of a 100-node workflow, and
ListTasks with filters over 10,000 task versions seeded through the API.

    python -m bench.registration [--clients N] [--seconds S] [--versions V] [--kubeconfig K]
                                 [--warmup W] [--seed-clients C] [--only list-eq,...]
                                 [--profile OUT]

Prints figures only (see bench/README.md); never asserts timings.

Domains keep the figures apart: the seeded task versions are alone in ``development`` (so a
ListTasks scans exactly ``--versions`` of them), the workflows read by GetWorkflow live in
``production`` and the timed CreateTask/CreateWorkflow writes go to ``staging``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

from flyteidl.admin import common_pb2, project_pb2, task_pb2

from bench.common import (
    CPU_NOTE_GCS,
    Figure,
    Result,
    Stack,
    load_options,
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

SEED_DOMAIN, WRITE_DOMAIN, READ_DOMAIN = "development", "staging", "production"
SEED_NAMES = 10  # seeded versions are spread over this many task names
PAD = "x" * 1000  # per-node padding that pushes a 100-node closure over the 64 KiB threshold
WF_NODES = 100
EQ_VERSION_AT = 0.5  # eq(version, ...) looks for the version seeded half-way
LIST_CONTAINS = "contains(version,1)"
PHASES = (
    "list-eq1",
    "list-eq",
    "list-contains1",
    "list-contains",
    "get-wf1",
    "get-wf",
    "get-wf-blob1",
    "get-wf-blob",
    "create-task",
    "create-wf",
)

# --------------------------------------------------------------------------------- requests


def seed_task(n: int) -> task_pb2.TaskCreateRequest:
    return task_request(SEED_DOMAIN, f"bench.seed.t{n % SEED_NAMES}", seed_version(n))


def seed_version(n: int) -> str:
    return f"v{n:05d}"


# --------------------------------------------------------------------------------- phases


async def run_phases(stack: Stack, args: argparse.Namespace) -> tuple[dict[str, Result], dict]:
    """All phases; returns phase -> result (in run order) and the facts the figures need."""
    info: dict = {}
    results: dict[str, Result] = {}
    async with admin_stubs(stack.grpc_target, args.clients) as stubs:
        say(f"registering project {PROJECT}")
        await stubs[0].RegisterProject(
            project_pb2.ProjectRegisterRequest(
                project=project_pb2.Project(id=PROJECT, name=PROJECT)
            ),
            timeout=RPC_TIMEOUT,
        )
        info["rss_before_seed"] = stack.server_rss_mib()
        if args.versions:
            results["seed"] = await seed(stack, args, stubs)
            note_memory(stack, info, "seed")
            results |= await list_phases(stack, args, stubs, info)
        results |= await get_workflow_phases(stack, args, stubs, info)
        results |= await write_phases(stack, args, stubs)
    return results, info


async def seed(stack: Stack, args: argparse.Namespace, stubs: Stubs) -> Result:
    async def create(i: int, n: int) -> None:
        await stubs[i % len(stubs)].CreateTask(seed_task(n), timeout=RPC_TIMEOUT)

    return await measure_count_async(
        f"CreateTask, seeding {args.versions:,} versions ({args.seed_clients} clients)",
        create,
        count=args.versions,
        clients=args.seed_clients,
        stack=stack,
    )


async def list_phases(
    stack: Stack,
    args: argparse.Namespace,
    stubs: Stubs,
    info: dict,
) -> dict[str, Result]:
    pd = common_pb2.NamedEntityIdentifier(project=PROJECT, domain=SEED_DOMAIN)
    wanted = seed_version(int(args.versions * EQ_VERSION_AT))
    eq_filter = f"eq(version,{wanted})"
    eq_request = common_pb2.ResourceListRequest(id=pd, limit=100, filters=eq_filter)
    contains_request = common_pb2.ResourceListRequest(
        id=pd,
        limit=100,
        filters=LIST_CONTAINS,
        sort_by=common_pb2.Sort(key="created_at", direction=common_pb2.Sort.DESCENDING),
    )
    # What each request returns, checked once (a benchmark of empty pages would be no use).
    eq_page = await stubs[0].ListTasks(eq_request, timeout=RPC_TIMEOUT)
    contains_page = await stubs[0].ListTasks(contains_request, timeout=RPC_TIMEOUT)
    matching = sum("1" in seed_version(n) for n in range(args.versions))
    info["list_eq_items"] = len(eq_page.tasks)
    info["list_contains_items"] = len(contains_page.tasks)
    info["list_contains_matching"] = matching
    if len(eq_page.tasks) != 1 or eq_page.tasks[0].id.version != wanted:
        say(f"WARNING: {eq_filter} returned {len(eq_page.tasks)} tasks, expected 1")
    if len(contains_page.tasks) != min(100, matching):
        say(f"WARNING: {LIST_CONTAINS} returned {len(contains_page.tasks)} tasks")

    list_eq = caller(stubs, "ListTasks", eq_request, RPC_TIMEOUT)
    list_contains = caller(stubs, "ListTasks", contains_request, RPC_TIMEOUT)
    eq_name = f"ListTasks {eq_filter} (1 of {args.versions:,})"
    contains_name = f"ListTasks {LIST_CONTAINS} created_at desc ({matching:,} match)"
    phases = {
        "list-eq1": (f"{eq_name}, 1 client", list_eq, 1),
        "list-eq": (eq_name, list_eq, args.clients),
        "list-contains1": (f"{contains_name}, 1 client", list_contains, 1),
        "list-contains": (contains_name, list_contains, args.clients),
    }
    return await measure_phases(stack, args, phases)


async def get_workflow_phases(
    stack: Stack,
    args: argparse.Namespace,
    stubs: Stubs,
    info: dict,
) -> dict[str, Result]:
    if not {"get-wf1", "get-wf", "get-wf-blob1", "get-wf-blob"} & set(args.only):
        return {}
    task_id = ident(RT.TASK, READ_DOMAIN, "bench.node", "v1")
    await stubs[0].CreateTask(task_request(READ_DOMAIN, task_id.name, "v1"), timeout=RPC_TIMEOUT)
    requests = {}
    for key, name, pad in (("inline", "bench.wf100", ""), ("blob", "bench.wf100.big", PAD)):
        create = chain_workflow(READ_DOMAIN, name, "v1", task_id, WF_NODES, pad)
        await stubs[0].CreateWorkflow(create, timeout=RPC_TIMEOUT)
        request = common_pb2.ObjectGetRequest(id=create.id)
        answer = await stubs[0].GetWorkflow(request, timeout=RPC_TIMEOUT)
        nodes = len(answer.closure.compiled_workflow.primary.template.nodes) - 2
        size = answer.closure.ByteSize() / 1024
        if nodes != WF_NODES:
            say(f"WARNING: GetWorkflow returned {nodes} nodes, expected {WF_NODES}")
        info[f"wf_{key}_kib"] = size
        requests[key] = request

    def getter(request: common_pb2.ObjectGetRequest):
        return caller(stubs, "GetWorkflow", request, RPC_TIMEOUT)

    inline = f"GetWorkflow {WF_NODES} nodes, {info['wf_inline_kib']:.0f} KiB inline"
    blob = f"GetWorkflow {WF_NODES} nodes, {info['wf_blob_kib']:.0f} KiB in blob store"
    phases = {
        "get-wf1": (f"{inline}, 1 client", getter(requests["inline"]), 1),
        "get-wf": (inline, getter(requests["inline"]), args.clients),
        "get-wf-blob1": (f"{blob}, 1 client", getter(requests["blob"]), 1),
        "get-wf-blob": (blob, getter(requests["blob"]), args.clients),
    }
    return await measure_phases(stack, args, phases)


async def write_phases(stack: Stack, args: argparse.Namespace, stubs: Stubs) -> dict[str, Result]:
    counter = itertools.count()

    async def create_task(i: int) -> None:
        version = f"c{next(counter):06d}"
        await stubs[i].CreateTask(
            task_request(WRITE_DOMAIN, "bench.create", version), timeout=RPC_TIMEOUT
        )

    # The workflows' tasks: a pool of existing versions, created first (not measured).
    pool = [ident(RT.TASK, WRITE_DOMAIN, "bench.wf.task", f"p{n:03d}") for n in range(100)]
    if "create-wf" in args.only:
        say(f"creating {len(pool)} task versions for the workflows")
        for start in range(0, len(pool), len(stubs)):
            await asyncio.gather(
                *(
                    stubs[j].CreateTask(
                        task_request(WRITE_DOMAIN, t.name, t.version), timeout=RPC_TIMEOUT
                    )
                    for j, t in enumerate(pool[start : start + len(stubs)])
                )
            )

    async def create_workflow(i: int) -> None:
        n = next(counter)
        request = chain_workflow(WRITE_DOMAIN, "bench.wf3", f"w{n:06d}", pool[n % len(pool)], 3)
        await stubs[i].CreateWorkflow(request, timeout=RPC_TIMEOUT)

    phases = {
        "create-task": ("CreateTask (unique versions)", create_task, args.clients),
        "create-wf": ("CreateWorkflow 3 nodes (unique versions)", create_workflow, args.clients),
    }
    return await measure_phases(stack, args, phases)


# --------------------------------------------------------------------------------- report


def report(stack: Stack, args: argparse.Namespace, by_key: dict[str, Result], info: dict) -> None:
    results = list(by_key.values())
    command = f"python -m bench.registration --clients {args.clients} --seconds {args.seconds:g}"
    command += f" --versions {args.versions} --warmup {args.warmup:g}"
    command += f" --seed-clients {args.seed_clients}"
    print_results(args, PHASES, command, results, CPU_NOTE_GCS)
    rss = stack.server_peak_rss_mib()
    figures: list[Figure] = start_figures(stack)
    if seeded := by_key.get("seed"):
        figures += [
            (
                f"seeding {args.versions:,} task versions (CreateTask)",
                f"{seeded.seconds:.1f} s, {seeded.rate:,.0f} /s",
                "",
                None,
            ),
            (
                "API server RSS before seeding (VmRSS)",
                f"{info['rss_before_seed']:.0f} MiB",
                "",
                None,
            ),
            (
                f"API server RSS after seeding {args.versions:,} (VmRSS / VmHWM)",
                f"{info['rss_after_seed']:.0f} / {info['hwm_after_seed']:.0f} MiB",
                "",
                None,
            ),
        ]
    figures.append(
        ("API server peak RSS at the end (VmHWM)", f"{rss:.0f} MiB" if rss else "n/a", "", None)
    )
    n = args.clients
    for key, label, target in (
        ("get-wf1", "GetWorkflow 100 nodes p50, 1 client", 5.0),
        ("get-wf", f"GetWorkflow 100 nodes p50, {n} clients", 5.0),
        ("get-wf-blob1", "GetWorkflow 100 nodes (blob) p50, 1 client", 5.0),
        ("get-wf-blob", f"GetWorkflow 100 nodes (blob) p50, {n} clients", 5.0),
        ("list-eq1", f"ListTasks eq p50 at {args.versions:,}, 1 client", 20.0),
        ("list-eq", f"ListTasks eq p50 at {args.versions:,}, {n} clients", 20.0),
        ("list-contains1", f"ListTasks contains p50 at {args.versions:,}, 1 client", 20.0),
        ("list-contains", f"ListTasks contains p50 at {args.versions:,}, {n} clients", 20.0),
    ):
        if r := by_key.get(key):
            p50 = r.ms(50)
            figures.append((label, f"{p50:.2f} ms", f"< {target:g} ms", p50 < target))
    for key, label in (("create-task", "CreateTask"), ("create-wf", "CreateWorkflow 3 nodes")):
        if r := by_key.get(key):
            figures.append(
                (f"{label}, {n} clients", f"{r.rate:,.0f} /s, p99 {r.ms(99):.0f} ms", "", None)
            )
    print_figures_and_errors(figures, results)


def main(argv: list[str] | None = None) -> None:
    parser = load_options("python -m bench.registration", __doc__)
    parser.add_argument(
        "--versions",
        type=int,
        default=10_000,
        help="task versions seeded through CreateTask before the lists (10000; 0: no lists)",
    )
    parser.add_argument(
        "--seed-clients",
        type=int,
        default=64,
        help="concurrent CreateTask calls while seeding, over the --clients channels (64)",
    )
    stack_options(parser, PHASES, "timed phases")
    args = parse_args(parser, PHASES, argv)
    if args.clients < 1 or args.seconds <= 0 or args.versions < 0 or args.seed_clients < 1:
        parser.error("--clients, --seconds and --seed-clients must be positive, --versions >= 0")
    with stack(args.kubeconfig, profile=args.profile, blobstore=True) as s:
        results, info = asyncio.run(run_phases(s, args))
        report(s, args, results, info)


if __name__ == "__main__":
    run_main(main)
