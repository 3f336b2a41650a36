"""ListExecutions' joins (§1.4): filters on the launch plan, workflow and task an execution was
created from, and on its tags (labels and deprecated ``spec.tags``)."""

from __future__ import annotations

import grpc
import pytest
from flyteidl.admin import common_pb2, execution_pb2, project_pb2
from flyteidl.admin import common_pb2 as admin_common
from flyteidl.core import literals_pb2
from flyteidl.service import admin_pb2_grpc

from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    chain_workflow,
    ident,
    launch_plan_request,
    task_request,
)


def integer(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


@pytest.fixture
def stub(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="f"))
        )
        admin.CreateTask(task_request("t"))
        admin.CreateTask(task_request("u"))
        admin.CreateWorkflow(chain_workflow("wf", "t"))
        admin.CreateWorkflow(chain_workflow("other", "u"))
        admin.CreateLaunchPlan(launch_plan_request("lp", "wf", x=5))
        admin.CreateLaunchPlan(launch_plan_request("lp2", "other", x=5))
        create(admin, "by-lp", labels={"team": "ml", "tier": "gold"})
        create(admin, "by-lp2", ref=ident(RT.LAUNCH_PLAN, "lp2"), labels={"team": "infra"})
        create(admin, "by-task", ref=ident(RT.TASK, "t"), tags=["legacy"], x=integer(1))
        yield admin


def create(stub, name, ref=None, labels=None, tags=(), **inputs):
    spec = execution_pb2.ExecutionSpec(
        launch_plan=ref or ident(RT.LAUNCH_PLAN, "lp"),
        labels=admin_common.Labels(values=labels or {}),
        tags=list(tags),
    )
    return stub.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            name=name,
            spec=spec,
            inputs=literals_pb2.LiteralMap(literals=inputs),
        )
    ).id


def names(stub, filters: str) -> list[str]:
    listed = stub.ListExecutions(
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
            limit=10,
            filters=filters,
            sort_by=common_pb2.Sort(key="execution_name", direction=common_pb2.Sort.ASCENDING),
        )
    )
    return [e.id.name for e in listed.executions]


@pytest.mark.parametrize(
    "filters, expected",
    [
        ("eq(launch_plan.name,lp)", ["by-lp"]),
        ("eq(launch_plan.name,lp2)+eq(launch_plan.version,v1)", ["by-lp2"]),
        ("value_in(launch_plan.name,lp;lp2)", ["by-lp", "by-lp2"]),
        ("eq(launch_plan.name,.flytegen.t)", ["by-task"]),
        ("eq(workflow.name,other)", ["by-lp2"]),
        ("contains(workflow.name,flytegen)", ["by-task"]),
        ("eq(task.name,t)", ["by-task"]),
        ("eq(task.type,python-task)", ["by-task"]),
        ("eq(task.name,u)", []),
        ("eq(admin_tag.name,team)", ["by-lp", "by-lp2"]),
        ("eq(admin_tag.name,team)+eq(admin_tag.value,ml)", ["by-lp"]),
        ("eq(execution_tag.key,tier)", ["by-lp"]),
        ("eq(execution_tag.value,infra)", ["by-lp2"]),
        ("eq(admin_tag.name,legacy)", ["by-task"]),
        ("eq(workflow.name,wf)+eq(execution.phase,UNDEFINED)", ["by-lp"]),
    ],
)
def test_joined_filters(stub, filters, expected):
    assert names(stub, filters) == expected


@pytest.mark.parametrize(
    "filters, message",
    [
        ("eq(signal.signal_id,x)", "'signal' entity is not allowed in filters"),
        ("eq(node_execution.phase,x)", "'node_execution' entity is not allowed in filters"),
        ("eq(launch_plan.nope,x)", "'launch_plan.nope' is invalid filter"),
        ("eq(admin_tag.colour,x)", "'admin_tag.colour' is invalid filter"),
        ("eq(task.created_at,yesterday)", "invalid value 'yesterday'"),
    ],
)
def test_bad_joined_filters(stub, filters, message):
    with pytest.raises(grpc.RpcError) as info:
        names(stub, filters)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()


def test_a_listed_execution_is_its_current_version(stub):
    """List items are kept serialized per stored version (core/wire.py): a change makes a new
    version, and the next list answers it, not the bytes kept for the one before."""

    def listed(state: int) -> execution_pb2.Execution:
        (only,) = stub.ListExecutions(
            common_pb2.ResourceListRequest(
                id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
                limit=10,
                filters=f"eq(execution_name,by-lp)+eq(state,{state})",
            )
        ).executions
        assert not only.spec.HasField("inputs")  # the listed form, trimmed (§5.7)
        return only

    before = listed(0)
    assert before.closure.state_change_details.state == execution_pb2.EXECUTION_ACTIVE
    stub.UpdateExecution(
        execution_pb2.ExecutionUpdateRequest(id=before.id, state=execution_pb2.EXECUTION_ARCHIVED)
    )
    after = listed(1)
    assert after.closure.state_change_details.state == execution_pb2.EXECUTION_ARCHIVED
    assert after.id == before.id
    assert "by-lp" not in names(stub, "")  # archived executions are hidden by default
