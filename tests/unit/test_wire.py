"""List answers assembled from their items' wire bytes (core/wire.py) are the bytes of the
message built the usual way, and each item is serialized once per stored version."""

from __future__ import annotations

import pytest
from flyteidl.admin import (
    common_pb2,
    description_entity_pb2,
    execution_pb2,
    launch_plan_pb2,
    project_pb2,
    task_pb2,
    workflow_pb2,
)

from flyteadmin.core import wire

EXECUTIONS = wire.ListShape(execution_pb2.ExecutionList, "executions")


def _executions(count: int) -> list[execution_pb2.Execution]:
    out = []
    for i in range(count):
        ex = execution_pb2.Execution()
        ex.id.project, ex.id.domain, ex.id.name = "p", "d", f"e{i}"
        ex.spec.launch_plan.name = "lp" * (i * 40)  # items past 127 bytes: 2-byte lengths
        ex.closure.phase = i % 9
        ex.spec.metadata.system_metadata.execution_cluster = "ü" * i  # non-ASCII
        out.append(ex)
    return out


@pytest.mark.parametrize("count", [0, 1, 3, 100])
@pytest.mark.parametrize("token", ["", "100", "ä" * 200])
def test_a_page_is_the_built_message_on_the_wire(count: int, token: str) -> None:
    items = _executions(count)
    built = execution_pb2.ExecutionList(executions=items, token=token)
    answer = EXECUTIONS.page([EXECUTIONS.item(i.SerializeToString()) for i in items], token)
    assert answer.data == built.SerializeToString()
    assert answer.message() == built
    assert wire.message_of(answer) == built
    assert wire.message_of(built) is built


@pytest.mark.parametrize(
    ("message_type", "field"),
    [
        (execution_pb2.ExecutionList, "executions"),
        (task_pb2.TaskList, "tasks"),
        (workflow_pb2.WorkflowList, "workflows"),
        (launch_plan_pb2.LaunchPlanList, "launch_plans"),
        (project_pb2.Projects, "projects"),
        (description_entity_pb2.DescriptionEntityList, "descriptionEntities"),
        (common_pb2.NamedEntityList, "entities"),
    ],
)
def test_every_list_message_takes_its_items_then_its_token(message_type: type, field: str) -> None:
    built = message_type(token="t")
    for _ in range(2):
        getattr(built, field).add()
    shape = wire.ListShape(message_type, field)
    answer = shape.page([shape.item(i.SerializeToString()) for i in getattr(built, field)], "t")
    assert answer.data == built.SerializeToString()
    assert answer.message() == built


def test_a_field_that_is_not_a_message_list_is_refused() -> None:
    with pytest.raises(TypeError):
        wire.ListShape(execution_pb2.ExecutionList, "token")
    with pytest.raises(KeyError):
        wire.ListShape(execution_pb2.ExecutionList, "nothing")


def test_an_item_is_serialized_once_per_memo() -> None:
    made = []

    def make() -> execution_pb2.Execution:
        made.append(1)
        return _executions(2)[1]

    memo: dict[object, object] = {}
    first = EXECUTIONS.kept(memo, make)
    assert EXECUTIONS.kept(memo, make) is first
    assert made == [1]
    assert first == EXECUTIONS.item(_executions(2)[1].SerializeToString())
    assert EXECUTIONS.kept({}, make) == first and made == [1, 1]  # another version
    assert EXECUTIONS.kept(memo, make, True) == first and made == [1, 1, 1]  # another variant
