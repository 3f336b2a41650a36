"""ListNodeExecutions of one execution with many finished nodes, against a running server, and
the CPU every process spent.

Creates a project, the anchor's task and one single-task execution, records ``--nodes``
(100) nodes of it RUNNING then SUCCEEDED as propeller would, waits for the event journal to
fold them, then sends ``--count`` ListNodeExecutions (limit 100) from 16 clients over 16
channels and prints the rate and the CPU per call of each process group
(bench.registration_waves' phase). Prints figures; asserts nothing.

    .venv/bin/python -m bench.detail_lists [--endpoint 127.0.0.1:38089] [--count 20000]
        [--nodes 100]

Against the anchor's stack (``ANCHOR_RUN=/tmp/ar ../shared/anchor/project_start.sh``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable

import grpc
from flyteidl.admin import event_pb2, node_execution_pb2, project_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from flyteidl.event import event_pb2 as ev
from flyteidl.service import admin_pb2_grpc
from google.protobuf import timestamp_pb2

from bench.event_waves import ANCHOR, CLIENTS
from bench.registration_waves import count_phase

NODE = core_execution.NodeExecution.Phase
FOLD_WAIT_SECONDS = 5.0  # the journal folds finished nodes at once; running ones after 2 s


def _at(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int((1_700_000_000 + seconds) * 1e9))
    return stamp


async def run(endpoint: str, count: int, nodes: int) -> None:
    sys.path.insert(0, str(ANCHOR))
    import bench_admin as anchor  # noqa: PLC0415 - the anchor's own request shapes

    options = anchor.CHANNEL_OPTIONS  # one connection per channel
    channels = [grpc.aio.insecure_channel(endpoint, options=options) for _ in range(CLIENTS)]
    stubs = [admin_pb2_grpc.AdminServiceStub(c) for c in channels]
    first = stubs[0]
    project = f"dl{uuid.uuid4().hex[:6]}"
    await first.RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=project, name=project))
    )
    await first.CreateTask(anchor.task_request(project, anchor.TASK_NAME, "v1"))
    execution = (await first.CreateExecution(anchor.exec_request(project, "e0", "v1"))).id
    workflow = ev.WorkflowExecutionEvent(
        execution_id=execution,
        phase=core_execution.WorkflowExecution.RUNNING,
        occurred_at=_at(1),
        producer_id="propeller",
    )
    await first.CreateWorkflowEvent(
        event_pb2.WorkflowExecutionEventRequest(request_id="w", event=workflow)
    )
    for i in range(nodes):
        ident = identifier_pb2.NodeExecutionIdentifier(node_id=f"n{i}", execution_id=execution)
        for phase, at in ((NODE.RUNNING, 2 + i), (NODE.SUCCEEDED, 3 + i)):
            event = ev.NodeExecutionEvent(
                id=ident,
                phase=phase,
                occurred_at=_at(at),
                producer_id="propeller",
                input_uri="gs://bench/inputs.pb",
            )
            await first.CreateNodeEvent(
                event_pb2.NodeExecutionEventRequest(request_id=f"{i}-{phase}", event=event)
            )
    await asyncio.sleep(FOLD_WAIT_SECONDS)
    request = node_execution_pb2.NodeExecutionListRequest(
        workflow_execution_id=execution, limit=100
    )

    def list_nodes(stub: admin_pb2_grpc.AdminServiceStub, n: int) -> Awaitable[object]:
        return stub.ListNodeExecutions(request, timeout=60)

    await count_phase(f"ListNodeExecutions ({nodes} nodes, limit 100)", stubs, count, list_nodes)
    for channel in channels:
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1:38089")
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.endpoint, args.count, args.nodes))


if __name__ == "__main__":
    main()
