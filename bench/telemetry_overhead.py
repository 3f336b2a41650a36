"""What the per-RPC telemetry (api_server/telemetry.py: request id, metrics, access log check,
span check) costs a gRPC server: the server process's CPU time per unary call, with and without
``TelemetryInterceptor``, on grpc's own Health service (a handler that does nothing, so the
difference is all telemetry). Rounds alternate, so noise from other processes spreads over both.

    .venv/bin/python -m bench.telemetry_overhead [--calls 20000] [--rounds 3]

Prints figures only; never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

CONCURRENCY = 8


def _serve(telemetry: bool, ports, mark, stop, cpu) -> None:
    async def main() -> None:
        interceptors = []
        if telemetry:
            from flyteadmin.api_server.telemetry import TelemetryInterceptor

            interceptors = [TelemetryInterceptor()]
        # As `flyteadmin serve --log-level WARNING` runs: no access lines written.
        logging.getLogger("flyteadmin.access").setLevel(logging.WARNING)
        server = grpc.aio.server(interceptors=interceptors)
        servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        await servicer.set("x", health_pb2.HealthCheckResponse.SERVING)
        ports.put(port)
        while not mark.is_set():  # the warm-up
            await asyncio.sleep(0.01)
        started = time.process_time()
        while not stop.is_set():
            await asyncio.sleep(0.01)
        cpu.put(time.process_time() - started)
        await server.stop(0)

    asyncio.run(main())


async def _load(port: int, calls: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="x")

        async def client(count: int) -> None:
            for _ in range(count):
                await stub.Check(request)

        await asyncio.gather(*(client(calls // CONCURRENCY) for _ in range(CONCURRENCY)))


def measure(telemetry: bool, calls: int) -> float:
    """Server CPU microseconds per call (start-up and the warm-up left out)."""
    context = multiprocessing.get_context("spawn")
    ports, cpu = context.Queue(), context.Queue()
    mark, stop = context.Event(), context.Event()
    process = context.Process(target=_serve, args=(telemetry, ports, mark, stop, cpu))
    process.start()
    try:
        port = ports.get(timeout=60)
        asyncio.run(_load(port, 2000))
        mark.set()
        time.sleep(0.05)  # the server notices the mark
        asyncio.run(_load(port, calls))
    finally:
        mark.set()
        stop.set()
        seconds = cpu.get(timeout=60)
        process.join(30)
    return seconds / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for telemetry in (False, True):
            figures[telemetry].append(measure(telemetry, args.calls))
    plain, observed = (statistics.median(figures[t]) for t in (False, True))
    print(f"server CPU per call, plain:     {plain:6.1f} us  (rounds: {figures[False]})")
    print(f"server CPU per call, telemetry: {observed:6.1f} us  (rounds: {figures[True]})")
    print(f"telemetry costs:                {observed - plain:6.1f} us per call (median)")


if __name__ == "__main__":
    main()
