"""What one write costs kube-apiserver, by object shape: the raw create/update rate of the
product's objects straight to kube-apiserver, with its CPU (and etcd's) per write.

    .venv/bin/python -m bench.apiserver_writes [--objects 1000] [--updates 3]
        [--clients 16] [--shapes json,json-nomf,binary,binary-nomf,batch25]

Shapes (one custom resource kind each, all in one run so the machine's noise hits them alike):

- ``json``: a NodeExecution as the product stored it before (proto JSON under
  ``x-kubernetes-preserve-unknown-fields``), managedFields kept.
- ``json-nomf``: the same body, with ``metadata.managedFields: [{}]`` on every write, which makes
  kube-apiserver drop the field-manager bookkeeping from the stored object.
- ``binary``: the same record as typed columns plus one base64 string of protobuf binary.
- ``binary-nomf``: ``binary`` without managedFields.
- ``batch<N>`` (e.g. ``batch25``): what a journal of events would write: one object per ``N``
  records (the ``binary`` record of ``N`` different nodes, as a list), created once and deleted
  once, no managedFields. Its figures are per record, so they compare with a write per record;
  ``--shapes batch1,batch8,batch25,batch100`` shows how the cost of a write grows with its size.

Each shape: ``--objects`` creates, then ``--updates`` rounds of updates of every object (an event
changes phase and times), at ``--clients`` concurrent requests. Printed per shape: writes/s, the
cores kube-apiserver and etcd used, their CPU milliseconds per write, and the stored JSON size.
Not a test: figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time

from flyteidl.admin import node_execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from google.protobuf import json_format, timestamp_pb2

from bench.common import print_table, run_main, say, timed_pass
from flyteadmin.core import kube

GROUP = "bench.flyteadmin.io"
NAMESPACE = "bench-writes"
SHAPES = ("json", "json-nomf", "binary", "binary-nomf")


def _crd(plural: str, kind: str, spec: dict, status: dict | None) -> dict:
    properties = {"spec": spec}
    if status is not None:
        properties["status"] = status
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}},
                }
            ],
        },
    }


_PROTO = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_STR = {"type": "string"}
JSON_CRD = _crd(
    "jsonnodes",
    "JsonNode",
    {
        "type": "object",
        "properties": {
            "executionId": {
                "type": "object",
                "properties": {k: _STR for k in ("project", "domain", "name")},
            },
            "nodeId": _STR,
            "inputUri": _STR,
            "metadata": _PROTO,
        },
    },
    {
        "type": "object",
        "properties": {
            "phase": _STR,
            "startedAt": _STR,
            "updatedAt": _STR,
            "duration": _STR,
            "closure": _PROTO,
        },
    },
)
BATCH_CRD = _crd(
    "batchnodes",
    "BatchNode",
    {
        "type": "object",
        "properties": {"records": {"type": "array", "items": {"type": "string", "format": "byte"}}},
    },
    None,
)
BINARY_CRD = _crd(
    "binarynodes",
    "BinaryNode",
    {
        "type": "object",
        "properties": {
            "execution": _STR,
            "nodeId": _STR,
            "phase": _STR,
            "updatedAt": _STR,
            "record": {"type": "string", "format": "byte"},
        },
    },
    None,
)


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromNanoseconds(int(seconds * 1e9))
    return t


def node_message(i: int, phase: int) -> node_execution_pb2.NodeExecution:
    """A propeller-shaped task node after ``phase`` (what the product stores per node)."""
    ex = identifier_pb2.WorkflowExecutionIdentifier(
        project="flytesnacks", domain="development", name=f"a{i:019d}"
    )
    node = node_execution_pb2.NodeExecution(
        id=identifier_pb2.NodeExecutionIdentifier(execution_id=ex, node_id="n0"),
        input_uri=f"gs://flyte/metadata/propeller/flytesnacks-development-{ex.name}/n0/data/inputs.pb",
    )
    now = time.time()
    closure = node.closure
    closure.phase = phase
    closure.created_at.CopyFrom(_stamp(now - 5))
    closure.updated_at.CopyFrom(_stamp(now))
    closure.started_at.CopyFrom(_stamp(now - 4))
    closure.output_uri = f"gs://flyte/metadata/propeller/{ex.name}/n0/data/0/outputs.pb"
    closure.task_node_metadata.cache_status = 1
    closure.task_node_metadata.catalog_key.dataset_id.CopyFrom(
        identifier_pb2.Identifier(
            resource_type=identifier_pb2.DATASET,
            project="flytesnacks",
            domain="development",
            name="flyte_task-workflows.example.say_hello",
            version="1.0.0-abcdef",
        )
    )
    node.metadata.retry_group = "0"
    node.metadata.spec_node_id = "n0"
    return node


def json_body(i: int, phase: int) -> dict:
    node = node_message(i, phase)
    ex = node.id.execution_id
    closure = json_format.MessageToDict(node.closure, preserving_proto_field_name=True)
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "JsonNode",
        "metadata": {
            "name": f"n-{i}",
            "labels": {
                "flyteadmin.io/project": ex.project,
                "flyteadmin.io/domain": ex.domain,
                "flyteadmin.io/execution": ex.name,
                "app.kubernetes.io/managed-by": "flyteadmin",
            },
        },
        "spec": {
            "executionId": {"project": ex.project, "domain": ex.domain, "name": ex.name},
            "nodeId": node.id.node_id,
            "inputUri": node.input_uri,
            "metadata": json_format.MessageToDict(node.metadata, preserving_proto_field_name=True),
        },
        "status": {
            "phase": core_execution.NodeExecution.Phase.Name(phase),
            "startedAt": closure.get("started_at", ""),
            "updatedAt": closure.get("updated_at", ""),
            "duration": "1.000s",
            "closure": closure,
        },
    }


def binary_body(i: int, phase: int) -> dict:
    node = node_message(i, phase)
    ex = node.id.execution_id
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "BinaryNode",
        "metadata": {
            "name": f"n-{i}",
            "labels": {
                "flyteadmin.io/execution": ex.name,
                "app.kubernetes.io/managed-by": "flyteadmin",
            },
        },
        "spec": {
            "execution": f"{ex.project}/{ex.domain}/{ex.name}",
            "nodeId": node.id.node_id,
            "phase": core_execution.NodeExecution.Phase.Name(phase),
            "updatedAt": node.closure.updated_at.ToJsonString(),
            "record": base64.b64encode(node.SerializeToString()).decode(),
        },
    }


async def _run_batch(http: kube.KubeHttp, shape: str, args, pids: dict[str, int]) -> list[str]:
    """``args.objects`` records in objects of ``batch<N>`` records each: creates, then deletes;
    CPU per record."""
    per = int(shape.removeprefix("batch"))
    path = f"/apis/{GROUP}/v1/namespaces/{NAMESPACE}/batchnodes"
    count = max(1, args.objects // per)
    sizes: list[int] = []

    async def create(j: int) -> None:
        running = core_execution.NodeExecution.RUNNING
        records = [binary_body(j * per + k, running) for k in range(per)]
        body = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "BatchNode",
            "metadata": {"name": f"b-{j}", "managedFields": [{}]},
            "spec": {"records": [r["spec"]["record"] for r in records]},
        }
        got = await http.request("POST", path, body)
        sizes.append(len(json.dumps(got, separators=(",", ":"))))

    async def delete(j: int) -> None:
        await http.request("DELETE", f"{path}/b-{j}")

    (c_wall, c_cpu) = await timed_pass(create, count, args.clients, pids)
    (d_wall, d_cpu) = await timed_pass(delete, count, args.clients, pids)
    records = count * per
    return [
        shape,
        f"{records / c_wall:.0f}",
        f"{1000 * c_cpu['kube-apiserver'] / records:.3f}",
        f"{1000 * c_cpu['etcd'] / records:.3f}",
        f"{records / d_wall:.0f}",
        f"{1000 * d_cpu['kube-apiserver'] / records:.3f}",
        f"{1000 * d_cpu['etcd'] / records:.3f}",
        f"{sum(sizes) / max(len(sizes), 1):.0f}",
    ]


async def _run_shape(http: kube.KubeHttp, shape: str, args, pids: dict[str, int]) -> list[str]:
    if shape.startswith("batch"):
        return await _run_batch(http, shape, args, pids)
    binary = shape.startswith("binary")
    plural = "binarynodes" if binary else "jsonnodes"
    path = f"/apis/{GROUP}/v1/namespaces/{NAMESPACE}/{plural}"
    body_for = binary_body if binary else json_body
    strip = shape.endswith("nomf")
    versions: dict[int, str] = {}
    sizes: list[int] = []
    phases = [
        core_execution.NodeExecution.QUEUED,
        core_execution.NodeExecution.RUNNING,
        core_execution.NodeExecution.SUCCEEDED,
        core_execution.NodeExecution.SUCCEEDED,
    ]

    async def write(i: int, round_: int) -> None:
        body = body_for(i, phases[min(round_, len(phases) - 1)])
        if strip:
            body["metadata"]["managedFields"] = [{}]
        if round_ == 0:
            got = await http.request("POST", path, body)
        else:
            body["metadata"]["resourceVersion"] = versions[i]
            got = await http.request("PUT", f"{path}/n-{i}", body)
        versions[i] = got["metadata"]["resourceVersion"]
        if round_ == args.updates:
            sizes.append(len(json.dumps(got, separators=(",", ":"))))

    rows = []
    for round_ in range(args.updates + 1):

        async def write_round(i: int, round_: int = round_) -> None:
            await write(i, round_)

        rows.append(await timed_pass(write_round, args.objects, args.clients, pids))
    creates, updates = rows[0], rows[1:]
    upd_wall = sum(w for w, _ in updates)
    upd_cpu = {k: sum(c[k] for _, c in updates) for k in pids}
    n_upd = args.objects * args.updates
    await http.request("DELETE", path)  # delete the collection: the next shape starts clean
    return [
        shape,
        f"{args.objects / creates[0]:.0f}",
        f"{1000 * creates[1]['kube-apiserver'] / args.objects:.2f}",
        f"{n_upd / upd_wall:.0f}" if n_upd else "-",
        f"{1000 * upd_cpu['kube-apiserver'] / n_upd:.2f}" if n_upd else "-",
        f"{1000 * upd_cpu['etcd'] / n_upd:.2f}" if n_upd else "-",
        f"{sum(sizes) / max(len(sizes), 1):.0f}",
    ]


async def _main(args, kubeconfig: str, pids: dict[str, int]) -> None:
    api = kube.api_client(kubeconfig)
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api)
    for crd in (JSON_CRD, BINARY_CRD, BATCH_CRD):
        try:
            ext.create_custom_resource_definition(crd)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    kube.ensure_namespace(api, NAMESPACE)
    time.sleep(2)  # CRDs established
    http = kube.KubeHttp(api, max_connections=args.clients)
    rows, batches = [], []
    for shape in args.shapes:
        say(f"shape {shape}")
        (batches if shape.startswith("batch") else rows).append(
            await _run_shape(http, shape, args, pids)
        )
    await http.close()
    api.close()
    if batches:
        headers = ["shape", "records/s in", "apiserver ms", "etcd ms", "records/s out"]
        headers += ["apiserver ms", "etcd ms", "stored bytes per object"]
        print_table(headers, batches)
        print("(per record: created in objects of N records, then deleted with them)\n")
    if not rows:
        return
    print_table(
        [
            "shape",
            "creates/s",
            "apiserver ms/create",
            "updates/s",
            "apiserver ms/update",
            "etcd ms/update",
            "stored bytes",
        ],
        rows,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.apiserver_writes", description=__doc__)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--shapes", type=lambda t: t.split(","), default=list(SHAPES))
    args = parser.parse_args(argv)
    from flyteadmin.devstack.controlplane import start_control_plane

    plane = start_control_plane(controller_manager=False, log=say)
    try:
        pids = {c.name: c.popen.pid for c in plane.processes.children}
        asyncio.run(_main(args, str(plane.kubeconfig), pids))
    finally:
        plane.stop()


if __name__ == "__main__":
    run_main(main)
