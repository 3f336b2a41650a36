"""CPU per watch event: the official client's ``Watch`` against parsing the line once.

    .venv/bin/python -m bench.watch_decode [--events 5000]

Every write reaches every process that holds a watch cache (each API-server worker and the
operator), so this cost is paid once per write per process. ``Watch.unmarshal_event`` parses the
line, serialises the object back to JSON and parses it again; the store (core/store.py,
``_watch_once``) parses it once. The event is a NodeExecution-shaped object of about 3 KB, as
kube-apiserver sends it (compact JSON). Not a test: figures only.
"""

from __future__ import annotations

import argparse
import json
import timeit

from kubernetes import watch

from bench.common import print_table, run_main


def _event_line() -> bytes:
    body = {
        "apiVersion": "flyteadmin.io/v1alpha1",
        "kind": "NodeExecution",
        "metadata": {
            "name": "abc123-n0",
            "namespace": "flyteadmin",
            "resourceVersion": "123456",
            "uid": "6b1e0a1c-3c55-4a0e-9d2c-8f3f7c1e2a11",
            "creationTimestamp": "2026-12-05T10:00:00Z",
            "labels": {"flyteadmin.io/execution": "abc123", "flyteadmin.io/project": "p"},
        },
        "spec": {f"k{i}": "v" * 60 for i in range(20)},
        "status": {
            "phase": "SUCCEEDED",
            "events": [
                {"phase": p, "at": "2026-12-05T10:00:01.123456Z", "uri": "gs://b/" + "x" * 80}
                for p in range(10)
            ],
        },
    }
    event = {"type": "MODIFIED", "object": body}
    return json.dumps(event, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.watch_decode", description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    line = _event_line()
    client_watch = watch.Watch()
    ways = {
        "official client (Watch.unmarshal_event)": lambda: client_watch.unmarshal_event(
            line.decode(), "object"
        ),
        "parsed once (json.loads, core/store.py)": lambda: json.loads(line),
    }
    rows = []
    for name, decode in ways.items():
        best = min(timeit.repeat(decode, number=args.events, repeat=5)) / args.events
        rows.append([name, f"{len(line):,}", f"{best * 1e6:.1f}"])
    print_table(["decoding one watch event", "bytes", "µs per event"], rows)


if __name__ == "__main__":
    run_main(main)
