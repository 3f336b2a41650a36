"""Sustained ingest into a small etcd: the archiver keeps etcd's size and the server's memory flat,
and the budget guard refuses work before etcd's NOSPACE alarm (issue 11's benchmarks).

    .venv/bin/python -m bench.archive                         # 20 minutes, etcd quota 256 MiB
    .venv/bin/python -m bench.archive --minutes 5 --quota-mib 64 --clients 4

A local control plane whose etcd has ``--quota-backend-bytes`` = ``--quota-mib`` (and whose
kube-apiserver compacts every ``--compaction-seconds``), a GCS emulator, ``flyteadmin serve`` and
``flyteadmin operator`` configured with that quota, ``archive.retention_seconds`` =
``--retention`` and the same compaction interval. ``--clients`` loops each create an execution of
a ``--nodes``-node workflow and post the events flytepropeller would (5 per node, 2 for the
workflow), then the next. A create refused with RESOURCE_EXHAUSTED (the guard) waits a second; an
event so refused is posted again (as propeller does), and a FlyteWorkflow being deleted loses
propeller's finalizer (as propeller lets go of it). Every ``--sample`` seconds a line: how many
executions were acknowledged (created and every event recorded), refused, archived (history
rows), live, FlyteWorkflow objects, etcd's database size and in-use size (etcd's own
metrics), and the API server's and operator's RSS. At the end: etcd's alarms (must be none), a
ConfigMap write (the rest of the cluster still writes), and every acknowledged execution read
back (GetExecution of each, SUCCEEDED; ListExecutions paged to the end holds each once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass, field

import grpc
from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.service import admin_pb2_grpc
from kubernetes import client

from bench.common import machine_info, print_table, run_main, say, stack
from bench.executions import DOMAINS, PROJECT, Propeller, create_request, exec_id, setup
from flyteadmin.core import kube

MIB = 1 << 20
RPC_TIMEOUT = 60.0


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.archive", description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--quota-mib", type=int, default=256)
    parser.add_argument("--compaction-seconds", type=int, default=60)
    parser.add_argument("--retention", type=float, default=10.0, help="archive retention (s)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    return parser.parse_args(argv)


@dataclass
class Counts:
    acknowledged: list[str] = field(default_factory=list)
    refused_creates: int = 0
    refused_events: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total = max(total, float(line.rsplit(" ", 1)[1]))
    return total


def _etcd(stack) -> tuple[str, dict[str, float]]:
    ports = json.loads((stack.plane_dir / "ports.json").read_text())
    url = f"http://127.0.0.1:{ports['etcd_client']}"
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return url, {
        "db": _metric(text, "etcd_mvcc_db_total_size_in_bytes"),
        "in_use": _metric(text, "etcd_mvcc_db_total_size_in_use_in_bytes"),
    }


def _alarms(etcd_url: str) -> list:
    request = urllib.request.Request(
        f"{etcd_url}/v3/maintenance/alarm", data=b'{"action":"GET"}', method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()).get("alarms") or []


def _rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024
    return 0.0


async def _client(i: int, stub, args, counts: Counts, until: float) -> None:
    domain = DOMAINS[i % len(DOMAINS)]
    n = 0
    while time.monotonic() < until:
        name = f"c{i:02d}x{n:06d}"
        n += 1
        try:
            await stub.CreateExecution(create_request(domain, name), timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                counts.refused_creates += 1
                await asyncio.sleep(1.0)
                continue
            counts.errors[exc.code().name] = counts.errors.get(exc.code().name, 0) + 1
            continue
        propeller = Propeller(domain, name)
        ok = True
        for rpc, build in propeller.stream(args.nodes):
            while True:
                try:
                    await getattr(stub, rpc)(build(), timeout=RPC_TIMEOUT)
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        counts.refused_events += 1
                        await asyncio.sleep(1.0)
                        continue
                    counts.errors[exc.code().name] = counts.errors.get(exc.code().name, 0) + 1
                    ok = False
                    break
            if not ok:
                break
        if ok:
            counts.acknowledged.append(f"{domain}/{name}")


async def _play_propellers_finalizer(kube_api, until: float) -> None:
    """What flytepropeller does with a FlyteWorkflow being deleted (this benchmark plays
    propeller, so nothing else would): it lets go of its finalizer, and the object goes.
    Without it every deleted object stays in etcd for good."""
    custom = client.CustomObjectsApi(kube_api)
    while time.monotonic() < until + 30:
        items = await asyncio.to_thread(
            custom.list_cluster_custom_object, "flyte.lyft.com", "v1alpha1", "flyteworkflows"
        )
        for item in items["items"]:
            meta = item["metadata"]
            if meta.get("deletionTimestamp") and meta.get("finalizers"):
                try:
                    await asyncio.to_thread(
                        custom.patch_namespaced_custom_object,
                        "flyte.lyft.com",
                        "v1alpha1",
                        meta["namespace"],
                        "flyteworkflows",
                        meta["name"],
                        {"metadata": {"finalizers": None}},
                    )
                except client.ApiException as exc:
                    if exc.status != 404:
                        raise
        await asyncio.sleep(2.0)


def _flyteworkflows(kube_api) -> int:
    got = client.CustomObjectsApi(kube_api).list_cluster_custom_object(
        "flyte.lyft.com", "v1alpha1", "flyteworkflows", limit=1
    )
    return _listed_count(got)


def _listed_count(got: dict) -> int:
    """How many objects a list with ``limit=1`` stands for."""
    return len(got["items"]) + int(got["metadata"].get("remainingItemCount") or 0)


async def _count_archived(kube_api, namespace: str) -> tuple[int, int]:
    """Executions in history, and history files (HistorySegment objects, every table)."""
    items = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "historysegments"
    )["items"]
    rows = sum(i["spec"]["rows"] for i in items if i["spec"]["table"] == "executions")
    return rows, len(items)


def _live(kube_api, namespace: str) -> int:
    got = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "executions", limit=1
    )
    return _listed_count(got)


async def _verify(stub, counts: Counts) -> list[list[str]]:
    """Every acknowledged execution reads back; lists hold each once."""
    missing = wrong = 0
    for key in counts.acknowledged:
        domain, name = key.split("/")
        try:
            got = await stub.GetExecution(
                execution_pb2.WorkflowExecutionGetRequest(id=exec_id(domain, name)),
                timeout=RPC_TIMEOUT,
            )
            wrong += got.closure.phase != 4  # SUCCEEDED
        except grpc.aio.AioRpcError:
            missing += 1
    listed: dict[str, int] = {}
    for domain in DOMAINS:
        token = ""
        while True:
            page = await stub.ListExecutions(
                common_pb2.ResourceListRequest(
                    id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=domain),
                    limit=500,
                    token=token,
                    filters="eq(phase,SUCCEEDED)",
                ),
                timeout=RPC_TIMEOUT,
            )
            for e in page.executions:
                key = f"{domain}/{e.id.name}"
                listed[key] = listed.get(key, 0) + 1
            token = page.token
            if not token:
                break
    twice = sum(1 for v in listed.values() if v > 1)
    absent = sum(1 for k in counts.acknowledged if k not in listed)
    return [
        ["acknowledged executions", str(len(counts.acknowledged))],
        ["GetExecution: missing / not SUCCEEDED", f"{missing} / {wrong}"],
        ["ListExecutions: listed / absent / listed twice", f"{len(listed)} / {absent} / {twice}"],
    ]


async def run(args: argparse.Namespace) -> None:
    quota = args.quota_mib * MIB
    config = {
        "etcd": {"quota_bytes": quota, "compaction_interval_seconds": args.compaction_seconds},
        "archive": {"retention_seconds": args.retention, "interval_seconds": 1.0},
        "operator": {"flyteworkflow_retention_seconds": args.retention},
    }
    with stack(
        blobstore=True,
        server_config=config,
        etcd_args=(f"--quota-backend-bytes={quota}",),
        apiserver_args=(f"--etcd-compaction-interval={args.compaction_seconds}s",),
        operator=True,
    ) as s:
        channel = grpc.aio.insecure_channel(s.grpc_target)
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        await setup([stub], args.nodes)
        kube_api = kube.api_client(s.kubeconfig)
        counts = Counts()
        until = time.monotonic() + args.minutes * 60
        say(f"{args.clients} clients for {args.minutes} minutes, etcd quota {args.quota_mib} MiB")
        loads = [
            asyncio.create_task(_client(i, stub, args, counts, until)) for i in range(args.clients)
        ]
        finalizers = asyncio.create_task(_play_propellers_finalizer(kube_api, until))
        rows = []
        started = time.monotonic()
        etcd_url = ""
        while not all(t.done() for t in loads):
            await asyncio.sleep(args.sample)
            etcd_url, sizes = _etcd(s)
            archived, files = await _count_archived(kube_api, s.namespace)
            rows.append(
                [
                    f"{(time.monotonic() - started) / 60:.1f}",
                    str(len(counts.acknowledged)),
                    str(counts.refused_creates),
                    str(archived),
                    str(files),
                    str(_live(kube_api, s.namespace)),
                    str(_flyteworkflows(kube_api)),
                    f"{sizes['db'] / MIB:.0f}",
                    f"{sizes['in_use'] / MIB:.0f}",
                    f"{_rss_mib(s.processes['server']):.0f}",
                    f"{_rss_mib(s.processes['operator']):.0f}",
                ]
            )
            say(" ".join(rows[-1]))
        await asyncio.gather(*loads)
        finalizers.cancel()
        alarms = _alarms(etcd_url)
        client.CoreV1Api(kube_api).create_namespaced_config_map(
            "default", {"metadata": {"name": "bench-still-writing"}, "data": {"a": "b"}}
        )
        verified = await _verify(stub, counts)
        await channel.close()
    print(machine_info())
    print_table(
        [
            "minutes",
            "acknowledged",
            "creates refused",
            "archived",
            "history files",
            "live",
            "FlyteWorkflows",
            "etcd db MiB",
            "etcd in use MiB",
            "server RSS MiB",
            "operator RSS MiB",
        ],
        rows,
    )
    print()
    print_table(
        ["check", "value"],
        [
            ["etcd alarms at the end", json.dumps(alarms) if alarms else "none"],
            ["events refused (then posted again)", str(counts.refused_events)],
            ["other errors", json.dumps(counts.errors) if counts.errors else "none"],
            ["a ConfigMap write at the end", "ok"],
            *verified,
        ],
    )


def main(argv: list[str] | None = None) -> None:
    args = options(argv)
    asyncio.run(run(args))


if __name__ == "__main__":
    run_main(main)
