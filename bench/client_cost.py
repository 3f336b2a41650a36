"""What one GetProject costs the *client*, by server: the anchor's client shape (16 channels,
one connection each, calls back to back) against each ``--endpoint``, and against a trivial
grpc.aio server started here (it answers every GetProject with the same small Project: no store,
no telemetry), so the difference between servers is the transport, not the handler.

    .venv/bin/python -m bench.client_cost [--endpoint NAME=HOST:PORT ...] [--calls 1000]
        [--rounds 3] [--project seed-007]

The anchor runs its client on the same two cores as the server under test, so what a call costs
the client is taken from the rate. Each client runs in its own process; its CPU (every thread)
is counted from its first call to its last. Rounds alternate the targets. The endpoints' project
must exist (the anchor's seed projects do). Figures only; never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection

import grpc
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc

from bench.common import print_table, run_main
from bench.requests import CHANNEL_OPTIONS  # one connection per channel

CLIENTS = 16
TRIVIAL = "grpc.aio, trivial handler"
DOMAINS = ("development", "staging", "production")


def _trivial_server(project: str, conn: Connection) -> None:
    answer = project_pb2.Project(
        id=project,
        name=project,
        description="seeded",
        domains=[project_pb2.Domain(id=d, name=d) for d in DOMAINS],
    )

    class Servicer(admin_pb2_grpc.AdminServiceServicer):
        async def GetProject(self, request, context):  # noqa: N802 - the RPC's name
            return answer

    async def main() -> None:
        server = grpc.aio.server()
        admin_pb2_grpc.add_AdminServiceServicer_to_server(Servicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        conn.send(port)
        await asyncio.to_thread(conn.recv)  # until told to stop
        await server.stop(None)

    asyncio.run(main())


def _client(target: str, project: str, calls: int, conn: Connection) -> None:
    async def main() -> tuple[float, float]:
        channels = [
            grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(CLIENTS)
        ]
        stubs = [admin_pb2_grpc.AdminServiceStub(c) for c in channels]
        request = project_pb2.ProjectGetRequest(id=project)
        for stub in stubs:  # connect and warm up
            await stub.GetProject(request, timeout=30)

        async def loop(stub: admin_pb2_grpc.AdminServiceStub) -> None:
            for _ in range(calls):
                await stub.GetProject(request, timeout=30)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(loop(s) for s in stubs))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        for channel in channels:
            await channel.close()
        return cpu, wall

    conn.send(asyncio.run(main()))


def _measure(target: str, project: str, calls: int) -> tuple[float, float]:
    """(client µs of CPU per call, calls per second)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_client, args=(target, project, calls, child))
    process.start()
    cpu, wall = parent.recv()
    process.join()
    total = calls * CLIENTS
    return cpu / total * 1e6, total / wall


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.client_cost", description=__doc__)
    parser.add_argument("--endpoint", action="append", default=[], help="NAME=HOST:PORT")
    parser.add_argument("--calls", type=int, default=1000, help="per client (16 clients)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--project", default="seed-007")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_trivial_server, args=(args.project, child), daemon=True)
    server.start()
    targets = {TRIVIAL: f"127.0.0.1:{parent.recv()}"}
    targets.update(dict(e.split("=", 1) for e in args.endpoint))
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    try:
        for _ in range(args.rounds):
            for name, target in targets.items():
                figures[name].append(_measure(target, args.project, args.calls))
    finally:
        parent.send("stop")
        server.join(10)
    rows = [
        [
            name,
            f"{targets[name]}",
            ", ".join(f"{us:.0f}" for us, _ in runs),
            f"{statistics.median(us for us, _ in runs):.0f}",
            f"{statistics.median(rate for _, rate in runs):,.0f}",
        ]
        for name, runs in figures.items()
    ]
    print_table(["server", "endpoint", "client µs/call (rounds)", "median", "calls/s"], rows)


if __name__ == "__main__":
    run_main(main)
