"""Task compilation: flytepropeller's ``CompileTask`` checks (``compiler/task_compiler.go``).

Platform resource limits, the type whitelist and the other CreateTask checks are flyteadmin's
and live with the service; this is only what the compiler itself rejects.
"""

from __future__ import annotations

import json
import re

from flyteidl.core import compiler_pb2, tasks_pb2
from google.protobuf import json_format

from flyteadmin.core.compiler import errors as e
from flyteadmin.core.quantities import QuantityError, parse_quantity

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_quantity(value: str) -> bool:
    try:
        parse_quantity(value)
    except QuantityError:
        return False
    return True


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS1123_LABEL.match(value))


def compile_task(template: tasks_pb2.TaskTemplate) -> compiler_pb2.CompiledTask:
    """The CompiledTask wrapping a copy of ``template``; raises ``CompileErrors``."""
    errors = e.Collector()
    if not template.HasField("id"):
        errors.add(e.value_required("root", "Id"))
    target = template.WhichOneof("target")
    if target == "container":
        _check_container(template, errors)
    elif target == "k8s_pod":
        _check_pod(template, errors)
    errors.raise_if_any()
    compiled = compiler_pb2.CompiledTask()
    compiled.template.CopyFrom(template)
    return compiled


def _check_container(template: tasks_pb2.TaskTemplate, errors: e.Collector) -> None:
    container = template.container
    interface = template.interface
    has_io = len(interface.inputs.variables) > 0 or len(interface.outputs.variables) > 0
    # With inputs or outputs, something must read and write them: command or args.
    if has_io and not container.command and not container.args:
        errors.add(e.value_required("container", "command"))
    if not container.image:
        errors.add(e.value_required("container", "image"))
    for entry in [*container.resources.requests, *container.resources.limits]:
        if not is_quantity(entry.value):
            name = tasks_pb2.Resources.ResourceName.Name(entry.name)
            errors.add(e.unrecognized_value(f"resources.{name}", entry.value))


def _check_pod(template: tasks_pb2.TaskTemplate, errors: e.Collector) -> None:
    pod = template.k8s_pod
    if not pod.HasField("pod_spec"):
        errors.add(e.invalid_value("root", "k8s pod spec"))  # nil struct: unmarshal fails
        return
    spec = json.loads(json_format.MessageToJson(pod.pod_spec))
    containers = spec.get("containers")
    # What decoding into a v1.PodSpec would reject: containers not a list of objects, or a
    # container name that is not a string.
    if containers is None:
        containers = []
    if not isinstance(containers, list) or not all(
        c is None or (isinstance(c, dict) and isinstance(c.get("name"), (str, type(None))))
        for c in containers
    ):
        errors.add(e.invalid_value("root", "k8s pod spec"))
        return
    for container in containers:
        name = (container or {}).get("name") or ""
        if not is_dns1123_label(name):
            errors.add(e.invalid_value("root", "k8s pod spec container name"))
