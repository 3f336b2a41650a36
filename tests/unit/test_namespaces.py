from __future__ import annotations

import pytest

from flyteadmin.core.namespaces import MANAGED, desired_labels, namespace_for


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{{ project }}-{{ domain }}", "flytesnacks-development"),
        ("{{project}}-{{domain}}", "flytesnacks-development"),
        ("flyte-{{ domain }}", "flyte-development"),
        ("{{ project }}", "flytesnacks"),
    ],
)
def test_namespace_template(template, expected):
    assert namespace_for(template, "flytesnacks", "development") == expected


def test_archived_projects_release_their_namespaces():
    assert desired_labels("p", "d", active=True)[MANAGED] == "true"
    assert desired_labels("p", "d", active=False)[MANAGED] is None
