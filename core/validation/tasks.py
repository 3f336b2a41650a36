"""Checks of CreateTask (flyteadmin-behaviour.md §3.1, steps 1 and 3-9), pure.

Step 2 (the project/domain check) needs the store, so it is the caller's: either call
``validate_task_identifier``, then the project/domain check, then ``validate_task_spec``; or pass
the check to ``validate_task_request``, which runs all three in that order.

Resource checks differ from flyteadmin in three deliberate ways: quantities compare exactly
(flyteadmin rounds both sides up to whole units, so 1500m vs a 1200m limit passes there); a
limit above the platform limit is rejected even when no request is set (§3.1 as written; Go
only checks it next to a request); and the same rules apply to pod-spec containers as to
container targets (Go skips the GPU whole-number rule there, and a malformed pod spec is an
INTERNAL error there, INVALID_ARGUMENT here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from flyteidl.admin import matchable_resource_pb2, task_pb2
from flyteidl.core import identifier_pb2, tasks_pb2
from google.protobuf import json_format

from flyteadmin.core.config import TaskResourceSet, TaskTypeScope
from flyteadmin.core.errors import invalid_argument, missing
from flyteadmin.core.quantities import Quantity, QuantityError, parse_quantity
from flyteadmin.core.validation.identifiers import proto_text, validate_identifier

Resources = tasks_pb2.Resources
CPU, GPU = Resources.ResourceName.CPU, Resources.ResourceName.GPU
MEMORY, EPHEMERAL_STORAGE = Resources.ResourceName.MEMORY, Resources.ResourceName.EPHEMERAL_STORAGE
_CHECKED = (CPU, MEMORY, GPU, EPHEMERAL_STORAGE)  # others (STORAGE, UNKNOWN) pass unchecked
_POD_NAMES = {"cpu": CPU, "memory": MEMORY, "gpu": GPU, "ephemeral_storage": EPHEMERAL_STORAGE}
_K8S_DOCS = "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
_PLATFORM_HINT = "Please contact Flyte Admins to change these limits or consult the configuration"


TaskResourceLimits = TaskResourceSet
"""The platform limits a task's resources are checked against."""

TaskTypeWhitelist = Mapping[str, Sequence[TaskTypeScope | tuple[str, str]]]
"""``task_type_whitelist``: task type -> scopes. Types not listed (or listed with no scopes)
are allowed everywhere."""


def limits_from_attributes(
    matchable: matchable_resource_pb2.TaskResourceAttributes | None,
    defaults: TaskResourceLimits,
) -> TaskResourceLimits:
    """The platform limits for a project/domain: the TASK_RESOURCE attribute's ``limits`` where
    set, the configured ones elsewhere. flyteadmin instead drops every configured limit once
    an attribute exists, so a project attribute setting only memory would lift the CPU cap;
    unparseable attribute values (never validated on update) are likewise ignored here rather
    than lifting the cap."""
    if matchable is None or not matchable.HasField("limits"):
        return defaults
    overrides = {}
    for f in fields(TaskResourceSet):
        text = getattr(matchable.limits, f.name)
        if text and _parses(text):
            overrides[f.name] = text
    return replace(defaults, **overrides)


def _parses(text: str) -> bool:
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


# --- the checks ------------------------------------------------------------------------------


def validate_task_identifier(request: task_pb2.TaskCreateRequest) -> None:
    """Step 1: IV(TASK)."""
    validate_identifier(request.id if request.HasField("id") else None, identifier_pb2.TASK)


def validate_task_request(
    request: task_pb2.TaskCreateRequest,
    *,
    whitelist: TaskTypeWhitelist,
    limits: TaskResourceLimits,
    check_project_domain: Callable[[str, str], None] | None = None,
) -> None:
    """Steps 1-9 in flyteadmin's order; step 2 is ``check_project_domain(project, domain)``."""
    validate_task_identifier(request)
    if check_project_domain is not None:
        check_project_domain(request.id.project, request.id.domain)
    validate_task_spec(request, whitelist=whitelist, limits=limits)


def validate_task_spec(
    request: task_pb2.TaskCreateRequest,
    *,
    whitelist: TaskTypeWhitelist,
    limits: TaskResourceLimits,
) -> None:
    """Steps 3-9. Assumes step 1 passed (the whitelist reads the request id)."""
    if not (request.HasField("spec") and request.spec.HasField("template")):
        raise missing("spec")
    template = request.spec.template
    if not template.type:
        raise missing("type")
    _check_whitelisted(template.type, request.id, whitelist)
    if not template.HasField("metadata"):
        raise missing("metadata")
    if template.metadata.HasField("runtime") and not template.metadata.runtime.version:
        raise missing("runtime version")
    if not template.HasField("interface"):
        raise missing("typed interface")
    target = template.WhichOneof("target")
    if target == "container":
        _check_container(template, limits)
    elif target == "k8s_pod":
        _check_pod(template, limits)


def _check_whitelisted(
    task_type: str, task_id: identifier_pb2.Identifier, whitelist: TaskTypeWhitelist
) -> None:
    scopes = whitelist.get(task_type)
    if not scopes:
        return
    for scope in scopes:
        project, domain = scope if isinstance(scope, tuple) else (scope.project, scope.domain)
        if not project or (project == task_id.project and domain in ("", task_id.domain)):
            return
    raise invalid_argument("task type must be whitelisted before use")


def _check_container(template: tasks_pb2.TaskTemplate, limits: TaskResourceLimits) -> None:
    if not template.container.image:
        raise missing("image")
    if not template.container.HasField("resources"):
        return
    label = _task_label(template)
    resources = template.container.resources
    requests = _quantities(((e.name, e.value) for e in resources.requests), label)
    limit_values = _quantities(((e.name, e.value) for e in resources.limits), label)
    _check_resources(label, requests, limit_values, _platform(limits))


def _check_pod(template: tasks_pb2.TaskTemplate, limits: TaskResourceLimits) -> None:
    if not template.k8s_pod.HasField("pod_spec"):
        raise invalid_argument(
            "invalid TaskSpecification, pod tasks should specify their target as a K8sPod "
            "with a defined pod spec"
        )
    label = _task_label(template)
    platform = _platform(limits)
    pod_spec = json_format.MessageToDict(template.k8s_pod.pod_spec)
    containers = _pod_field(pod_spec, "containers", list, "containers")
    for index, container in enumerate(containers):
        where = f"containers[{index}]"
        if not isinstance(container, dict):
            raise _bad_pod_spec(where, dict)
        resources = _pod_field(container, "resources", dict, f"{where}.resources")
        requests, limit_values = (
            _quantities(_pod_entries(resources, key, f"{where}.resources.{key}"), label)
            for key in ("requests", "limits")
        )
        _check_resources(label, requests, limit_values, platform)


def _pod_field(parent: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = parent.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise _bad_pod_spec(where, kind)
    return value


def _pod_entries(resources: dict[str, Any], key: str, where: str) -> list[tuple[int | str, str]]:
    """A k8s ResourceList as (flyte name or k8s name, quantity text) pairs, as Go decodes it."""
    entries: list[tuple[int | str, str]] = []
    for name, value in _pod_field(resources, key, dict, where).items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise invalid_argument(
                f"invalid pod spec: {where}[{name}] must be a quantity string or number"
            )
        text = value.strip() if isinstance(value, str) else _number_text(value)
        entries.append((_POD_NAMES.get(name.replace("-", "_").lower(), name), text))
    return entries


def _number_text(value: float) -> str:
    # Struct numbers are doubles; Go writes integral ones without a fraction.
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e21 else repr(value)


def _bad_pod_spec(where: str, kind: type) -> Exception:
    noun = "a list" if kind is list else "an object"
    return invalid_argument(f"invalid pod spec: {where} must be {noun}")


def _task_label(template: tasks_pb2.TaskTemplate) -> str:
    """How flyteadmin prints the task in resource messages: the template's own id."""
    return proto_text(template.id) if template.HasField("id") else "<nil>"


def _platform(limits: TaskResourceLimits) -> dict[int, Quantity]:
    """Set, parseable, non-zero platform limits; the others are not enforced."""
    platform: dict[int, Quantity] = {}
    for name, text in (
        (CPU, limits.cpu),
        (MEMORY, limits.memory),
        (GPU, limits.gpu),
        (EPHEMERAL_STORAGE, limits.ephemeral_storage),
    ):
        try:
            quantity = parse_quantity(text) if text else None
        except QuantityError:
            quantity = None
        if quantity is not None and not quantity.is_zero():
            platform[name] = quantity
    return platform


def _resource_name(name: int | str) -> str:
    return Resources.ResourceName.Name(name) if isinstance(name, int) else name


def _quantities(entries: Iterable[tuple[int | str, str]], label: str) -> dict[int, Quantity]:
    """Parse the checked resources of one list, in order; each at most once."""
    parsed: dict[int, Quantity] = {}
    for name, value in entries:
        if name not in _CHECKED:
            if isinstance(name, str):  # a k8s-only resource (nvidia.com/gpu): k8s still parses it
                _parse(name, value)
            continue
        assert isinstance(name, int)
        if name in parsed:
            raise invalid_argument(
                f"can't specify {_resource_name(name)} limit for task [{label}] multiple times"
            )
        quantity = _parse(name, value)
        if name == GPU and not quantity.is_whole():
            raise invalid_argument(
                f"gpu for [{label}] must be a whole number, got: {value} instead"
            )
        parsed[name] = quantity
    return parsed


def _parse(name: int | str, value: str) -> Quantity:
    try:
        return parse_quantity(value)
    except QuantityError as err:
        raise invalid_argument(
            f"Parsing of {_resource_name(name)} request failed for value {value} - reason  "
            f"{err}. Please follow K8s conventions for resources {_K8S_DOCS}"
        ) from None


def _check_resources(
    label: str,
    requests: dict[int, Quantity],
    limits: dict[int, Quantity],
    platform: dict[int, Quantity],
) -> None:
    for name, request in requests.items():
        limit, cap, shown = limits.get(name), platform.get(name), _resource_name(name)
        if name == GPU:
            if limit is not None and limit != request:
                raise invalid_argument(
                    "For extended resource 'gpu' the default value must equal the limit value "
                    f"for task [{label}]"
                )
        elif limit is not None and limit < request:
            raise invalid_argument(
                f"Requested {shown} default [{request}] is greater than the limit [{limit}]. "
                "Please fix your configuration"
            )
        elif limit is not None and cap is not None and limit > cap:
            raise _over_platform(shown, "limit", limit, cap)
        if cap is not None and request > cap:
            raise _over_platform(shown, "default", request, cap)
    for name, limit in limits.items():
        cap = platform.get(name)
        if name not in requests and name != GPU and cap is not None and limit > cap:
            raise _over_platform(_resource_name(name), "limit", limit, cap)


def _over_platform(shown: str, kind: str, value: Quantity, cap: Quantity) -> Exception:
    return invalid_argument(
        f"Requested {shown} {kind} [{value}] is greater than current limit set in the platform "
        f"configuration [{cap}]. {_PLATFORM_HINT}"
    )
