"""Playing the kubelet for stock flytepropeller where nothing runs Pods: the task Pods of an
execution, and completing one as the task would (read x, write o0 = x + 1, report Succeeded)."""

from __future__ import annotations

import asyncio
import time

from flyteidl.core import literals_pb2
from kubernetes import client

from flyteadmin.core.blobstore import GcsBlobStore

# flytekit's own entrypoint arguments, so the Pod says where inputs and outputs live.
ARGS = ["pyflyte-execute", "--inputs", "{{.input}}", "--output-prefix", "{{.outputPrefix}}"]


def task_pods(kube_api, namespace: str, execution: str) -> list[client.V1Pod]:
    pods = client.CoreV1Api(kube_api).list_namespaced_pod(
        namespace, label_selector=f"execution-id={execution}"
    )
    return pods.items


def arg_after(pod: client.V1Pod, flag: str) -> str:
    args = pod.spec.containers[0].args
    return args[args.index(flag) + 1]


def int_literal_map(name: str, value: int) -> literals_pb2.LiteralMap:
    primitive = literals_pb2.Primitive(integer=value)
    literal = literals_pb2.Literal(scalar=literals_pb2.Scalar(primitive=primitive))
    return literals_pb2.LiteralMap(literals={name: literal})


def complete_pod(kube_api, blobs: GcsBlobStore, pod: client.V1Pod) -> int:
    """The kubelet's and the task's part: read x, write o0 = x + 1, report Succeeded."""
    out_uri = arg_after(pod, "--output-prefix").rstrip("/") + "/outputs.pb"

    async def task() -> int:
        # A store of its own on this short-lived loop, closed with it (its HTTP session
        # belongs to the loop; the stack's store is used on the stack's loops).
        store = GcsBlobStore(blobs.settings)
        try:
            inputs = literals_pb2.LiteralMap()
            inputs.ParseFromString(await store.get(arg_after(pod, "--inputs")))
            x = inputs.literals["x"].scalar.primitive.integer
            await store.put(out_uri, int_literal_map("o0", x + 1).SerializeToString())
            return x
        finally:
            await store.close()

    x = asyncio.run(task())
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    container = pod.spec.containers[0].name
    status = {
        "phase": "Succeeded",
        "startTime": now,
        "containerStatuses": [
            {
                "name": container,
                "image": pod.spec.containers[0].image,
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": now,
                        "finishedAt": now,
                    }
                },
            }
        ],
    }
    client.CoreV1Api(kube_api).patch_namespaced_pod_status(
        pod.metadata.name, pod.metadata.namespace, {"status": status}
    )
    return x
