"""compile_task: propeller's task checks, one case per rule."""

from __future__ import annotations

import pytest
from flyteidl.core import tasks_pb2

from flyteadmin.core.compiler import CompileErrors, compile_task
from tests.unit.compiler.builders import INT, interface, task

R = tasks_pb2.Resources


def with_resources(**changes: list[tuple[int, str]]) -> tasks_pb2.TaskTemplate:
    template = task("t", {"a": INT}, {"o": INT})
    for side, entries in changes.items():
        for name, value in entries:
            getattr(template.container.resources, side).add(name=name, value=value)
    return template


def pod(spec: dict | None) -> tasks_pb2.TaskTemplate:
    template = tasks_pb2.TaskTemplate(id=task("t").id, type="sidecar", interface=interface())
    template.k8s_pod.SetInParent()
    if spec is not None:
        template.k8s_pod.pod_spec.SetInParent()
        template.k8s_pod.pod_spec.update(spec)
    return template


def no_id() -> tasks_pb2.TaskTemplate:
    template = task("t")
    template.ClearField("id")
    return template


def no_command() -> tasks_pb2.TaskTemplate:
    template = task("t", {"a": INT})
    del template.container.args[:]
    return template


def no_image() -> tasks_pb2.TaskTemplate:
    template = task("t")
    template.container.image = ""
    return template


def only_command() -> tasks_pb2.TaskTemplate:
    template = task("t", outputs={"o": INT})
    del template.container.args[:]
    template.container.command.append("run")
    return template


def no_io_no_command() -> tasks_pb2.TaskTemplate:
    template = task("t")
    del template.container.args[:]
    return template


FAILURES = [
    ("no id", no_id(), [("ValueRequired", "root", "Value required [Id].")]),
    ("no command", no_command(), [("ValueRequired", "container", "Value required [command].")]),
    ("no image", no_image(), [("ValueRequired", "container", "Value required [image].")]),
    (
        "bad request quantity",
        with_resources(requests=[(R.CPU, "2x")]),
        [("UnrecognizedValue", "resources.CPU", "Unrecognized value [2x].")],
    ),
    (
        "bad limit quantity",
        with_resources(limits=[(R.MEMORY, "1GB")]),
        [("UnrecognizedValue", "resources.MEMORY", "Unrecognized value [1GB].")],
    ),
    ("pod without spec", pod(None), [("InvalidValue", "root", "Invalid value [k8s pod spec].")]),
    (
        "pod containers not a list",
        pod({"containers": "x"}),
        [("InvalidValue", "root", "Invalid value [k8s pod spec].")],
    ),
    (
        "pod container name not a string",
        pod({"containers": [{"name": 3}]}),
        [("InvalidValue", "root", "Invalid value [k8s pod spec].")],
    ),
    (
        "pod container name not DNS-1123",
        pod({"containers": [{"name": "Primary_1"}, {"name": "ok"}, {}]}),
        [("InvalidValue", "root", "Invalid value [k8s pod spec container name].")],
    ),
]


@pytest.mark.parametrize(
    ("template", "expected"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES]
)
def test_compile_task_errors(
    template: tasks_pb2.TaskTemplate, expected: list[tuple[str, str, str]]
) -> None:
    with pytest.raises(CompileErrors) as caught:
        compile_task(template)
    got = [(str(e.code), e.node_id, e.message) for e in caught.value.errors]
    assert got == expected


def test_errors_are_collected_not_first_only() -> None:
    template = no_command()
    template.ClearField("id")
    template.container.image = ""
    with pytest.raises(CompileErrors) as caught:
        compile_task(template)
    assert str(caught.value) == (
        "Collected Errors: 3\n"
        "\tError 0: Code: ValueRequired, Node Id: container, Description: Value required "
        "[command].\n"
        "\tError 1: Code: ValueRequired, Node Id: container, Description: Value required "
        "[image].\n"
        "\tError 2: Code: ValueRequired, Node Id: root, Description: Value required [Id].\n"
    )


@pytest.mark.parametrize(
    "template",
    [
        task("t", {"a": INT}, {"o": INT}),
        only_command(),
        no_io_no_command(),
        with_resources(requests=[(R.CPU, "500m"), (R.MEMORY, "1.5Gi")], limits=[(R.GPU, "1")]),
        pod({"containers": [{"name": "primary"}, {"name": "sidecar-1"}]}),
        pod({}),
        tasks_pb2.TaskTemplate(id=task("t").id, type="echo"),  # no target at all
    ],
    ids=["container", "command only", "no io", "quantities", "pod", "empty pod", "no target"],
)
def test_compile_task_accepts(template: tasks_pb2.TaskTemplate) -> None:
    compiled = compile_task(template)
    assert compiled.template == template
