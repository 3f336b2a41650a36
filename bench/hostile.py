"""Hostile lists: how fast GetVersion answers while clients send hostile filters and huge pages.

    python -m bench.hostile [--clients N] [--seconds S] [--warmup W] [--tasks T]
                            [--kubeconfig K] [--only quiet,attack]

Seeds T task versions with 40-character names, then measures one client calling GetVersion
back to back, first alone (``quiet``), then while N clients (``attack``) cycle through the
hostile list requests of issue 12 §1: filters that made the old parser backtrack
(``'(' * 1500 + ')' * 1500``, ``eq(a,b`` repeated), a LIKE pattern that made matching
backtrack (``contains(name,a%a%a%a%a%a%a%a%b)``, answered), oversized filters, too many
expressions or values, and pages of 2^32 - 1 rows. A hostile call counts as an error only if
its answer is not the expected one (INVALID_ARGUMENT, or OK for the LIKE pattern).

Prints figures only (see bench/README.md); never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

import grpc
from flyteidl.admin import project_pb2, version_pb2

from bench.common import (
    CPU_NOTE,
    Result,
    Stack,
    load_options,
    measure_async,
    measure_count_async,
    parse_args,
    print_figures_and_errors,
    print_results,
    run_main,
    stack,
    stack_options,
    start_figures,
)
from bench.requests import PROJECT, RPC_TIMEOUT, Stubs, admin_stubs, task_request
from tests.hostile_requests import DOMAIN, HOSTILE

PHASES = ("quiet", "attack")
NAME = "bench.hostile.a_forty_character_task_name_xx"  # 40 characters


async def run_phases(stack: Stack, args: argparse.Namespace) -> list[Result]:
    async with admin_stubs(stack.grpc_target, args.clients + 1) as stubs:
        results = []
        seeded = await seed_measured(stack, stubs, args.tasks)
        if seeded is not None:
            results.append(seeded)
        version_stub, attackers = stubs[0], stubs[1:]
        request = version_pb2.GetVersionRequest()

        async def get_version(i: int) -> None:
            await version_stub.GetVersion(request, timeout=RPC_TIMEOUT)

        cycle = itertools.cycle(HOSTILE)

        async def hostile(i: int) -> None:
            rpc, message, expected = next(cycle)
            try:
                await getattr(attackers[i], rpc)(message, timeout=RPC_TIMEOUT)
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            if code != expected:
                raise RuntimeError(f"{rpc}: {code.name}, expected {expected.name}")

        timing = {"seconds": args.seconds, "warmup": args.warmup, "stack": stack}
        if "quiet" in args.only:
            results.append(await measure_async("GetVersion, 1 client, quiet", get_version,
                                               clients=1, **timing))  # fmt: skip
        if "attack" in args.only:
            results += await asyncio.gather(
                measure_async(
                    f"GetVersion, 1 client, while {args.clients} clients attack",
                    get_version,
                    clients=1,
                    **timing,
                ),
                measure_async(
                    f"hostile lists ({len(HOSTILE)} kinds), {args.clients} clients",
                    hostile,
                    clients=args.clients,
                    **timing,
                ),
            )
        return results


async def seed_measured(stack: Stack, stubs: Stubs, tasks: int) -> Result | None:
    await stubs[0].RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name=PROJECT)),
        timeout=RPC_TIMEOUT,
    )
    if not tasks:
        return None

    async def create(i: int, n: int) -> None:
        await stubs[i].CreateTask(task_request(DOMAIN, NAME, f"v{n:05d}"), timeout=RPC_TIMEOUT)

    return await measure_count_async(
        f"CreateTask, seeding {tasks:,} versions", create, count=tasks, clients=len(stubs),
        stack=stack,
    )  # fmt: skip


def main() -> None:
    parser = load_options("python -m bench.hostile", __doc__)
    stack_options(parser, PHASES, "hostile lists")
    parser.add_argument("--tasks", type=int, default=2_000, help="task versions seeded first")
    args = parse_args(parser, PHASES, None)
    with stack(args.kubeconfig, profile=args.profile) as running:
        results = asyncio.run(run_phases(running, args))
        figures = start_figures(running)
        for r in results:
            if r.name.startswith("GetVersion"):
                figures.append((f"{r.name}: p50 / p99", f"{r.ms(50):.2f} / {r.ms(99):.2f} ms",
                                "p99 < 100 ms" if "attack" in r.name else "",
                                r.ms(99) < 100 if "attack" in r.name else None))  # fmt: skip
    command = f"python -m bench.hostile --clients {args.clients} --seconds {args.seconds:g}"
    command += f" --warmup {args.warmup:g} --tasks {args.tasks}"
    print_results(args, PHASES, command, results, CPU_NOTE)
    print_figures_and_errors(figures, results)


if __name__ == "__main__":
    run_main(main)
