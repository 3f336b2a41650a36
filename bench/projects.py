"""Projects: GetProject, ListProjects and RegisterProject over gRPC, against raw CR creates.

    python -m bench.projects [--clients N] [--seconds S] [--warmup W] [--rounds R] [--seed P]
                             [--kubeconfig K] [--only get,list,...] [--profile OUT]

Prints figures only (see bench/README.md); never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import random

from flyteidl.admin import project_pb2

from bench.common import (
    CPU_NOTE,
    Figure,
    Result,
    Stack,
    load_options,
    measure_async,
    measure_phases,
    measure_threads,
    parse_args,
    print_figures_and_errors,
    print_results,
    run_main,
    say,
    stack,
    stack_options,
    start_figures,
)
from bench.requests import Stubs, admin_stubs
from flyteadmin.core import crds, kube
from flyteadmin.core.crmap.projects import ProjectCodec

LIST_FILTER = "contains(name,1)"
RAW = "raw CR create (kubernetes client)"
PHASES = ("get", "get1", "get2", "list", "list-filter", "register", "raw")
RPC_TIMEOUT = 30.0


def _project(project_id: str, n: int) -> project_pb2.Project:
    return project_pb2.Project(
        id=project_id, name=f"bench project {n}", description=f"benchmark project {n}"
    )


async def run_phases(stack: Stack, args: argparse.Namespace) -> list[Result]:
    async with admin_stubs(stack.grpc_target, args.clients) as stubs:
        ids = await seed(stubs, args.seed)
        results = await read_phases(stack, args, stubs, ids)
        return results + await write_phases(stack, args, stubs)


async def seed(stubs: Stubs, count: int) -> list[str]:
    ids = [f"seed-{n:04d}" for n in range(count)]
    say(f"seeding {len(ids)} projects")
    for start in range(0, len(ids), len(stubs)):
        batch = ids[start : start + len(stubs)]
        await asyncio.gather(
            *(
                stub.RegisterProject(
                    project_pb2.ProjectRegisterRequest(project=_project(pid, start + i)),
                    timeout=RPC_TIMEOUT,
                )
                for i, (stub, pid) in enumerate(zip(stubs, batch, strict=False))
            )
        )
    return ids


async def read_phases(
    stack: Stack,
    args: argparse.Namespace,
    stubs: Stubs,
    ids: list[str],
) -> list[Result]:
    get_requests = [project_pb2.ProjectGetRequest(id=pid) for pid in ids]
    list_all = project_pb2.ProjectListRequest(limit=100)
    list_filtered = project_pb2.ProjectListRequest(limit=100, filters=LIST_FILTER)

    async def get(i: int) -> None:
        await stubs[i].GetProject(random.choice(get_requests), timeout=RPC_TIMEOUT)

    async def list_(i: int) -> None:
        await stubs[i].ListProjects(list_all, timeout=RPC_TIMEOUT)

    async def list_filter(i: int) -> None:
        await stubs[i].ListProjects(list_filtered, timeout=RPC_TIMEOUT)

    phases = {
        "get": ("GetProject", get, args.clients),
        "get1": ("GetProject, 1 client", get, 1),
        "get2": ("GetProject, 2 clients", get, 2),
        "list": ("ListProjects limit=100", list_, args.clients),
        "list-filter": (f"ListProjects {LIST_FILTER}", list_filter, args.clients),
    }
    return list((await measure_phases(stack, args, phases)).values())


async def write_phases(stack: Stack, args: argparse.Namespace, stubs: Stubs) -> list[Result]:
    """RegisterProject and raw creates, alternating in ``--rounds`` rounds of seconds/rounds
    each, so that a burst of other load on the machine hits both about equally."""
    counter = itertools.count()

    async def register(i: int) -> None:
        n = next(counter)
        request = project_pb2.ProjectRegisterRequest(project=_project(f"reg-{n}", n))
        await stubs[i].RegisterProject(request, timeout=RPC_TIMEOUT)

    raw_create, close = raw_creator(stack, args)
    loop = asyncio.get_running_loop()
    parts: dict[str, list[Result]] = {"RegisterProject": [], RAW: []}
    seconds = args.seconds / args.rounds
    try:
        for round_ in range(args.rounds):
            warmup = args.warmup if round_ == 0 else 0.0
            if "register" in args.only:
                parts["RegisterProject"].append(
                    await measure_async(
                        "RegisterProject",
                        register,
                        clients=args.clients,
                        seconds=seconds,
                        warmup=warmup,
                        stack=stack,
                    )
                )
            if "raw" in args.only:
                measure = functools.partial(
                    measure_threads,
                    RAW,
                    raw_create,
                    threads=args.clients,
                    seconds=seconds,
                    warmup=warmup,
                    stack=stack,
                )
                parts[RAW].append(await loop.run_in_executor(None, measure))
    finally:
        close()
    return [Result.merge(p) for p in parts.values() if p]


def raw_creator(stack: Stack, args: argparse.Namespace):
    """``create(i)``: the same Project custom resource as RegisterProject writes, created
    straight on kube-apiserver with the official client, in a namespace the server does not
    watch; and ``close()``."""
    from kubernetes import client

    api = kube.api_client(stack.kubeconfig, pool_size=args.clients)
    custom = client.CustomObjectsApi(api)
    codec = ProjectCodec()
    namespace = f"{stack.namespace}-1"
    counter = itertools.count()
    kind = crds.PROJECT

    def create(i: int) -> None:
        n = next(counter)
        body = codec.encode(_project(f"raw-{n}", n))
        body["metadata"] |= {"name": f"raw-{n}", "namespace": namespace}
        body |= {"apiVersion": kind.api_version, "kind": kind.kind}
        custom.create_namespaced_custom_object(
            kind.group, kind.version, namespace, kind.plural, body
        )

    return create, api.close


def report(stack: Stack, args: argparse.Namespace, results: list[Result]) -> None:
    by_name = {r.name: r for r in results}
    get, get1 = by_name.get("GetProject"), by_name.get("GetProject, 1 client")
    get2 = by_name.get("GetProject, 2 clients")
    register, raw = by_name.get("RegisterProject"), by_name.get(RAW)
    rss = stack.server_peak_rss_mib()
    command = f"python -m bench.projects --clients {args.clients} --seconds {args.seconds:g}"
    command += f" --warmup {args.warmup:g} --rounds {args.rounds} --seed {args.seed}"
    print_results(args, PHASES, command, results, CPU_NOTE)
    figures: list[Figure] = start_figures(stack)
    figures.append(("API server peak RSS (VmHWM)", f"{rss:.0f} MiB" if rss else "n/a", "", None))
    if get1:
        p50 = get1.ms(50)
        figures.append(("cached read p50, GetProject 1 client", f"{p50:.2f} ms", "< 2 ms", p50 < 2))
    if get2:
        # Both targets at once: with N clients back to back p50 ~ N / rate (Little's law), so
        # "p50 < 2 ms and >= 1,500/s" can only hold together at low concurrency.
        p50, ok = get2.ms(50), get2.ms(50) < 2 and get2.rate >= 1500
        figures.append(
            (
                "cached reads, 2 clients: p50 and rate",
                f"{p50:.2f} ms, {get2.rate:,.0f} /s",
                "< 2 ms, >= 1,500 /s",
                ok,
            )
        )
    if get:
        p50, n = get.ms(50), args.clients
        figures += [
            (f"cached read p50, GetProject {n} clients", f"{p50:.2f} ms", "< 2 ms", p50 < 2),
            (
                f"cached read rate, GetProject {n} clients",
                f"{get.rate:,.0f} /s",
                ">= 1,500 /s",
                get.rate >= 1500,
            ),
        ]
    if register and raw and raw.rate:
        ratio = register.rate / raw.rate
        figures.append(
            ("RegisterProject / raw create rate", f"{ratio:.0%}", ">= 70%", ratio >= 0.7)
        )
    print_figures_and_errors(figures, results)


def main(argv: list[str] | None = None) -> None:
    parser = load_options("python -m bench.projects", __doc__)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="RegisterProject and raw creates alternate in this many rounds (3)",
    )
    parser.add_argument("--seed", type=int, default=200, help="projects created first (200)")
    stack_options(parser, PHASES, "phases")
    args = parse_args(parser, PHASES, argv)
    if args.clients < 1 or args.seconds <= 0 or args.seed < 1 or args.rounds < 1:
        parser.error("--clients, --seconds, --seed and --rounds must be positive")
    with stack(args.kubeconfig, extra_namespaces=1, profile=args.profile) as s:
        results = asyncio.run(run_phases(s, args))
        report(s, args, results)


if __name__ == "__main__":
    run_main(main)
