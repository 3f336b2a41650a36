"""Task resources (§5.2): admin completes every container task's requests and limits with
flyteplugins' ``AdjustOrDefaultResource`` before the tasks go into the FlyteWorkflow."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flyteidl.core import tasks_pb2

from flyteadmin.core.quantities import Quantity, QuantityError, parse_quantity

R = tasks_pb2.Resources
ZERO = parse_quantity("0")

# resolved["taskResources"] key -> IDL resource name, in the order admin appends them
_PLATFORM_KEYS = {
    R.CPU: "cpu",
    R.MEMORY: "memory",
    R.EPHEMERAL_STORAGE: "ephemeral_storage",
    R.GPU: "gpu",
}
# k8s resource names used by flytek8s.ToK8sResourceList (nvidia is its fixed GPU name)
_K8S_NAMES = {
    R.CPU: "cpu",
    R.MEMORY: "memory",
    R.GPU: "nvidia.com/gpu",
    R.EPHEMERAL_STORAGE: "ephemeral-storage",
}


@dataclass(frozen=True)
class Requirement:
    request: Quantity
    limit: Quantity


def _cap(value: Quantity, limit: Quantity) -> Quantity:
    if value.is_zero() or limit.is_zero():
        return value
    return limit if value > limit else value


def adjust_or_default_resource(
    request: Quantity, limit: Quantity, platform_default: Quantity, platform_limit: Quantity
) -> Requirement:
    """A missing request takes the limit, else the platform default; a missing limit takes the
    request; both are capped at the platform limit, then the request at the limit."""
    if request.is_zero():
        request = limit if not limit.is_zero() else platform_default
    if limit.is_zero():
        limit = request
    request = _cap(request, platform_limit)
    limit = _cap(limit, platform_limit)
    return Requirement(_cap(request, limit), limit)


def _quietly(text: str) -> Quantity:
    # admin's parseQuantityNoError: an unparsable value counts as unset
    try:
        return parse_quantity(text)
    except QuantityError:
        return ZERO


def _as_set(entries: Iterable[tasks_pb2.Resources.ResourceEntry]) -> dict[int, Quantity]:
    return {e.name: _quietly(e.value) for e in entries if e.name in _PLATFORM_KEYS}


def platform_set(section: Mapping[str, Any]) -> dict[int, Quantity]:
    """One side (``defaults`` or ``limits``) of ``resolved["taskResources"]``."""
    out: dict[int, Quantity] = {}
    for name, key in _PLATFORM_KEYS.items():
        text = section.get(key) or section.get(_camel(key)) or ""
        out[name] = _quietly(str(text)) if text else ZERO
    return out


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)


def complete_container_resources(
    task: tasks_pb2.TaskTemplate, defaults: Mapping[int, Quantity], limits: Mapping[int, Quantity]
) -> None:
    """``setCompiledTaskDefaults``, in place: CPU and memory always; ephemeral storage and GPU
    only when the task or the platform defaults mention them. Non-container tasks are left."""
    if not task.HasField("container"):
        return
    current = task.container.resources
    requested, limited = _as_set(current.requests), _as_set(current.limits)
    out = R()
    for name in _PLATFORM_KEYS:
        req, lim = requested.get(name, ZERO), limited.get(name, ZERO)
        default = defaults.get(name, ZERO)
        optional = name in (R.EPHEMERAL_STORAGE, R.GPU)
        if optional and req.is_zero() and lim.is_zero() and default.is_zero():
            continue
        adjusted = adjust_or_default_resource(req, lim, default, limits.get(name, ZERO))
        out.requests.add(name=name, value=str(adjusted.request))
        out.limits.add(name=name, value=str(adjusted.limit))
    task.container.resources.CopyFrom(out)


def task_resource_spec(values: Mapping[int, Quantity]) -> dict[str, str]:
    """``v1alpha1.TaskResourceSpec`` (no json tags; zero ``resource.Quantity`` is "0")."""
    return {
        "CPU": str(values.get(R.CPU, ZERO)),
        "Memory": str(values.get(R.MEMORY, ZERO)),
        "EphemeralStorage": str(values.get(R.EPHEMERAL_STORAGE, ZERO)),
        "Storage": "0",  # admin never sets it
        "GPU": str(values.get(R.GPU, ZERO)),
    }


def k8s_resource_requirements(resources: R | None) -> dict[str, Any]:
    """``flytek8s.ToK8sResourceRequirements`` for a node's resource override: zero values are
    dropped, quantities canonical. Raises ``QuantityError`` like the Go code fails."""
    out: dict[str, Any] = {}
    if resources is None:
        return out
    for side, entries in (("limits", resources.limits), ("requests", resources.requests)):
        values = {}
        for entry in entries:
            quantity = parse_quantity(entry.value)
            if entry.name in _K8S_NAMES and not quantity.is_zero():
                values[_K8S_NAMES[entry.name]] = str(quantity)
        if values:
            out[side] = values
    return out
