"""RegisterProject, CreateTask and GetProject against a running server, and the CPU every
process spent.

Sends ``--count`` RegisterProject calls (unique ids), ``--count`` CreateTask calls (the
anchor's task, unique versions of one name) and ``--count`` GetProject calls (one project, so a
read with no write behind it: the per-call cost of the gRPC door); ``--only described`` sends
CreateTask calls whose spec carries a description, as flytekit sends for a task with a
docstring (the anchor's carry none). Each phase runs from ``--clients`` (16)
clients over as many channels, as ../shared/anchor/bench_admin.py does, and prints the rate and
the CPU per call of kube-apiserver, etcd, the API-server workers and the dev process (operator
and supervisor), read from /proc over each phase only (bench.event_waves has the grouping).
Prints figures; asserts nothing.

    .venv/bin/python -m bench.registration_waves [--endpoint 127.0.0.1:38089] [--count 2000]
        [--only projects|tasks|described|gets] [--clients 16]

Against the anchor's stack (``ANCHOR_RUN=/tmp/ar ../shared/anchor/project_start.sh``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import grpc
from flyteidl.admin import description_entity_pb2, project_pb2
from flyteidl.service import admin_pb2_grpc

from bench.event_waves import ANCHOR, CLIENTS, cpu_by_group

# What flytekit sends for a task function with a docstring (its short and long parts).
DESCRIPTION = description_entity_pb2.DescriptionEntity(
    short_description="Double a number.",
    long_description=description_entity_pb2.Description(
        value="Takes x and returns 2x.\n\nUsed by the benchmark's workflow."
    ),
)

Call = Callable[[admin_pb2_grpc.AdminServiceStub, int], Awaitable[object]]


async def count_phase(name: str, stubs: list, count: int, call: Call) -> None:
    """``count`` calls from one client per stub."""
    numbers = itertools.count()
    errors: list[str] = []

    async def client(i: int) -> None:
        for n in numbers:
            if n >= count:
                return
            try:
                await call(stubs[i], n)
            except grpc.aio.AioRpcError as exc:
                errors.append(f"{exc.code().name}: {exc.details()}")

    before, started = cpu_by_group(), time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(len(stubs))))
    seconds = time.perf_counter() - started
    spent = {g: s - before.get(g, 0.0) for g, s in cpu_by_group().items()}
    per_call = ", ".join(f"{g} {1000 * s / count:.2f}" for g, s in sorted(spent.items()))
    print(
        f"{name}: {count / seconds:.0f}/s, {len(errors)} errors; CPU ms per call: {per_call}, "
        f"all {1000 * sum(spent.values()) / count:.2f}",
        flush=True,
    )
    if errors:
        print(f"  first error: {errors[0]}")


async def run(endpoint: str, count: int, only: str, clients: int = CLIENTS) -> None:
    sys.path.insert(0, str(ANCHOR))
    import bench_admin as anchor  # noqa: PLC0415 - the anchor's own request shapes

    options = anchor.CHANNEL_OPTIONS  # one connection per channel
    channels = [grpc.aio.insecure_channel(endpoint, options=options) for _ in range(clients)]
    stubs = [admin_pb2_grpc.AdminServiceStub(c) for c in channels]
    run_id = uuid.uuid4().hex[:6]
    project = f"rw{run_id}"
    await stubs[0].RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=project, name=project))
    )

    def register(stub: admin_pb2_grpc.AdminServiceStub, n: int) -> Awaitable[object]:
        pid = f"r{run_id}-{n:06d}"
        project = project_pb2.Project(id=pid, name=pid)
        return stub.RegisterProject(project_pb2.ProjectRegisterRequest(project=project), timeout=60)

    def create_task(stub: admin_pb2_grpc.AdminServiceStub, n: int) -> Awaitable[object]:
        request = anchor.task_request(project, anchor.TASK_NAME, f"v{n:06d}")
        return stub.CreateTask(request, timeout=60)

    def create_described(stub: admin_pb2_grpc.AdminServiceStub, n: int) -> Awaitable[object]:
        request = anchor.task_request(project, f"{anchor.TASK_NAME}.described", f"v{n:06d}")
        request.spec.description.CopyFrom(DESCRIPTION)
        return stub.CreateTask(request, timeout=60)

    def get_project(stub: admin_pb2_grpc.AdminServiceStub, n: int) -> Awaitable[object]:
        return stub.GetProject(project_pb2.ProjectGetRequest(id=project), timeout=60)

    if only in ("", "projects"):
        await count_phase("RegisterProject", stubs, count, register)
    if only in ("", "tasks"):
        await count_phase("CreateTask", stubs, count, create_task)
    if only == "described":
        await count_phase("CreateTask with a description", stubs, count, create_described)
    if only in ("", "gets"):
        await count_phase("GetProject", stubs, count, get_project)
    for channel in channels:
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="127.0.0.1:38089")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--only", choices=("projects", "tasks", "described", "gets"), default="")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    args = parser.parse_args()
    asyncio.run(run(args.endpoint, args.count, args.only, args.clients))


if __name__ == "__main__":
    main()
