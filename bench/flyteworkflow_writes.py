"""What a FlyteWorkflow object costs kube-apiserver and etcd at its create and at each of
propeller's status updates, by shape and CRD (docs/operator.md, "What the object carries").

    .venv/bin/python -m bench.flyteworkflow_writes --kubeconfig K \\
        --apiserver-pid P --etcd-pid E [--objects 800] [--rounds 2]

Shapes: the object of the compiler's golden `main_wf` closure (every node kind) as the operator
builds it carrying its spec, tasks and inputs, and as it builds it naming its closure and inputs
in the blob store (the default). CRDs: ours, whose trees are atomic, and the same with granular
trees (as before 2026-12-07). For each pair it creates `--objects` copies from 16 concurrent
requests in a fresh namespace, then replaces each three times with a propeller-shaped status
of 1, 3 and 5 finished nodes, and prints kube-apiserver's and etcd's CPU per write and the
object's size as stored (managedFields included). It replaces the cluster's FlyteWorkflow CRD
while it runs and puts ours back at the end: run it against a throwaway stack
(``ANCHOR_RUN=/tmp/ar ../shared/anchor/project_start.sh``), never a shared cluster. Figures
only; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import time
import uuid
from typing import Any

from kubernetes import client

from bench.common import add_apiserver_arguments, print_table, run_main, say, timed_pass
from flyteadmin.core import kube
from flyteadmin.core.flyteworkflow import crd
from tests.unit.flyteworkflow.cases import CASES, Case

CLIENTS = 16


def _shapes() -> dict[str, dict[str, Any]]:
    carried = next(c for c in CASES if c.name == "main-wf")
    named = next(c for c in CASES if c.name == "offloaded")
    main_wf_named = Case("named", carried.workflow, carried.inputs, named.options)
    return {"carried": carried.build(), "named": main_wf_named.build()}


def _crds() -> dict[str, dict[str, Any]]:
    atomic = crd.manifest()
    granular = copy.deepcopy(atomic)
    granular["spec"]["versions"][0]["schema"]["openAPIV3Schema"].pop("properties")
    return {"atomic": atomic, "granular": granular}


def _status(name: str, nodes: int) -> dict[str, Any]:
    """A propeller-shaped workflow status with ``nodes`` finished task nodes."""
    data = f"gs://flyteadmin/metadata/propeller/p-d-{name}"
    stamp = "2026-12-07T10:00:00Z"
    return {
        "phase": 2,
        "startedAt": stamp,
        "lastUpdatedAt": stamp,
        "dataDir": data,
        "nodeStatus": {
            f"n{j}": {
                "phase": 5,
                "startedAt": stamp,
                "lastUpdatedAt": stamp,
                "dataDir": f"{data}/n{j}/data",
                "outputDir": f"{data}/n{j}/data/0",
                "task": {"pState": {"phase": 3, "pluginPhase": 2, "pluginStateVersion": 1}},
            }
            for j in range(nodes)
        },
    }


def _install(api: client.ApiClient, manifest: dict[str, Any]) -> None:
    ext = client.ApiextensionsV1Api(api)
    body = copy.deepcopy(manifest)
    current = ext.read_custom_resource_definition(crd.NAME)
    body["metadata"]["resourceVersion"] = current.metadata.resource_version
    ext.replace_custom_resource_definition(crd.NAME, body)
    time.sleep(3)  # kube-apiserver serves the new schema once its handler is rebuilt


async def _pair(http: kube.KubeHttp, namespace: str, template: dict, args, pids) -> dict:
    path = f"/apis/{crd.GROUP}/{crd.VERSION}/namespaces/{namespace}/{crd.PLURAL}"
    stored: dict[int, dict] = {}

    async def create(i: int) -> None:
        body = copy.deepcopy(template)
        body["metadata"] = {"name": f"x{i}", "labels": template["metadata"]["labels"]}
        stored[i] = await http.request("POST", path, body)

    _, cpu = await timed_pass(create, args.objects, CLIENTS, pids)
    row = {"create_ms": 1000 * sum(cpu.values()) / args.objects}
    spent = 0.0
    for nodes in (1, 3, 5):

        async def update(i: int, nodes: int = nodes) -> None:
            body = stored[i]
            body["status"] = _status(f"x{i}", nodes)
            stored[i] = await http.request("PUT", f"{path}/x{i}", body)

        _, cpu = await timed_pass(update, args.objects, CLIENTS, pids)
        spent += sum(cpu.values())
    row["update_ms"] = 1000 * spent / (3 * args.objects)
    row["bytes"] = len(json.dumps(stored[0], separators=(",", ":")))
    return row


async def _main(args) -> list[list[str]]:
    pids = {"kube-apiserver": args.apiserver_pid, "etcd": args.etcd_pid}
    api = kube.api_client(args.kubeconfig)
    http = kube.KubeHttp(api, max_connections=CLIENTS)
    shapes, crds = _shapes(), _crds()
    rows = []
    namespaces: list[str] = []  # deleted at the end: a deletion meanwhile would load the rounds
    try:
        for round_ in range(1, args.rounds + 1):
            for crd_name, manifest in crds.items():
                _install(api, manifest)
                for shape, template in shapes.items():
                    say(f"round {round_}: {shape} object, {crd_name} CRD")
                    namespaces.append(f"fw-writes-{uuid.uuid4().hex[:6]}")
                    kube.ensure_namespace(api, namespaces[-1])
                    row = await _pair(http, namespaces[-1], template, args, pids)
                    rows.append(
                        [
                            str(round_),
                            shape,
                            crd_name,
                            f"{row['bytes']:,}",
                            f"{row['create_ms']:.2f}",
                            f"{row['update_ms']:.2f}",
                        ]
                    )
    finally:
        _install(api, crds["atomic"])
        for namespace in namespaces:
            await http.request("DELETE", f"/api/v1/namespaces/{namespace}")
        await http.close()
        api.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.flyteworkflow_writes", description=__doc__)
    add_apiserver_arguments(parser)
    parser.add_argument("--objects", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    rows = asyncio.run(_main(args))
    headers = ["round", "object", "CRD", "stored bytes", "ms/create", "ms/status update"]
    print_table(headers, rows)


if __name__ == "__main__":
    run_main(main)
