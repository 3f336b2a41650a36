"""Tasks, workflows, launch plans and description entities survive the custom-resource round
trip: written as base64 protobuf binary, and still read from the protobuf JSON that objects
written before hold."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from flyteidl.admin import description_entity_pb2, launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import compiler_pb2, identifier_pb2, interface_pb2, tasks_pb2, types_pb2
from flyteidl.core import workflow_pb2 as core_workflow
from google.protobuf import timestamp_pb2

from flyteadmin.core.crmap.protojson import from_b64, to_json
from flyteadmin.core.crmap.registered import (
    DescriptionCodec,
    LaunchPlanCodec,
    Registered,
    TaskCodec,
    WorkflowCodec,
)

RT = identifier_pb2.ResourceType
CREATED = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=123_456_000)
INTERFACE = interface_pb2.TypedInterface(
    inputs=interface_pb2.VariableMap(
        variables={
            "x": interface_pb2.Variable(type=types_pb2.LiteralType(simple=types_pb2.INTEGER))
        }
    )
)


def ident(kind: int, name: str) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=kind, project="p", domain="d", name=name, version="v1"
    )


def task() -> Registered[task_pb2.Task]:
    template = tasks_pb2.TaskTemplate(
        id=ident(RT.TASK, "t"), type="python-task", interface=INTERFACE
    )
    closure = task_pb2.TaskClosure(
        compiled_task=compiler_pb2.CompiledTask(template=template), created_at=CREATED
    )
    return Registered(task_pb2.Task(id=ident(RT.TASK, "t"), closure=closure), "digest-t")


def workflow() -> Registered[workflow_pb2.Workflow]:
    template = core_workflow.WorkflowTemplate(id=ident(RT.WORKFLOW, "wf"), interface=INTERFACE)
    closure = workflow_pb2.WorkflowClosure(
        compiled_workflow=compiler_pb2.CompiledWorkflowClosure(
            primary=compiler_pb2.CompiledWorkflow(template=template)
        ),
        created_at=CREATED,
    )
    message = workflow_pb2.Workflow(id=ident(RT.WORKFLOW, "wf"), closure=closure)
    return Registered(message, "digest-wf")


def launch_plan() -> Registered[launch_plan_pb2.LaunchPlan]:
    message = launch_plan_pb2.LaunchPlan(
        id=ident(RT.LAUNCH_PLAN, "lp"),
        spec=launch_plan_pb2.LaunchPlanSpec(workflow_id=ident(RT.WORKFLOW, "wf")),
        closure=launch_plan_pb2.LaunchPlanClosure(state=launch_plan_pb2.ACTIVE, created_at=CREATED),
    )
    return Registered(message, "digest-lp")


def description() -> Registered[description_entity_pb2.DescriptionEntity]:
    message = description_entity_pb2.DescriptionEntity(
        id=ident(RT.TASK, "t"),
        short_description="Double a number.",
        long_description=description_entity_pb2.Description(value="Takes x, returns 2x."),
    )
    return Registered(message, "", created=dt.datetime(2026, 12, 7, 1, 2, 3, 4, tzinfo=dt.UTC))


CASES = [
    (TaskCodec(), task(), {"closure": task_pb2.TaskClosure}),
    (  # a documented version keeps its description inside
        TaskCodec(),
        dataclasses.replace(task(), description=description().message),
        {"closure": task_pb2.TaskClosure},
    ),
    (
        WorkflowCodec(),
        dataclasses.replace(workflow(), description=description().message),
        {"closure": workflow_pb2.WorkflowClosure},
    ),
    (WorkflowCodec(), workflow(), {"closure": workflow_pb2.WorkflowClosure}),
    (
        LaunchPlanCodec(),
        launch_plan(),
        {"spec": launch_plan_pb2.LaunchPlanSpec, "closure": launch_plan_pb2.LaunchPlanClosure},
    ),
    (DescriptionCodec(), description(), {"entity": description_entity_pb2.DescriptionEntity}),
]


@pytest.mark.parametrize(("codec", "value", "fields"), CASES)
def test_round_trip_through_binary(codec, value, fields):
    body = codec.encode(value)
    spec = body["spec"]
    for field in fields:
        assert field not in spec and isinstance(spec[field + "Proto"], str)
    decoded = codec.decode(body)
    assert decoded == value
    assert decoded.created_at == value.created_at and decoded.created_at is not None


@pytest.mark.parametrize(("codec", "value", "fields"), CASES)
def test_objects_written_as_json_still_read(codec, value, fields):
    body = codec.encode(value)
    spec = body["spec"]
    for field, cls in fields.items():  # as the previous release wrote them
        spec[field] = to_json(from_b64(cls, spec.pop(field + "Proto")))
    assert codec.decode(body) == value
