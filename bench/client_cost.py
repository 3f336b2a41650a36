"""What one GetProject costs the *client*, and the rate, by server: the anchor's client shape
(``--clients`` channels, one connection each, calls back to back) against each ``--endpoint``,
and against two trivial servers started here (each answers every GetProject with the same
small Project: no store, no telemetry), grpc.aio's and grpcio's synchronous one (a thread pool),
so the difference between servers is the transport, not the handler. With ``--clients 1`` the
rate is the round trip's latency: the anchor's GetProject at one client.

    .venv/bin/python -m bench.client_cost [--endpoint NAME=HOST:PORT ...] [--calls 1000]
        [--rounds 3] [--clients 16] [--project seed-007]

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
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

import grpc
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc

from bench.common import print_table, run_main
from bench.requests import CHANNEL_OPTIONS  # one connection per channel

TRIVIAL = "grpc.aio, trivial handler"
TRIVIAL_SYNC = "grpc (synchronous), trivial handler"
DOMAINS = ("development", "staging", "production")


def _answer(project: str) -> project_pb2.Project:
    return project_pb2.Project(
        id=project,
        name=project,
        description="seeded",
        domains=[project_pb2.Domain(id=d, name=d) for d in DOMAINS],
    )


def _trivial_server(project: str, conn: Connection) -> None:
    answer = _answer(project)

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


def _trivial_sync_server(project: str, conn: Connection) -> None:
    answer = _answer(project)

    class Servicer(admin_pb2_grpc.AdminServiceServicer):
        def GetProject(self, request, context):  # noqa: N802 - the RPC's name
            return answer

    server = grpc.server(ThreadPoolExecutor(max_workers=16))
    admin_pb2_grpc.add_AdminServiceServicer_to_server(Servicer(), server)
    conn.send(server.add_insecure_port("127.0.0.1:0"))
    server.start()
    conn.recv()  # until told to stop
    server.stop(None)


def _client(target: str, project: str, calls: int, clients: int, conn: Connection) -> None:
    async def main() -> tuple[float, float]:
        channels = [
            grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(clients)
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


def _measure(target: str, project: str, calls: int, clients: int) -> tuple[float, float]:
    """(client µs of CPU per call, calls per second)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_client, args=(target, project, calls, clients, child))
    process.start()
    cpu, wall = parent.recv()
    process.join()
    total = calls * clients
    return cpu / total * 1e6, total / wall


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.client_cost", description=__doc__)
    parser.add_argument("--endpoint", action="append", default=[], help="NAME=HOST:PORT")
    parser.add_argument("--calls", type=int, default=1000, help="per client")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--project", default="seed-007")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    targets: dict[str, str] = {}
    servers = []
    for name, serve in ((TRIVIAL, _trivial_server), (TRIVIAL_SYNC, _trivial_sync_server)):
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(args.project, child), daemon=True)
        process.start()
        targets[name] = f"127.0.0.1:{parent.recv()}"
        servers.append((process, parent))
    targets.update(dict(e.split("=", 1) for e in args.endpoint))
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    try:
        for _ in range(args.rounds):
            for name, target in targets.items():
                figures[name].append(_measure(target, args.project, args.calls, args.clients))
    finally:
        for process, parent in servers:
            parent.send("stop")
            process.join(10)
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
