"""Events in the shape the real flytepropeller sends them, where our handling once failed."""

from __future__ import annotations

from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from flyteidl.event import event_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.core.events import node_events

NodePhase = core_execution.NodeExecution.Phase


def test_a_launch_plan_node_event_records_the_child_execution():
    """Propeller's RUNNING event for a launch-plan node names the child execution it created;
    the admin closure's field is ``executionId`` (an AttributeError, INTERNAL, before)."""
    child = identifier_pb2.WorkflowExecutionIdentifier(
        project="flytesnacks", domain="development", name="child-1"
    )
    event = event_pb2.NodeExecutionEvent(
        id=identifier_pb2.NodeExecutionIdentifier(
            node_id="n0",
            execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                project="flytesnacks", domain="development", name="parent"
            ),
        ),
        phase=NodePhase.RUNNING,
        occurred_at=timestamp_pb2.Timestamp(seconds=10),
        producer_id="propeller",
        input_uri="gs://b/metadata/propeller/parent/n0/data/inputs.pb",
        workflow_node_metadata=event_pb2.WorkflowNodeMetadata(execution_id=child),
    )
    record = node_events.apply(None, event)
    assert record.node.closure.workflow_node_metadata.executionId == child
    # Later events keep the first child id.
    done = event_pb2.NodeExecutionEvent()
    done.CopyFrom(event)
    done.phase = NodePhase.SUCCEEDED
    done.occurred_at.seconds = 20
    done.workflow_node_metadata.execution_id.name = "other"
    later = node_events.apply(record, done)
    assert later.node.closure.workflow_node_metadata.executionId.name == "child-1"
