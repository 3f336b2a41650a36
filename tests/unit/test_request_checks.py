"""The checks every request passes before its handler: defined enum numbers, bounded ids."""

from __future__ import annotations

import pytest
from flyteidl.admin import (
    common_pb2,
    event_pb2,
    execution_pb2,
    project_pb2,
    signal_pb2,
    task_pb2,
)
from flyteidl.core import identifier_pb2, literals_pb2, tasks_pb2, types_pb2
from flyteidl.event import event_pb2 as ev
from google.protobuf import struct_pb2

from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.validation.requests import MAX_ID_LENGTH, check_request


def _message(request) -> str:
    with pytest.raises(AdminError) as info:
        check_request(request)
    assert info.value.code == Code.INVALID_ARGUMENT
    return info.value.message


def test_unknown_enum_numbers_are_refused_naming_the_field():
    project = project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id="p", state=99))
    assert _message(project) == (
        "invalid value for project.state: 99 is not a value of flyteidl.admin.Project.ProjectState"
    )
    event = event_pb2.WorkflowExecutionEventRequest(event=ev.WorkflowExecutionEvent(phase=99))
    assert _message(event).startswith("invalid value for event.phase: 99 ")
    named = common_pb2.NamedEntityGetRequest(resource_type=99)
    assert _message(named).startswith("invalid value for resource_type: 99 ")
    # Deep inside literals (GetOrCreateSignal's type, a blob's dimensionality).
    signal = signal_pb2.SignalGetOrCreateRequest(
        type=types_pb2.LiteralType(blob=types_pb2.BlobType(dimensionality=99))
    )
    assert _message(signal).startswith("invalid value for type.blob.dimensionality: 99 ")
    # In repeated messages and maps.
    inputs = literals_pb2.LiteralMap(
        literals={
            "x": literals_pb2.Literal(
                scalar=literals_pb2.Scalar(
                    blob=literals_pb2.Blob(
                        metadata=literals_pb2.BlobMetadata(
                            type=types_pb2.BlobType(dimensionality=-3)
                        )
                    )
                )
            )
        }
    )
    create = execution_pb2.ExecutionCreateRequest(inputs=inputs)
    assert "inputs.literals.scalar.blob.metadata.type.dimensionality: -3" in _message(create)


def test_defined_enums_and_structs_pass():
    template = tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK, project="p", name="t"),
        custom=struct_pb2.Struct(fields={"a": struct_pb2.Value(null_value=0)}),
    )
    check_request(task_pb2.TaskCreateRequest(spec=task_pb2.TaskSpec(template=template)))
    check_request(project_pb2.ProjectRegisterRequest(project=project_pb2.Project(state=2)))


def test_identifier_fields_are_bounded():
    long = "n" * (MAX_ID_LENGTH + 1)
    get = common_pb2.ObjectGetRequest(id=identifier_pb2.Identifier(name=long))
    assert _message(get) == f"invalid value for id.name: 256 characters, at most {MAX_ID_LENGTH}"
    node = event_pb2.NodeExecutionEventRequest(
        event=ev.NodeExecutionEvent(id=identifier_pb2.NodeExecutionIdentifier(node_id=long))
    )
    assert _message(node).startswith("invalid value for event.id.node_id: 256 characters")
    listing = common_pb2.NamedEntityIdentifierListRequest(project="p" * 1_000_000)
    assert "1000000 characters" in _message(listing)
    # Free text is not an identifier: a long description or node name is fine here.
    check_request(project_pb2.Project(id="p", description="d" * 10_000))
    check_request(common_pb2.ObjectGetRequest(id=identifier_pb2.Identifier(name="n" * 255)))
