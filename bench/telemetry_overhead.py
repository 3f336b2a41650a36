"""What the per-RPC telemetry (api_server/telemetry.py: request id, metrics, access log check,
span check) costs a gRPC server: the server process's CPU time per unary call on grpc's own
Health service (a handler that does nothing, so the differences are all telemetry), plain, with
``grpc_telemetry`` as the server applies it (a decoration of the method, once: unary.py), and
with the same decoration applied per call by a ``grpc.aio.ServerInterceptor`` (what the server
did before: the cost of the interceptor mechanism alone). Rounds alternate, so noise from other
processes spreads over all three.

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
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

CONCURRENCY = 8


MODES = ("plain", "decorated", "per-call interceptor")


class _PerCall(grpc.aio.ServerInterceptor):
    """A decoration applied to the handler of every call, as an interceptor must."""

    def __init__(self, decoration: Any) -> None:
        self.decoration = decoration

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        return self.decoration(details.method, handler) if handler is not None else None


def _serve(mode: str, ports, mark, stop, cpu) -> None:
    async def main() -> None:
        from flyteadmin.api_server.telemetry import grpc_telemetry
        from flyteadmin.api_server.unary import DecoratingServer

        # As `flyteadmin serve --log-level WARNING` runs: no access lines written.
        logging.getLogger("flyteadmin.access").setLevel(logging.WARNING)
        interceptors = [_PerCall(grpc_telemetry)] if mode == MODES[2] else []
        server = grpc.aio.server(interceptors=interceptors)
        servicer = health.aio.HealthServicer()
        registering = DecoratingServer(server, [grpc_telemetry]) if mode == MODES[1] else server
        health_pb2_grpc.add_HealthServicer_to_server(servicer, registering)
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


def measure(mode: str, calls: int) -> float:
    """Server CPU microseconds per call (start-up and the warm-up left out)."""
    context = multiprocessing.get_context("spawn")
    ports, cpu = context.Queue(), context.Queue()
    mark, stop = context.Event(), context.Event()
    process = context.Process(target=_serve, args=(mode, ports, mark, stop, cpu))
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
    figures: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            figures[mode].append(measure(mode, args.calls))
    medians = {mode: statistics.median(rounds) for mode, rounds in figures.items()}
    for mode, rounds in figures.items():
        shown = ", ".join(f"{r:.0f}" for r in rounds)
        print(f"server CPU per call, {mode:<20} {medians[mode]:6.1f} us  (rounds: {shown})")
    decorated, per_call = medians[MODES[1]] - medians["plain"], medians[MODES[2]] - medians["plain"]
    print(
        f"telemetry costs {decorated:.1f} us per call as a decoration, {per_call:.1f} us "
        "through a per-call interceptor (medians)"
    )


if __name__ == "__main__":
    main()
