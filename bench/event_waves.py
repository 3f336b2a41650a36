"""Propeller-shaped events against a running server, and the CPU every process spent on them.

Creates ``--waves`` x 100 single-task executions first (the anchor's task and requests:
../shared/anchor/bench_admin.py) and prints their rate and the CPU per execution until the
operator's launches settled, then sends each wave's 800 events
(8 per execution, each execution's in order, 100 executions at once) and prints events/s and
the CPU per event of kube-apiserver, etcd, the API-server workers and the dev process (operator
and supervisor), read from /proc over the event waves only. Prints figures; asserts nothing.

    .venv/bin/python -m bench.event_waves [--endpoint 127.0.0.1:38089] [--waves 5]

Against the anchor's stack (``ANCHOR_RUN=/tmp/ar ../shared/anchor/project_start.sh``);
bench/event_ab.sh alternates two checkouts on a fresh stack each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import grpc
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc

ANCHOR = Path(os.environ.get("ANCHOR", "../shared/anchor")).resolve()
TICKS = os.sysconf("SC_CLK_TCK")
PER_WAVE = 100
CLIENTS = 16


def _group(cmdline: str) -> str | None:
    """Which process group a command line belongs to."""
    program = cmdline.split(" ")[0]
    if "kube-apiserver" in program:
        return "kube-apiserver"
    if program.endswith("/etcd"):
        return "etcd"
    if "multiprocessing.spawn" in cmdline:  # (the dev process spawns the API workers)
        return "API workers"
    if "flyteadmin" in cmdline and " dev " in cmdline:
        return "dev process (operator)"
    return None


def cpu_by_group() -> dict[str, float]:
    """CPU seconds so far of every process of the stack, by group."""
    seconds: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        group = _group(cmdline)
        if group is not None:
            seconds[group] = seconds.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


async def run(endpoint: str, waves: int) -> None:
    sys.path.insert(0, str(ANCHOR))
    import bench_admin as anchor  # noqa: PLC0415 - the anchor's own request shapes

    # one connection per channel, as the anchor's client: the API workers share the load
    options = anchor.CHANNEL_OPTIONS
    channels = [grpc.aio.insecure_channel(endpoint, options=options) for _ in range(CLIENTS)]
    stubs = [admin_pb2_grpc.AdminServiceStub(c) for c in channels]
    project, version = "waves", "v1"
    register = project_pb2.ProjectRegisterRequest(
        project=project_pb2.Project(id=project, name=project)
    )
    await anchor.ignore_exists(stubs[0].RegisterProject(register))
    await anchor.ignore_exists(
        stubs[0].CreateTask(anchor.task_request(project, anchor.TASK_NAME, version))
    )
    limit = asyncio.Semaphore(CLIENTS)

    async def create(i: int, name: str) -> None:
        async with limit:
            await stubs[i % CLIENTS].CreateExecution(
                anchor.exec_request(project, name, version), timeout=60
            )

    names = [[f"w{uuid.uuid4().hex[:10]}" for _ in range(PER_WAVE)] for _ in range(waves)]
    before, started = cpu_by_group(), time.perf_counter()
    for wave in names:
        await asyncio.gather(*(create(i, n) for i, n in enumerate(wave)))
    created = time.perf_counter() - started
    await asyncio.sleep(8)  # the operator's launches settle
    launched = {g: total - before.get(g, 0.0) for g, total in cpu_by_group().items()}
    count = PER_WAVE * waves
    per_launch = ", ".join(f"{g} {1000 * s / count:.2f}" for g, s in sorted(launched.items()))
    every = 1000 * sum(launched.values()) / count
    print(
        f"CreateExecution: {count / created:.0f}/s; CPU ms per execution created and launched "
        f"(until the launches settled): {per_launch}, all {every:.2f}",
        flush=True,
    )
    errors: list[str] = []

    async def stream(i: int, name: str) -> None:
        for rpc, build in anchor.Propeller(project, name, version).stream():
            try:
                await getattr(stubs[i % CLIENTS], rpc)(build(), timeout=60)
            except grpc.aio.AioRpcError as exc:
                errors.append(f"{rpc}: {exc.code().name}")

    spent: dict[str, float] = {}
    events, wall = 0, 0.0
    for number, wave in enumerate(names):
        before, started = cpu_by_group(), time.perf_counter()
        await asyncio.gather(*(stream(i, n) for i, n in enumerate(wave)))
        seconds = time.perf_counter() - started
        for group, total in cpu_by_group().items():
            spent[group] = spent.get(group, 0.0) + total - before.get(group, 0.0)
        events, wall = events + 8 * len(wave), wall + seconds
        print(f"wave {number}: {8 * len(wave) / seconds:.0f} events/s", flush=True)
    per_event = ", ".join(f"{g} {1000 * s / events:.2f}" for g, s in sorted(spent.items()))
    print(
        f"total: {events / wall:.0f} events/s, {len(errors)} errors; CPU ms per event: "
        f"{per_event}, all {1000 * sum(spent.values()) / events:.2f}"
    )
    if errors:
        print(f"first error: {errors[0]}")
    for channel in channels:
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1:38089")
    parser.add_argument("--waves", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.endpoint, args.waves))


if __name__ == "__main__":
    main()
