"""Error translation of both doors, without a cluster: a registry of fake handlers."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import grpc
import pytest
from flyteidl.admin import project_pb2, workflow_pb2
from flyteidl.service import admin_pb2_grpc
from grpc_status import rpc_status

from flyteadmin.api_server.gateway import build_http_app
from flyteadmin.api_server.grpc_server import build_grpc_server, mark_serving
from flyteadmin.api_server.services import complete
from flyteadmin.core.errors import AdminError, Code
from tests.integration.servers import LoopThread
from tests.local_http import serve_locally

ADMIN = "/flyteidl.service.AdminService/"


async def crash(request, ctx):
    raise RuntimeError("a bug")


async def echo(request, ctx):
    """An error quoting the whole input, as messages did before issue 12."""
    raise AdminError(
        Code.NOT_FOUND, f"project [{request.id}] not found", [project_pb2.Project(id=request.id)]
    )


async def conflict(request, ctx):
    raise AdminError(
        Code.INVALID_ARGUMENT,
        "workflow with different structure already exists",
        [workflow_pb2.CreateWorkflowFailureReason()],
    )


@pytest.fixture(scope="module")
def servers():

    registry = complete(
        {
            ADMIN + "GetProject": crash,
            ADMIN + "RegisterProject": conflict,
            ADMIN + "UpdateProject": echo,
        }
    )
    loop = LoopThread()

    async def start():
        server, port = build_grpc_server(registry, address="127.0.0.1:0")
        await server.start()
        await mark_serving(server)
        runner, http_port = await serve_locally(build_http_app(registry))
        return server, port, runner, http_port

    server, port, runner, http_port = loop.call(start())
    yield port, http_port
    loop.call(runner.cleanup())
    loop.call(server.stop(0))
    loop.close()


def test_an_unexpected_exception_is_internal_never_unknown(servers):
    port, http_port = servers
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.RpcError) as info:
            admin_pb2_grpc.AdminServiceStub(channel).GetProject(
                project_pb2.ProjectGetRequest(id="x")
            )
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "a bug" not in info.value.details()  # internals are logged, not sent
    with pytest.raises(urllib.error.HTTPError) as http_info:
        urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/v1/projects/x", timeout=5)
    assert http_info.value.code == 500
    assert json.loads(http_info.value.read())["code"] == Code.INTERNAL


def test_admin_errors_keep_code_message_and_details(servers):
    port, _ = servers
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.RpcError) as info:
            admin_pb2_grpc.AdminServiceStub(channel).RegisterProject(
                project_pb2.ProjectRegisterRequest()
            )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(info.value)
    assert status.message == "workflow with different structure already exists"
    assert status.details[0].Is(workflow_pb2.CreateWorkflowFailureReason.DESCRIPTOR)


@pytest.mark.parametrize(
    "data",
    [b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x0a\x02\xff\xfe", b"\x0a\x7f\x61"],
    ids=["garbage", "invalid-utf8", "truncated"],
)
def test_request_bytes_that_do_not_decode_are_invalid_argument(servers, data):
    port, _ = servers
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            ADMIN + "GetProject", request_serializer=lambda b: b, response_deserializer=bytes
        )
        with pytest.raises(grpc.RpcError) as info:
            call(data, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("cannot decode the request: ")


@pytest.mark.parametrize("text", ["x" * 30_000, "é" * 15_000])
def test_a_status_always_fits_a_default_clients_metadata_limit(servers, text):
    # The handler echoes 30 KB of input twice (message and details); the client must still
    # read NOT_FOUND, not RESOURCE_EXHAUSTED for oversized trailers.
    port, _ = servers
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.RpcError) as info:
            admin_pb2_grpc.AdminServiceStub(channel).UpdateProject(project_pb2.Project(id=text))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details().startswith("project [" + text[:100])
    assert info.value.details().endswith(" ... (shortened)")
    trailers = sum(len(k) + len(v) for k, v in info.value.trailing_metadata())
    assert trailers + len(info.value.details().encode()) < 8 * 1024


def test_long_messages_are_truncated_and_drop_details():
    error = AdminError(Code.INVALID_ARGUMENT, "x" * 40_000, [project_pb2.Project()])
    assert len(error.message.encode()) == 32_000 and error.details == ()


def test_loop_helper_runs_coroutines():
    loop = LoopThread()
    try:
        assert loop.call(asyncio.sleep(0, result=7)) == 7
    finally:
        loop.close()
