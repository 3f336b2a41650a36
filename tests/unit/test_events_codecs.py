"""Node and task execution records survive the custom-resource round trip."""

from __future__ import annotations

from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from google.protobuf import duration_pb2, timestamp_pb2

from flyteadmin.core.crmap.node_executions import NodeExecutionCodec, NodeExecutionRecord
from flyteadmin.core.crmap.task_executions import TaskExecutionCodec, TaskExecutionRecord
from flyteadmin.core.names import MAX_NAME

EX = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e")
NODE_ID = identifier_pb2.NodeExecutionIdentifier(execution_id=EX, node_id="n0-0-dn1")
TASK_ID = identifier_pb2.TaskExecutionIdentifier(
    task_id=identifier_pb2.Identifier(
        resource_type=identifier_pb2.TASK, project="p", domain="d", name="my.Task", version="V" * 80
    ),
    node_execution_id=NODE_ID,
    retry_attempt=2,
)


def body(codec, value):
    encoded = codec.encode(value)
    encoded["metadata"].update(name=codec.name(value), resourceVersion="1")
    return encoded


def test_node_execution_round_trip():
    node = node_execution_pb2.NodeExecution(
        id=NODE_ID,
        input_uri="gs://in",
        closure=node_execution_pb2.NodeExecutionClosure(
            phase=core_execution.NodeExecution.RUNNING,
            started_at=timestamp_pb2.Timestamp(seconds=5),
            duration=duration_pb2.Duration(seconds=3),
        ),
        metadata=node_execution_pb2.NodeExecutionMetaData(is_parent_node=True, spec_node_id="n1"),
    )
    record = NodeExecutionRecord(
        node=node, parent_id="n0", parent_task=TASK_ID, dynamic_workflow_uri="gs://dyn"
    )
    codec = NodeExecutionCodec()
    encoded = body(codec, record)
    assert encoded["status"]["phase"] == "RUNNING" and encoded["status"]["duration"] == "3.000s"
    assert encoded["metadata"]["labels"]["flyteadmin.io/execution"] == "e"
    assert codec.decode(encoded) == record
    assert len(codec.name(record)) <= MAX_NAME


def test_task_execution_round_trip_and_distinct_attempt_names():
    task = task_execution_pb2.TaskExecution(
        id=TASK_ID,
        input_uri="gs://in",
        closure=task_execution_pb2.TaskExecutionClosure(
            phase=core_execution.TaskExecution.FAILED, logs=[core_execution.TaskLog(name="l")]
        ),
    )
    record = TaskExecutionRecord(task=task, phase_version=4)
    codec = TaskExecutionCodec()
    encoded = body(codec, record)
    assert encoded["spec"]["retryAttempt"] == 2 and encoded["status"]["phaseVersion"] == 4
    assert codec.decode(encoded) == record
    other = task_execution_pb2.TaskExecution()
    other.CopyFrom(task)
    other.id.retry_attempt = 3
    assert codec.name(TaskExecutionRecord(task=other)) != codec.name(record)
    assert len(codec.name(record)) <= MAX_NAME
