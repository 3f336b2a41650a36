"""The small rules the object depends on: resources, labels, Go formatting, input checks."""

from __future__ import annotations

import datetime as dt

import pytest
from flyteidl.core import interface_pb2, literals_pb2, tasks_pb2, types_pb2

from flyteadmin.core.flyteworkflow import (
    FlyteWorkflowBuildError,
    adjust_or_default_resource,
    build,
    crd,
    goformat,
    resources,
)
from flyteadmin.core.quantities import parse_quantity as q

R = tasks_pb2.Resources


@pytest.mark.parametrize(
    ("request_", "limit", "default", "platform_limit", "expected"),
    [
        ("0", "0", "2", "4", ("2", "2")),  # both missing: platform default
        ("0", "3", "2", "4", ("3", "3")),  # missing request takes the limit
        ("1", "0", "2", "4", ("1", "1")),  # missing limit takes the request
        ("8", "16", "2", "4", ("4", "4")),  # capped at the platform limit
        ("3", "2", "1", "0", ("2", "2")),  # request capped at the limit; no platform limit
        ("500m", "0", "2", "1", ("500m", "500m")),
    ],
)
def test_adjust_or_default_resource(request_, limit, default, platform_limit, expected):
    got = adjust_or_default_resource(q(request_), q(limit), q(default), q(platform_limit))
    assert (str(got.request), str(got.limit)) == expected


def _task(requests=(), limits=()) -> tasks_pb2.TaskTemplate:
    task = tasks_pb2.TaskTemplate(container=tasks_pb2.Container(image="i"))
    for name, value in requests:
        task.container.resources.requests.add(name=name, value=value)
    for name, value in limits:
        task.container.resources.limits.add(name=name, value=value)
    return task


def _pairs(entries):
    return [(R.ResourceName.Name(e.name), e.value) for e in entries]


def test_container_resources_completed_with_optional_kinds_only_when_mentioned():
    defaults = resources.platform_set({"cpu": "2", "memory": "200Mi"})
    limits = resources.platform_set({"cpu": "2", "memory": "1Gi", "gpu": "1"})
    task = _task(requests=[(R.MEMORY, "2Gi")], limits=[(R.GPU, "4")])
    resources.complete_container_resources(task, defaults, limits)
    assert _pairs(task.container.resources.requests) == [
        ("CPU", "2"),
        ("MEMORY", "1Gi"),
        ("GPU", "1"),
    ]
    assert _pairs(task.container.resources.limits) == [
        ("CPU", "2"),
        ("MEMORY", "1Gi"),
        ("GPU", "1"),
    ]


def test_non_container_tasks_are_left_alone():
    task = tasks_pb2.TaskTemplate(type="sql")
    resources.complete_container_resources(task, {}, {})
    assert not task.HasField("container")


def test_node_override_resources_use_k8s_names_and_drop_zero():
    res = R(limits=[R.ResourceEntry(name=R.GPU, value="1"), R.ResourceEntry(name=R.CPU, value="0")])
    res.requests.add(name=R.EPHEMERAL_STORAGE, value="1024Mi")
    assert resources.k8s_resource_requirements(res) == {
        "limits": {"nvidia.com/gpu": "1"},
        "requests": {"ephemeral-storage": "1Gi"},
    }


def test_shard_key_is_fnv32a_mod_32():
    assert goformat.fnv32a(b"") == 0x811C9DC5
    assert goformat.fnv32a(b"a") == 0xE40C292C
    assert build.shard_key("a") == 0xE40C292C % 32


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("my_pkg.My_Workflow", "my-pkg-my-workflow"),
        ("--Wf__!!x--", "wf-x"),
        ("a" * 70, "a" * 63),
        ("a" * 62 + ".b", "a" * 62),  # cut at 63, then the trailing dash trimmed
    ],
)
def test_sanitize_label_value(raw, expected):
    assert goformat.sanitize_label_value(raw) == expected


@pytest.mark.parametrize(
    ("nanos", "expected"),
    [
        (0, "0s"),
        (3600 * 10**9, "1h0m0s"),
        (90 * 10**9, "1m30s"),
        (1_500_000_000, "1.5s"),
        (1_500_000, "1.5ms"),
        (2_000, "2µs"),
        (7, "7ns"),
        (-(61 * 10**9), "-1m1s"),
    ],
)
def test_go_duration(nanos, expected):
    assert goformat.go_duration(nanos) == expected


def test_identifier_key_and_time_and_float32():
    from flyteidl.core import identifier_pb2

    ident = identifier_pb2.Identifier(resource_type=1, project="p", name='a"b', version="v")
    assert (
        goformat.identifier_key(ident) == 'resource_type:TASK project:"p" name:"a\\"b" version:"v"'
    )
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert goformat.metav1_time(when) == "2024-01-02T01:04:05Z"
    assert goformat.float32_json(0.7) == 0.7


def _iface(**variables) -> interface_pb2.TypedInterface:
    iface = interface_pb2.TypedInterface()
    for name, simple in variables.items():
        iface.inputs.variables[name].type.simple = simple
    return iface


def _int(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def test_inputs_must_bind_every_variable_and_nothing_else():
    iface = _iface(a=types_pb2.INTEGER, b=types_pb2.INTEGER)
    build.check_inputs(iface, literals_pb2.LiteralMap(literals={"a": _int(1), "b": _int(2)}))
    with pytest.raises(FlyteWorkflowBuildError, match="parameter b not bound"):
        build.check_inputs(iface, literals_pb2.LiteralMap(literals={"a": _int(1)}))
    with pytest.raises(FlyteWorkflowBuildError, match="variable c not found"):
        build.check_inputs(
            iface, literals_pb2.LiteralMap(literals={"a": _int(1), "b": _int(1), "c": _int(1)})
        )
    with pytest.raises(FlyteWorkflowBuildError, match="mismatching"):
        build.check_inputs(
            _iface(a=types_pb2.STRING), literals_pb2.LiteralMap(literals={"a": _int(1)})
        )


def test_crd_files_match_the_source():
    for path in crd.MANIFEST_PATHS:
        assert path.read_text() == crd.render(), (
            "run: python -m flyteadmin.core.flyteworkflow.crd write"
        )
    names = crd.manifest()["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        "FlyteWorkflow",
        "flyteworkflows",
        ["fly"],
    )
