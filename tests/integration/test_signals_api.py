"""Gate-node signals: created by propeller (GetOrCreateSignal), listed, set once with a value of
the declared type."""

from __future__ import annotations

import grpc
import pytest
from flyteidl.admin import execution_pb2, project_pb2, signal_pb2
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2
from flyteidl.service import admin_pb2_grpc, signal_pb2_grpc

from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    chain_workflow,
    ident,
    launch_plan_request,
    task_request,
)

BOOL = types_pb2.LiteralType(simple=types_pb2.BOOLEAN)


def boolean(value: bool) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=value))
    )


@pytest.fixture
def stubs(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="f"))
        )
        admin.CreateTask(task_request("t"))
        admin.CreateWorkflow(chain_workflow("wf", "t"))
        admin.CreateLaunchPlan(launch_plan_request("lp", "wf", x=1))
        admin.CreateExecution(
            execution_pb2.ExecutionCreateRequest(
                project=PROJECT, domain=DOMAIN, name="run",
                spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "lp")),
            )
        )  # fmt: skip
        yield admin, signal_pb2_grpc.SignalServiceStub(channel)


def signal_id(name: str, execution: str = "run") -> identifier_pb2.SignalIdentifier:
    return identifier_pb2.SignalIdentifier(
        signal_id=name,
        execution_id=identifier_pb2.WorkflowExecutionIdentifier(
            project=PROJECT, domain=DOMAIN, name=execution
        ),
    )


def test_signals_are_created_listed_and_set_once(stubs):
    _, signals = stubs
    created = signals.GetOrCreateSignal(
        signal_pb2.SignalGetOrCreateRequest(id=signal_id("approve"), type=BOOL)
    )
    assert created.type == BOOL and not created.HasField("value")
    again = signals.GetOrCreateSignal(
        signal_pb2.SignalGetOrCreateRequest(id=signal_id("approve"), type=BOOL)
    )
    assert again == created
    signals.GetOrCreateSignal(signal_pb2.SignalGetOrCreateRequest(id=signal_id("other"), type=BOOL))
    listed = signals.ListSignals(
        signal_pb2.SignalListRequest(
            workflow_execution_id=signal_id("x").execution_id, limit=10,
            filters="eq(signal_id,approve)",
        )
    )  # fmt: skip
    assert [s.id.signal_id for s in listed.signals] == ["approve"]

    with pytest.raises(grpc.RpcError) as info:
        signals.SetSignal(
            signal_pb2.SignalSetRequest(
                id=signal_id("approve"),
                value=literals_pb2.Literal(
                    scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=1))
                ),
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not castable" in info.value.details()
    signals.SetSignal(signal_pb2.SignalSetRequest(id=signal_id("approve"), value=boolean(True)))
    got = signals.GetOrCreateSignal(
        signal_pb2.SignalGetOrCreateRequest(id=signal_id("approve"), type=BOOL)
    )
    assert got.value == boolean(True)
    with pytest.raises(grpc.RpcError) as info:
        signals.SetSignal(
            signal_pb2.SignalSetRequest(id=signal_id("approve"), value=boolean(False))
        )
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS


BAD = [
    (
        "SetSignal",
        signal_pb2.SignalSetRequest(id=signal_id("nope"), value=boolean(True)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "failed to validate that signal",
    ),
    (
        "SetSignal",
        signal_pb2.SignalSetRequest(id=signal_id("approve")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "missing value",
    ),
    (
        "GetOrCreateSignal",
        signal_pb2.SignalGetOrCreateRequest(id=signal_id("s")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "missing type",
    ),
    (
        "GetOrCreateSignal",
        signal_pb2.SignalGetOrCreateRequest(id=signal_id("s", "none"), type=BOOL),
        grpc.StatusCode.NOT_FOUND,
        "missing entity",
    ),
    (
        "ListSignals",
        signal_pb2.SignalListRequest(workflow_execution_id=signal_id("s").execution_id),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid value for limit",
    ),
    (
        "GetOrCreateSignal",
        signal_pb2.SignalGetOrCreateRequest(
            id=signal_id("s"),
            type=types_pb2.LiteralType(blob=types_pb2.BlobType(dimensionality=99)),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid value for type.blob.dimensionality: 99 is not a value of "
        "flyteidl.core.BlobType.BlobDimensionality",
    ),
    (
        "GetOrCreateSignal",
        signal_pb2.SignalGetOrCreateRequest(id=signal_id("s"), type=types_pb2.LiteralType()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid value for type: no literal type is set",
    ),
]


@pytest.mark.parametrize("method, request_, code, message", BAD)
def test_bad_signal_requests(stubs, method, request_, code, message):
    _, signals = stubs
    with pytest.raises(grpc.RpcError) as info:
        getattr(signals, method)(request_)
    assert info.value.code() == code and message in info.value.details(), info.value.details()
    listed = signals.ListSignals(
        signal_pb2.SignalListRequest(workflow_execution_id=signal_id("s").execution_id, limit=100)
    )
    assert "s" not in [s.id.signal_id for s in listed.signals]  # a refusal creates nothing
