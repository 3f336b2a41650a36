"""Matchable attributes, pure parts: which row wins (§8), the field-by-field merge of
WORKFLOW_EXECUTION_CONFIG (§5.2), the application defaults, plugin-override merging, and the
row <-> custom-resource codec."""

from __future__ import annotations

import pytest
from flyteidl.admin import common_pb2, execution_pb2, launch_plan_pb2, matchable_resource_pb2
from flyteidl.core import execution_envs_pb2, literals_pb2, security_pb2
from google.protobuf import wrappers_pb2

from flyteadmin.core.attributes import (
    application_defaults,
    merge_plugin_overrides,
    merge_workflow_execution_config,
    priority,
    resolve,
)
from flyteadmin.core.config import ExecutionDefaults, load_settings
from flyteadmin.core.crmap.attributes import AttributeRow, AttributesCodec
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.names import MAX_NAME

MR = matchable_resource_pb2.MatchableResource
MatchingAttributes = matchable_resource_pb2.MatchingAttributes
WEC = matchable_resource_pb2.WorkflowExecutionConfig

# The levels from least to most specific, as (project, domain, workflow, launch plan).
LEVELS = ["project", "domain", "workflow", "launch_plan"]
LEVEL_KEYS = {
    "project": ("p", "", "", ""),
    "domain": ("p", "d", "", ""),
    "workflow": ("p", "d", "wf", ""),
    "launch_plan": ("p", "d", "wf", "lp"),
}


def labelled(label: str) -> MatchingAttributes:
    return MatchingAttributes(
        execution_cluster_label=matchable_resource_pb2.ExecutionClusterLabel(value=label)
    )


def row(key: tuple[str, str, str, str], label: str, rt: int = MR.EXECUTION_CLUSTER_LABEL):
    return AttributeRow(rt, *key, attributes=labelled(label))


# Rows that must never win a query for ("p", "d", "wf", "lp") of EXECUTION_CLUSTER_LABEL, each
# as specific as possible: another project, domain, workflow, launch plan, or resource type.
DECOYS = [
    row(("p2", "d", "wf", "lp"), "other project"),
    row(("p2", "", "", ""), "other project"),
    row(("p", "d2", "wf", "lp"), "other domain"),
    row(("p", "d2", "", ""), "other domain"),
    row(("p", "d", "wf2", "lp"), "other workflow"),
    row(("p", "d", "wf2", ""), "other workflow"),
    row(("p", "d", "wf", "lp2"), "other launch plan"),
    row(("p", "d", "wf", "lp"), "other type", MR.EXECUTION_QUEUE),
    row(("p", "", "", ""), "other type", MR.TASK_RESOURCE),
]


@pytest.mark.parametrize("query", LEVELS)
@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
@pytest.mark.parametrize("has_launch_plan", [False, True], ids=["-lp", "+lp"])
@pytest.mark.parametrize("has_workflow", [False, True], ids=["-wf", "+wf"])
@pytest.mark.parametrize("has_domain", [False, True], ids=["-pd", "+pd"])
@pytest.mark.parametrize("has_project", [False, True], ids=["-p", "+p"])
def test_the_most_specific_matching_row_wins(
    has_project, has_domain, has_workflow, has_launch_plan, reverse, query
):
    present = dict(
        zip(LEVELS, [has_project, has_domain, has_workflow, has_launch_plan], strict=True)
    )
    rows = [row(LEVEL_KEYS[level], level) for level in LEVELS if present[level]] + DECOYS
    if reverse:
        rows.reverse()
    project, domain, workflow, launch_plan = LEVEL_KEYS[query]
    got = resolve(
        rows,
        resource_type=MR.EXECUTION_CLUSTER_LABEL,
        project=project,
        domain=domain,
        workflow=workflow,
        launch_plan=launch_plan,
    )
    # The oracle: the deepest level that is present and no deeper than the query.
    reachable = [lvl for lvl in LEVELS[: LEVELS.index(query) + 1] if present[lvl]]
    if not reachable:
        assert got is None
    else:
        assert got is not None and got.attributes == labelled(reachable[-1])
        assert (got.project, got.domain, got.workflow, got.launch_plan) == LEVEL_KEYS[reachable[-1]]


def test_rows_are_never_merged_across_levels():
    project_row = AttributeRow(
        MR.TASK_RESOURCE,
        "p",
        attributes=MatchingAttributes(
            task_resource_attributes=matchable_resource_pb2.TaskResourceAttributes(
                defaults=matchable_resource_pb2.TaskResourceSpec(cpu="1", memory="1Gi")
            )
        ),
    )
    domain_row = AttributeRow(
        MR.TASK_RESOURCE,
        "p",
        "d",
        attributes=MatchingAttributes(
            task_resource_attributes=matchable_resource_pb2.TaskResourceAttributes(
                defaults=matchable_resource_pb2.TaskResourceSpec(cpu="2")
            )
        ),
    )
    got = resolve(
        [project_row, domain_row], resource_type=MR.TASK_RESOURCE, project="p", domain="d"
    )
    assert got is domain_row
    assert got.attributes.task_resource_attributes.defaults.memory == ""  # not the project's


def test_a_row_without_a_project_loses_a_tie_with_the_project_s_own_row():
    everyone = row(("", "d", "", ""), "every project")
    own = row(("p", "d", "", ""), "own")
    for rows in ([everyone, own], [own, everyone]):
        got = resolve(rows, resource_type=MR.EXECUTION_CLUSTER_LABEL, project="p", domain="d")
        assert got is own
    got = resolve([everyone], resource_type=MR.EXECUTION_CLUSTER_LABEL, project="p", domain="d")
    assert got is everyone


@pytest.mark.parametrize(
    "project, domain, workflow, launch_plan",
    [
        ("", "d", "", ""),  # no project
        ("", "", "", ""),
        ("p", "", "wf", ""),  # a project without a domain is the project level only
        ("p", "", "", "lp"),
        ("p", "d", "", "lp"),  # a launch plan needs a workflow
        ("", "d", "wf", "lp"),
    ],
)
def test_invalid_combinations_are_rejected(project, domain, workflow, launch_plan):
    with pytest.raises(AdminError) as info:
        resolve(
            [row(LEVEL_KEYS["project"], "x")],
            resource_type=MR.EXECUTION_CLUSTER_LABEL,
            project=project,
            domain=domain,
            workflow=workflow,
            launch_plan=launch_plan,
        )
    assert info.value.code == Code.INVALID_ARGUMENT
    assert info.value.message.startswith("missing and/or invalid parameters: {Project:")


@pytest.mark.parametrize(
    "level, expected", [("project", 5), ("domain", 10), ("workflow", 100), ("launch_plan", 1000)]
)
def test_priorities_are_flyteadmin_s(level, expected):
    assert priority(row(LEVEL_KEYS[level], level)) == expected


# ---- WORKFLOW_EXECUTION_CONFIG: field by field, the first source that sets a field wins ------


def _labels(i: int) -> common_pb2.Labels:
    return common_pb2.Labels(values={"k": f"v{i}"})


# field -> (set it on source i, set it to its "unset" form, read it back from the result)
FIELDS = {
    "max_parallelism": (
        lambda c, i: setattr(c, "max_parallelism", 10 + i),
        lambda c: setattr(c, "max_parallelism", 0),
        lambda out: out.max_parallelism or None,
    ),
    "security_context": (
        lambda c, i: c.security_context.run_as.CopyFrom(
            security_pb2.Identity(k8s_service_account=f"sa{i}")
        ),
        # present, but naming nobody: the UI sends this; it does not count
        lambda c: c.security_context.CopyFrom(
            security_pb2.SecurityContext(run_as=security_pb2.Identity())
        ),
        lambda out: (
            out.security_context.run_as.k8s_service_account
            if out.HasField("security_context")
            else None
        ),
    ),
    "raw_output_data_config": (
        lambda c, i: setattr(c.raw_output_data_config, "output_location_prefix", f"s3://b{i}"),
        lambda c: c.raw_output_data_config.SetInParent(),
        lambda out: out.raw_output_data_config.output_location_prefix or None,
    ),
    "labels": (
        lambda c, i: c.labels.CopyFrom(_labels(i)),
        lambda c: c.labels.SetInParent(),
        lambda out: out.labels.values["k"] if out.labels.values else None,
    ),
    "annotations": (
        lambda c, i: c.annotations.values.update({"k": f"v{i}"}),
        lambda c: c.annotations.SetInParent(),
        lambda out: out.annotations.values["k"] if out.annotations.values else None,
    ),
    "envs": (
        lambda c, i: c.envs.values.append(literals_pb2.KeyValuePair(key="k", value=f"v{i}")),
        lambda c: c.envs.SetInParent(),
        lambda out: out.envs.values[0].value if out.envs.values else None,
    ),
    "execution_env_assignments": (
        lambda c, i: c.execution_env_assignments.append(
            execution_envs_pb2.ExecutionEnvAssignment(node_ids=[f"n{i}"])
        ),
        lambda c: None,
        lambda out: (
            out.execution_env_assignments[0].node_ids[0] if out.execution_env_assignments else None
        ),
    ),
    # A BoolValue: an explicit false is "set". The first setter writes false, later ones true.
    "interruptible": (
        lambda c, i: c.interruptible.CopyFrom(wrappers_pb2.BoolValue(value=i > 0)),
        lambda c: None,
        lambda out: out.interruptible.value if out.HasField("interruptible") else None,
    ),
    # Only true counts (false cannot be told from unset).
    "overwrite_cache": (
        lambda c, i: setattr(c, "overwrite_cache", True),
        lambda c: setattr(c, "overwrite_cache", False),
        lambda out: out.overwrite_cache or None,
    ),
}

# What the winner's value reads as, for the setter at position i (i = first setter).
EXPECTED = {
    "max_parallelism": lambda i: 10 + i,
    "security_context": lambda i: f"sa{i}",
    "raw_output_data_config": lambda i: f"s3://b{i}",
    "labels": lambda i: f"v{i}",
    "annotations": lambda i: f"v{i}",
    "envs": lambda i: f"v{i}",
    "execution_env_assignments": lambda i: f"n{i}",
    "interruptible": lambda i: False,
    "overwrite_cache": lambda i: True,
}

# The sources of an execution, most specific first: the request, the launch plan, attributes.
SOURCES = [execution_pb2.ExecutionSpec, launch_plan_pb2.LaunchPlanSpec, WEC, WEC]


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("unset_form_before", [False, True], ids=["absent", "empty-form"])
@pytest.mark.parametrize("first_setter", [0, 1, 2, 3, None])
def test_each_field_comes_from_the_first_source_that_sets_it(
    field, unset_form_before, first_setter
):
    set_it, set_empty, read = FIELDS[field]
    configs = [cls() for cls in SOURCES]
    for i, config in enumerate(configs):
        if first_setter is not None and i >= first_setter:
            set_it(config, i - first_setter)  # 0 for the first setter, then 1, 2, ...
        elif unset_form_before:
            set_empty(config)
    merged = merge_workflow_execution_config(*configs)
    expected = EXPECTED[field](0) if first_setter is not None else None
    assert read(merged) == expected
    others = [f for f in FIELDS if f != field]
    assert all(FIELDS[f][2](merged) is None for f in others)  # nothing else leaked in


def test_fields_come_from_different_levels_independently():
    """FLYTE-2322's case: the project-domain's service account, the project's max parallelism,
    the application defaults for the rest."""
    project_domain = WEC(
        security_context=security_pb2.SecurityContext(
            run_as=security_pb2.Identity(k8s_service_account="pd-sa")
        )
    )
    project = WEC(max_parallelism=7, labels=_labels(1))
    defaults = application_defaults(
        ExecutionDefaults(k8s_service_account="default-sa", labels={"k": "d"})
    )
    merged = merge_workflow_execution_config(None, project_domain, project, defaults)
    assert merged.security_context.run_as.k8s_service_account == "pd-sa"
    assert (merged.max_parallelism, merged.labels.values["k"]) == (7, "v1")
    assert not merged.HasField("interruptible") and not merged.overwrite_cache


def test_application_defaults_set_only_what_is_configured():
    plain = application_defaults(ExecutionDefaults())
    assert plain == WEC(max_parallelism=25)  # overwrite_cache false, interruptible unset
    full = application_defaults(
        ExecutionDefaults(
            max_parallelism=3,
            overwrite_cache=True,
            interruptible=True,
            raw_output_prefix="s3://raw",
            assumable_iam_role="arn:role",
            labels={"team": "ml"},
            annotations={"a": "b"},
            envs={"B": "2", "A": "1"},
        )
    )
    assert (full.max_parallelism, full.overwrite_cache, full.interruptible.value) == (3, True, True)
    assert full.security_context.run_as == security_pb2.Identity(iam_role="arn:role")
    assert full.raw_output_data_config.output_location_prefix == "s3://raw"
    assert (dict(full.labels.values), dict(full.annotations.values)) == ({"team": "ml"}, {"a": "b"})
    assert [(e.key, e.value) for e in full.envs.values] == [("A", "1"), ("B", "2")]
    without_envs = application_defaults(ExecutionDefaults(envs={"A": "1"}), include_envs=False)
    assert not without_envs.HasField("envs")


def test_execution_defaults_load_from_the_environment():
    settings = load_settings(
        None,
        env={
            "FLYTEADMIN__EXECUTIONS__MAX_PARALLELISM": "40",
            "FLYTEADMIN__EXECUTIONS__LABELS": "{team: ml, tier: 1}",
        },
    )
    assert settings.executions.max_parallelism == 40
    assert settings.executions.labels == {"team": "ml", "tier": "1"}


# ---- plugin overrides and the codec -----------------------------------------------------------


def overrides(*pairs: tuple[str, str]) -> MatchingAttributes:
    out = MatchingAttributes()
    out.plugin_overrides.overrides.extend(
        matchable_resource_pb2.PluginOverride(task_type=t, plugin_id=[p]) for t, p in pairs
    )
    return out


def test_plugin_overrides_merge_by_task_type():
    merged = merge_plugin_overrides(
        overrides(("spark", "old"), ("ray", "r")), overrides(("spark", "new"), ("mpi", "m"))
    )
    got = [(o.task_type, list(o.plugin_id)) for o in merged.plugin_overrides.overrides]
    assert got == [("spark", ["new"]), ("ray", ["r"]), ("mpi", ["m"])]


def test_codec_round_trip_and_names():
    codec = AttributesCodec()
    value = AttributeRow(
        MR.PLUGIN_OVERRIDE,
        "flytesnacks",
        "development",
        "my_module.My_Wf",
        "",
        overrides(("a", "b")),
    )
    body = codec.encode(value)
    assert body["spec"]["resourceType"] == "PLUGIN_OVERRIDE"
    assert body["spec"]["attributes"] == {
        "plugin_overrides": {"overrides": [{"task_type": "a", "plugin_id": ["b"]}]}
    }
    assert body["metadata"]["labels"]["flyteadmin.io/project"] == "flytesnacks"
    assert codec.decode(body) == value
    name = codec.name(value)
    assert len(name) <= MAX_NAME and name.startswith("flytesnacks-development-my-module-my-wf-")
    # Every level and type of the same ids is a different object.
    names = {
        codec.name(AttributeRow(rt, *key))
        for rt in MR.values()
        for key in [
            ("p", "", "", ""),
            ("p", "d", "", ""),
            ("p", "d", "w", ""),
            ("p", "d", "w", "l"),
        ]
    }
    assert len(names) == 4 * len(MR.values())
