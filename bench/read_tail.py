"""GetProject at one client: the latency percentiles, and when the slow calls came, against a
running stack; optionally a second pass with another process paused, to test a suspect.

    .venv/bin/python -m bench.read_tail [--endpoint 127.0.0.1:38089] [--calls 20000]
        [--slow-us 600] [--pause-pid PID]

One synchronous channel sends ``--calls`` GetProject calls back to back (after 500 unmeasured),
as the anchor's one-client phase does. Printed per pass: p50 ... p99.9 in microseconds, the
number of calls slower than ``--slow-us``, and the commonest gaps between consecutive slow
calls (a periodic disturbance shows as one gap that keeps coming back: on 2026-12-07 slow
calls came every 47-48 ms while the operator was creating project namespaces at its paced 20
writes per second, bench/README.md). With ``--pause-pid`` a second pass runs with that process
stopped (SIGSTOP) and continued (SIGCONT) afterwards, whatever happens. Not a test: figures
only.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections import Counter

import grpc
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc

from bench.common import percentile, run_main, say
from bench.requests import CHANNEL_OPTIONS


def _pass(stub: admin_pb2_grpc.AdminServiceStub, calls: int, slow_s: float) -> str:
    request = project_pb2.ProjectGetRequest(id="flytesnacks")
    for _ in range(500):
        stub.GetProject(request)
    latencies: list[float] = []
    slow: list[float] = []
    started = time.perf_counter()
    for _ in range(calls):
        sent = time.perf_counter()
        stub.GetProject(request)
        took = time.perf_counter() - sent
        latencies.append(took)
        if took > slow_s:
            slow.append(sent - started)
    rate = calls / (time.perf_counter() - started)
    quantiles = " ".join(
        f"p{q:g} {1e6 * percentile(latencies, q):.0f}" for q in (50, 90, 99, 99.5, 99.9)
    )
    gaps = Counter(round(1000 * (b - a)) for a, b in zip(slow, slow[1:], strict=False))
    common = ", ".join(f"{gap} ms x{n}" for gap, n in gaps.most_common(4))
    return f"{rate:.0f}/s, µs: {quantiles}; {len(slow)} slow calls, commonest gaps: {common}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.read_tail", description=__doc__)
    parser.add_argument("--endpoint", default="127.0.0.1:38089")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--slow-us", type=float, default=600.0)
    parser.add_argument("--pause-pid", type=int)
    args = parser.parse_args(argv)
    with grpc.insecure_channel(args.endpoint, options=CHANNEL_OPTIONS) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        print("as it runs:", _pass(stub, args.calls, args.slow_us / 1e6))
        if args.pause_pid:
            say(f"pausing process {args.pause_pid}")
            os.kill(args.pause_pid, signal.SIGSTOP)
            try:
                print(f"{args.pause_pid} paused:", _pass(stub, args.calls, args.slow_us / 1e6))
            finally:
                os.kill(args.pause_pid, signal.SIGCONT)


if __name__ == "__main__":
    run_main(main)
