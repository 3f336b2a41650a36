"""kube-apiserver's own ceiling for the product's writes, on a running stack: copies of the
objects the product stored, created (and updated) straight on kube-apiserver.

    PYTHONSAFEPATH=1 .venv/bin/python -m bench.apiserver_ceiling --kubeconfig K \\
        --apiserver-pid P --etcd-pid E [--objects 1000] [--clients 16] [--json OUT]

Run it right after a benchmark client (e.g. ../shared/anchor/bench_admin.py) against the same
`flyteadmin dev` stack, so that both meet the same kube-apiserver, etcd and machine: the rows
that are bound by kube-apiserver's cost per write are then compared with what no client of it
can beat (bench/README.md, "Against flyteadmin + PostgreSQL").

For each kind it takes one object the product wrote (its store namespace, or a project
namespace for FlyteWorkflows), strips what kube-apiserver sets (uid, resourceVersion,
timestamps; managedFields stay off, as the product writes them), and creates `--objects` copies
under new names in a fresh namespace that no watch of the product follows, from `--clients`
concurrent requests over the product's own asyncio Kubernetes client. For the kinds events
update (executions, node and task executions) it then replaces every copy once, changed, as an
event does. Printed per kind: writes/s, kube-apiserver's and etcd's CPU milliseconds per write,
and the object's size. The namespace is deleted at the end. Not a test: figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import uuid
from pathlib import Path

from bench.common import add_apiserver_arguments, print_table, run_main, say, timed_pass
from flyteadmin.core import crds, kube

# (kind, API group/version, plural, updated by events)
KINDS = [
    *((k.kind, k.api_version, k.plural, False) for k in (crds.PROJECT, crds.TASK)),
    *(
        (k.kind, k.api_version, k.plural, True)
        for k in (crds.EXECUTION, crds.NODE_EXECUTION, crds.TASK_EXECUTION)
    ),
    # What the operator launches for each execution (flytepropeller's CRD).
    ("FlyteWorkflow", "flyte.lyft.com/v1alpha1", "flyteworkflows", False),
]


def _template(item: dict) -> dict:
    """A stored object as a body to create again: what kube-apiserver sets is removed."""
    body = copy.deepcopy(item)
    meta = body["metadata"]
    body["metadata"] = {
        "labels": meta.get("labels", {}),
        "annotations": meta.get("annotations", {}),
        "managedFields": [{}],
    }
    return body


def _changed(body: dict, n: int) -> dict:
    """The body with one annotation changed: a real write of the whole object, as an event's
    (kube-apiserver skips writing an object that did not change)."""
    changed = copy.deepcopy(body)
    changed["metadata"].setdefault("annotations", {})["flyteadmin.io/bench"] = str(n)
    return changed


async def _kind(http, entry: tuple, args, namespace: str, pids: dict[str, int]) -> dict:
    kind, api_version, plural, updated = entry
    # Every namespace: the fresh one is still empty, FlyteWorkflows live in project namespaces.
    listed = await http.request("GET", f"/apis/{api_version}/{plural}?limit=1")
    if not listed["items"]:
        return {"kind": kind, "missing": True}
    template = _template(listed["items"][0])
    path = f"/apis/{api_version}/namespaces/{namespace}/{plural}"
    versions: dict[int, dict] = {}

    async def create(i: int) -> None:
        body = copy.deepcopy(template)
        body["metadata"]["name"] = f"c{i}"
        versions[i] = await http.request("POST", path, body)

    wall, cpu = await timed_pass(create, args.objects, args.clients, pids)
    row = {
        "kind": kind,
        "creates_per_s": args.objects / wall,
        "apiserver_ms_per_create": 1000 * cpu["kube-apiserver"] / args.objects,
        "etcd_ms_per_create": 1000 * cpu["etcd"] / args.objects,
        "bytes": len(json.dumps(versions[0], separators=(",", ":"))),
    }
    if updated:

        async def update(i: int) -> None:
            body = _changed(template, i)
            body["metadata"]["name"] = f"c{i}"
            body["metadata"]["resourceVersion"] = versions[i]["metadata"]["resourceVersion"]
            await http.request("PUT", f"{path}/c{i}", body)

        wall, cpu = await timed_pass(update, args.objects, args.clients, pids)
        row |= {
            "updates_per_s": args.objects / wall,
            "apiserver_ms_per_update": 1000 * cpu["kube-apiserver"] / args.objects,
            "etcd_ms_per_update": 1000 * cpu["etcd"] / args.objects,
        }
    return row


async def _main(args) -> list[dict]:
    pids = {"kube-apiserver": args.apiserver_pid, "etcd": args.etcd_pid}
    api = kube.api_client(args.kubeconfig)
    namespace = f"ceiling-{uuid.uuid4().hex[:6]}"
    kube.ensure_namespace(api, namespace)
    http = kube.KubeHttp(api, max_connections=args.clients)
    try:
        rows = []
        for entry in KINDS:
            say(f"{entry[2]}: {args.objects} copies")
            rows.append(await _kind(http, entry, args, namespace, pids))
        return rows
    finally:
        await http.request("DELETE", f"/api/v1/namespaces/{namespace}")
        await http.close()
        api.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.apiserver_ceiling", description=__doc__)
    add_apiserver_arguments(parser)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = asyncio.run(_main(args))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))

    def fmt(row: dict, key: str, digits: int = 0) -> str:
        return f"{row[key]:,.{digits}f}" if key in row else "-"

    print_table(
        [
            "kind",
            "creates/s",
            "apisrv ms/create",
            "etcd ms/create",
            "updates/s",
            "apisrv ms/update",
            "etcd ms/update",
            "bytes",
        ],
        [
            [
                r["kind"] + (" (none stored)" if r.get("missing") else ""),
                fmt(r, "creates_per_s"),
                fmt(r, "apiserver_ms_per_create", 2),
                fmt(r, "etcd_ms_per_create", 2),
                fmt(r, "updates_per_s"),
                fmt(r, "apiserver_ms_per_update", 2),
                fmt(r, "etcd_ms_per_update", 2),
                fmt(r, "bytes"),
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    run_main(main)
