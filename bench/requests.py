"""Request builders and gRPC plumbing shared by the registration and execution benchmarks:
identifiers, a minimal python task, a chain workflow, one admin stub per client connection and
ops that call one RPC with a fixed request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from flyteidl.admin import task_pb2, workflow_pb2
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2, tasks_pb2, types_pb2
from flyteidl.core import workflow_pb2 as core_wf
from flyteidl.service import admin_pb2_grpc

PROJECT = "flytesnacks"
RPC_TIMEOUT = 60.0
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per client
RT = identifier_pb2.ResourceType
INT = types_pb2.LiteralType(simple=types_pb2.INTEGER)
Stubs = list[admin_pb2_grpc.AdminServiceStub]
"""One admin stub per client (per connection)."""


def ident(kind: int, domain: str, name: str, version: str) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=kind, project=PROJECT, domain=domain, name=name, version=version
    )


def _int_interface() -> interface_pb2.TypedInterface:
    return interface_pb2.TypedInterface(
        inputs=interface_pb2.VariableMap(variables={"x": interface_pb2.Variable(type=INT)}),
        outputs=interface_pb2.VariableMap(variables={"o0": interface_pb2.Variable(type=INT)}),
    )


def task_request(domain: str, name: str, version: str) -> task_pb2.TaskCreateRequest:
    """A minimal python task ``x: int -> o0: int``, as flytekit would register it."""
    task_id = ident(RT.TASK, domain, name, version)
    template = tasks_pb2.TaskTemplate(
        id=task_id,
        type="python-task",
        metadata=tasks_pb2.TaskMetadata(runtime=tasks_pb2.RuntimeMetadata(version="1.16")),
        interface=_int_interface(),
        container=tasks_pb2.Container(
            image="ghcr.io/flyteorg/flytekit:py3.11-1.16.0",
            args=[
                "pyflyte-execute",
                "--inputs",
                "{{.input}}",
                "--output-prefix",
                "{{.outputPrefix}}",
            ],
        ),
    )
    return task_pb2.TaskCreateRequest(id=task_id, spec=task_pb2.TaskSpec(template=template))


def _promise(node: str, var: str) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(promise=types_pb2.OutputReference(node_id=node, var=var))


def chain_workflow(
    domain: str, name: str, version: str, task: identifier_pb2.Identifier, nodes: int, pad: str = ""
) -> workflow_pb2.WorkflowCreateRequest:
    """``x -> n0 -> n1 -> ... -> o0``, every node running ``task``; ``pad`` goes into each
    node's metadata name to make the compiled closure big."""
    wf_nodes = [
        core_wf.Node(
            id=f"n{i}",
            metadata=core_wf.NodeMetadata(name=f"step {i} {pad}".rstrip()),
            inputs=[
                literals_pb2.Binding(
                    var="x", binding=_promise("", "x") if i == 0 else _promise(f"n{i - 1}", "o0")
                )
            ],
            upstream_node_ids=[f"n{i - 1}"] if i else [],
            task_node=core_wf.TaskNode(reference_id=task),
        )
        for i in range(nodes)
    ]
    wf_id = ident(RT.WORKFLOW, domain, name, version)
    template = core_wf.WorkflowTemplate(
        id=wf_id,
        interface=_int_interface(),
        nodes=wf_nodes,
        outputs=[literals_pb2.Binding(var="o0", binding=_promise(f"n{nodes - 1}", "o0"))],
    )
    return workflow_pb2.WorkflowCreateRequest(
        id=wf_id, spec=workflow_pb2.WorkflowSpec(template=template)
    )


@contextlib.asynccontextmanager
async def admin_stubs(target: str, count: int) -> AsyncIterator[Stubs]:
    channels = [grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) for _ in range(count)]
    try:
        await asyncio.gather(*(c.channel_ready() for c in channels))
        yield [admin_pb2_grpc.AdminServiceStub(c) for c in channels]
    finally:
        await asyncio.gather(*(c.close() for c in channels))


def caller(
    stubs: Stubs, rpc: str, request: object, timeout: float
) -> Callable[[int], Awaitable[None]]:
    """``op(i)``: client ``i`` calls ``rpc`` with ``request``."""

    async def op(i: int) -> None:
        await getattr(stubs[i], rpc)(request, timeout=timeout)

    return op
