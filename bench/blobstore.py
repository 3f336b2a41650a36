"""The blob store's CPU per small write and read: the product's client (core/blobstore.py:
gcloud-aio-storage on the event loop) against google-cloud-storage in a thread pool (what the
product used before, and still uses for files and signing), on fake-gcs-server.

    .venv/bin/python -m bench.blobstore [--calls 1000] [--size 200] [--rounds 2]

CreateExecution writes two such blobs (inputs, user inputs) and the operator reads one per
launch, so this CPU is paid per execution by the API server and the operator. Printed per client
and concurrency (1 and 16): calls/s and this process's CPU microseconds per call, rounds
alternating. Not a test: figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from bench.common import print_table, run_main, say
from flyteadmin.core.blobstore import GcsBlobStore, parse_uri
from flyteadmin.core.config import StorageSettings
from flyteadmin.core.event_loop import run

Op = Callable[[int], Awaitable[object]]
Figures = tuple[tuple[float, float], tuple[float, float]]  # (puts/s, µs/put), (gets/s, µs/get)


async def _timed(calls: int, clients: int, op: Op) -> tuple[float, float]:
    """(calls/s, CPU µs per call) of ``calls`` ops from ``clients`` concurrent callers."""
    pending = list(range(calls))
    wall, cpu = time.perf_counter(), time.process_time()

    async def caller() -> None:
        while pending:
            await op(pending.pop())

    await asyncio.gather(*(caller() for _ in range(clients)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu / calls * 1e6


async def _product(
    store: GcsBlobStore, prefix: str, size: int, calls: int, clients: int
) -> Figures:
    data = b"x" * size
    uri = lambda i: store.uri_for(prefix, str(i))  # noqa: E731 - a one-line name maker
    put = await _timed(calls, clients, lambda i: store.put(uri(i), data))
    get = await _timed(calls, clients, lambda i: store.get(uri(i)))
    return put, get


async def _google(store: GcsBlobStore, prefix: str, size: int, calls: int, clients: int) -> Figures:
    """The same calls through google-cloud-storage's Blob, in 8 threads as the product did."""
    s = store.settings
    client = storage.Client(
        project="bench",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": s.endpoint},
    )
    pool = ThreadPoolExecutor(8)
    loop = asyncio.get_running_loop()
    data = b"x" * size

    def blob(i: int) -> storage.Blob:
        bucket, name = parse_uri(store.uri_for(prefix, str(i)))
        return client.bucket(bucket).blob(name)

    def in_thread(call: Callable[[], object]) -> Awaitable[object]:
        return loop.run_in_executor(pool, call)

    put = await _timed(
        calls, clients, lambda i: in_thread(lambda: blob(i).upload_from_string(data))
    )
    get = await _timed(calls, clients, lambda i: in_thread(lambda: blob(i).download_as_bytes()))
    pool.shutdown()
    client.close()
    return put, get


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.blobstore", description=__doc__)
    parser.add_argument("--calls", type=int, default=1000, help="calls per figure (1000)")
    parser.add_argument("--size", type=int, default=200, help="bytes per blob (200)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, clients alternating (2)")
    args = parser.parse_args()
    from flyteadmin.devstack.gcs import start_gcs_emulator  # the dev stack only when run

    clients_of = {"gcloud-aio-storage": _product, "google-cloud-storage": _google}

    async def one(settings: StorageSettings, name: str, prefix: str, clients: int) -> Figures:
        store = GcsBlobStore(settings)
        try:
            return await clients_of[name](store, prefix, args.size, args.calls, clients)
        finally:
            await store.close()

    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        say("starting fake-gcs-server")
        gcs = start_gcs_emulator(Path(tmp))
        try:
            for round_ in range(1, args.rounds + 1):
                for name in clients_of:
                    for clients in (1, 16):
                        prefix = f"bench/{name}/{round_}/{clients}"
                        figures = run(one(gcs.storage_settings(), name, prefix, clients), "uvloop")
                        (put_rate, put_us), (get_rate, get_us) = figures
                        rows.append(
                            [str(round_), name, str(clients), f"{put_rate:,.0f}", f"{put_us:,.0f}"]
                            + [f"{get_rate:,.0f}", f"{get_us:,.0f}"]
                        )
        finally:
            gcs.stop()
    print_table(
        ["round", "client", "callers", "puts/s", "CPU µs/put", "gets/s", "CPU µs/get"], rows
    )


if __name__ == "__main__":
    run_main(main)
