"""Python's garbage collector in one API server under load, with Python's defaults and with the
caches frozen out of it (core/heap.py, the ``freeze_caches`` setting).

    .venv/bin/python -m bench.gc_passes --kubeconfig K [--count 6000]
        [--rounds 1]

Against a running stack (the anchor's: ``ANCHOR_RUN=/tmp/ar ../shared/anchor/project_start.sh``,
K = its kubeconfig). For each mode, alternating, a child process runs one ``ApiServer`` on free
ports (its caches load the store as it is, so each round meets a larger one), and
bench.registration_waves sends it ``--count`` RegisterProject, CreateTask and GetProject calls.
The child then reports its collector passes over the load by generation (count, total time, the
longest), the objects frozen, and what unfreezing and one full collection find unreachable:
cyclic garbage that freezing kept (without freezing: what was pending since the last pass).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.common import run_main

MODES = {"python's defaults": False, "frozen caches": True}


def _serve(kubeconfig: str, freeze: bool, conn: Connection) -> None:
    from flyteadmin.core import event_loop, heap
    from flyteadmin.core.config import load_settings
    from flyteadmin.devstack.processes import free_ports

    passes = {g: [0, 0.0, 0.0, 0] for g in range(3)}  # count, seconds, longest, collected
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        seconds, row = time.perf_counter() - started[0], passes[info["generation"]]
        row[0], row[1], row[2] = row[0] + 1, row[1] + seconds, max(row[2], seconds)
        row[3] += info["collected"]

    heap.manage(freeze)
    gc.callbacks.insert(0, timed)

    async def main() -> None:
        from flyteadmin.api_server.app import ApiServer

        grpc_port, http_port = free_ports(2)
        settings = load_settings(
            env={
                "FLYTEADMIN__KUBERNETES__KUBECONFIG": kubeconfig,
                "FLYTEADMIN__SERVER__GRPC_PORT": str(grpc_port),
                "FLYTEADMIN__SERVER__HTTP_PORT": str(http_port),
                "FLYTEADMIN__FREEZE_CACHES": str(freeze).lower(),
            }
        )
        server = ApiServer(settings)
        await server.start()
        for row in passes.values():
            row[:] = [0, 0.0, 0.0, 0]
        conn.send(grpc_port)
        await asyncio.to_thread(conn.recv)  # the load is over
        seen = {g: list(row) for g, row in passes.items()}  # before the check's own passes
        frozen = gc.get_freeze_count()
        gc.unfreeze()
        unreachable = gc.collect()
        conn.send({"passes": seen, "frozen": frozen, "unreachable": unreachable})
        await server.stop()

    event_loop.run(main(), "uvloop")


def _round(kubeconfig: str, freeze: bool, count: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(kubeconfig, freeze, child))
    process.start()
    try:
        if not parent.poll(180):
            raise RuntimeError("the API server did not start")
        port = parent.recv()
        load = [sys.executable, "-m", "bench.registration_waves", "--endpoint"]
        done = subprocess.run(
            [*load, f"127.0.0.1:{port}", "--count", str(count)], capture_output=True, text=True
        )
        parent.send("done")
        report = parent.recv()
        report["load"] = [line.split(";")[0] for line in done.stdout.splitlines() if "/s" in line]
        return report
    finally:
        process.join(60)
        if process.is_alive():
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.gc_passes", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--count", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    for round_ in range(1, args.rounds + 1):
        for mode, freeze in MODES.items():
            report = _round(args.kubeconfig, freeze, args.count)
            print(f"{mode} ({round_}): {', '.join(report['load'])}", flush=True)
            for generation, (passes, seconds, longest, collected) in report["passes"].items():
                print(
                    f"  generation {generation}: {passes} passes, {1000 * seconds:.0f} ms, "
                    f"the longest {1000 * longest:.1f} ms, {collected:,} objects collected"
                )
            print(
                f"  frozen {report['frozen']:,}; unfrozen, one full collection found "
                f"{report['unreachable']:,} unreachable",
                flush=True,
            )


if __name__ == "__main__":
    run_main(main)
