"""Which project-domains a MatchableAttributes change re-applies."""

from __future__ import annotations

import pytest

from flyteadmin.operator.cluster_resources import affected


@pytest.mark.parametrize(
    ("spec", "scope"),
    [
        ({"resourceType": "CLUSTER_RESOURCE", "project": "p", "domain": "d"}, (["p"], ["d"])),
        ({"resourceType": "CLUSTER_RESOURCE", "project": "p", "domain": ""}, (["p"], None)),
        ({"resourceType": "CLUSTER_RESOURCE", "project": "", "domain": ""}, (None, None)),
        (
            {"resourceType": "CLUSTER_RESOURCE", "project": "p", "domain": "d", "workflow": "w"},
            None,
        ),
        ({"resourceType": "TASK_RESOURCE", "project": "p", "domain": "d"}, None),
        ({}, None),
    ],
)
def test_affected_project_domains(spec, scope):
    assert affected(spec) == scope
