"""Request checks of the matchable-attribute RPCs (flyteadmin-behaviour.md §8), pure.

The service runs them in flyteadmin's order: ``require_attributes``, the project check,
``require_workflow`` (workflow level), then ``matchable_resource_of``; Get/Delete/List check
``validate_resource_type``.
"""

from __future__ import annotations

from flyteidl.admin import matchable_resource_pb2
from google.protobuf.message import Message

from flyteadmin.core.errors import invalid_argument, invalid_value, missing

MatchableResource = matchable_resource_pb2.MatchableResource

# The oneof members the update RPCs accept. quality_of_service is deliberately absent:
# flyteadmin rejects it ("Unrecognized matching attributes type"), and QoS has no effect anyway.
ONEOF_TYPES: dict[str, int] = {
    "task_resource_attributes": MatchableResource.TASK_RESOURCE,
    "cluster_resource_attributes": MatchableResource.CLUSTER_RESOURCE,
    "execution_queue_attributes": MatchableResource.EXECUTION_QUEUE,
    "execution_cluster_label": MatchableResource.EXECUTION_CLUSTER_LABEL,
    "plugin_overrides": MatchableResource.PLUGIN_OVERRIDE,
    "workflow_execution_config": MatchableResource.WORKFLOW_EXECUTION_CONFIG,
    "cluster_assignment": MatchableResource.CLUSTER_ASSIGNMENT,
}


def require_attributes(request: Message) -> None:
    """``request`` is one of the *AttributesUpdateRequest messages."""
    if not request.HasField("attributes"):
        raise missing("attributes")


def require_workflow(workflow: str) -> None:
    if not workflow:
        raise missing("name")  # flyteadmin names the field "name", not "workflow"


def matchable_resource_of(attributes: Message, identifier: str) -> int:
    """The resource type an update's ``matching_attributes`` oneof selects.

    ``attributes`` is a ProjectAttributes, ProjectDomainAttributes or WorkflowAttributes;
    ``identifier`` names the level in the message ("p", "p-d" or "p-d-wf").
    """
    if not attributes.HasField("matching_attributes"):
        raise missing("matching_attributes")
    member = attributes.matching_attributes.WhichOneof("target")  # type: ignore[attr-defined]
    if member not in ONEOF_TYPES:
        raise invalid_argument(f"Unrecognized matching attributes type for request {identifier}")
    return ONEOF_TYPES[member]


def validate_resource_type(resource_type: int) -> None:
    """proto3 enums are open: a client can send any number; only the defined values name a row."""
    if resource_type not in MatchableResource.values():
        raise invalid_value("resource_type")
