"""Request checks of the matchable-attribute RPCs (§8), pure."""

from __future__ import annotations

import pytest
from flyteidl.admin import (
    cluster_assignment_pb2,
    matchable_resource_pb2,
    project_attributes_pb2,
    project_domain_attributes_pb2,
    workflow_attributes_pb2,
)
from flyteidl.core import execution_pb2 as core_execution_pb2

from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.validation.attributes import (
    ONEOF_TYPES,
    matchable_resource_of,
    require_attributes,
    require_workflow,
    validate_resource_type,
)

MR = matchable_resource_pb2.MatchableResource
MatchingAttributes = matchable_resource_pb2.MatchingAttributes


def invalid(fn, *args) -> str:
    with pytest.raises(AdminError) as info:
        fn(*args)
    assert info.value.code == Code.INVALID_ARGUMENT
    return info.value.message


@pytest.mark.parametrize(
    "request_",
    [
        project_domain_attributes_pb2.ProjectDomainAttributesUpdateRequest(),
        project_attributes_pb2.ProjectAttributesUpdateRequest(),
        workflow_attributes_pb2.WorkflowAttributesUpdateRequest(),
    ],
    ids=["project-domain", "project", "workflow"],
)
def test_update_requests_need_attributes(request_):
    assert invalid(require_attributes, request_) == "missing attributes"
    request_.attributes.SetInParent()  # present, even if empty, is enough here
    require_attributes(request_)


def test_workflow_level_needs_a_workflow_name():
    assert invalid(require_workflow, "") == "missing name"
    require_workflow("my_module.my_wf")


# Each accepted oneof member, with a value, and the resource type it selects.
MEMBERS = {
    "task_resource_attributes": matchable_resource_pb2.TaskResourceAttributes(
        defaults=matchable_resource_pb2.TaskResourceSpec(cpu="1")
    ),
    "cluster_resource_attributes": matchable_resource_pb2.ClusterResourceAttributes(
        attributes={"quota": "1"}
    ),
    "execution_queue_attributes": matchable_resource_pb2.ExecutionQueueAttributes(tags=["gpu"]),
    "execution_cluster_label": matchable_resource_pb2.ExecutionClusterLabel(value="c1"),
    "plugin_overrides": matchable_resource_pb2.PluginOverrides(
        overrides=[matchable_resource_pb2.PluginOverride(task_type="spark", plugin_id=["x"])]
    ),
    "workflow_execution_config": matchable_resource_pb2.WorkflowExecutionConfig(max_parallelism=3),
    "cluster_assignment": cluster_assignment_pb2.ClusterAssignment(cluster_pool_name="pool"),
}
TYPES = {
    "task_resource_attributes": MR.TASK_RESOURCE,
    "cluster_resource_attributes": MR.CLUSTER_RESOURCE,
    "execution_queue_attributes": MR.EXECUTION_QUEUE,
    "execution_cluster_label": MR.EXECUTION_CLUSTER_LABEL,
    "plugin_overrides": MR.PLUGIN_OVERRIDE,
    "workflow_execution_config": MR.WORKFLOW_EXECUTION_CONFIG,
    "cluster_assignment": MR.CLUSTER_ASSIGNMENT,
}


@pytest.mark.parametrize("empty", [False, True], ids=["with-value", "empty-member"])
@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_each_accepted_member_selects_its_resource_type(member, empty):
    attributes = project_domain_attributes_pb2.ProjectDomainAttributes(project="p", domain="d")
    value = type(MEMBERS[member])() if empty else MEMBERS[member]
    attributes.matching_attributes.CopyFrom(MatchingAttributes(**{member: value}))
    assert matchable_resource_of(attributes, "p-d") == TYPES[member]


def test_every_oneof_member_but_quality_of_service_is_accepted():
    members = {f.name for f in MatchingAttributes.DESCRIPTOR.oneofs_by_name["target"].fields}
    assert set(ONEOF_TYPES) == members - {"quality_of_service"}


@pytest.mark.parametrize(
    "attributes, identifier",
    [
        (
            project_domain_attributes_pb2.ProjectDomainAttributes(
                project="p",
                domain="d",
                matching_attributes=MatchingAttributes(
                    quality_of_service=core_execution_pb2.QualityOfService(tier=1)
                ),
            ),
            "p-d",
        ),
        (
            project_attributes_pb2.ProjectAttributes(
                project="p", matching_attributes=MatchingAttributes()
            ),
            "p",
        ),
        (
            workflow_attributes_pb2.WorkflowAttributes(
                project="p", domain="d", workflow="wf", matching_attributes=MatchingAttributes()
            ),
            "p-d-wf",
        ),
    ],
    ids=["quality-of-service", "no-member-project", "no-member-workflow"],
)
def test_quality_of_service_and_no_member_are_unrecognized(attributes, identifier):
    message = invalid(matchable_resource_of, attributes, identifier)
    assert message == f"Unrecognized matching attributes type for request {identifier}"


def test_missing_matching_attributes():
    attributes = project_attributes_pb2.ProjectAttributes(project="p")
    assert invalid(matchable_resource_of, attributes, "p") == "missing matching_attributes"


@pytest.mark.parametrize("value", list(MR.values()))
def test_every_defined_resource_type_is_valid(value):
    validate_resource_type(value)


@pytest.mark.parametrize("value", [-1, 8, 99])
def test_undefined_resource_type_numbers_are_invalid(value):
    assert invalid(validate_resource_type, value) == "invalid value for resource_type"
