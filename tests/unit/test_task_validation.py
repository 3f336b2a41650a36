"""CreateTask checks (flyteadmin-behaviour.md §3.1): each row a request and the exact outcome."""

from __future__ import annotations

from typing import Any

import pytest
from flyteidl.admin import matchable_resource_pb2, task_pb2
from flyteidl.core import identifier_pb2, interface_pb2, tasks_pb2
from google.protobuf import struct_pb2

from flyteadmin.core.config import TaskResourceSettings, TaskTypeScope
from flyteadmin.core.errors import AdminError, Code, invalid_argument
from flyteadmin.core.quantities import FORMAT_WRONG
from flyteadmin.core.validation.tasks import (
    TaskResourceLimits,
    limits_from_attributes,
    validate_task_identifier,
    validate_task_request,
    validate_task_spec,
)

R = tasks_pb2.Resources
CPU, GPU, MEMORY = R.ResourceName.CPU, R.ResourceName.GPU, R.ResourceName.MEMORY
EPHEMERAL, STORAGE = R.ResourceName.EPHEMERAL_STORAGE, R.ResourceName.STORAGE
ID = identifier_pb2.Identifier(
    resource_type=identifier_pb2.TASK, project="p", domain="d", name="n", version="v"
)
LABEL = 'resource_type:TASK project:"p" domain:"d" name:"n" version:"v"'
LIMITS = TaskResourceSettings().limits  # cpu 2, memory 1Gi, gpu 1
WHITELIST = {
    "spark": [("flytekit", "production")],
    "sidecar": [TaskTypeScope(project="flytekit")],
    "hive": [TaskTypeScope()],
    "anything": [],
}
PLATFORM = (
    "is greater than current limit set in the platform configuration [{}]. Please contact "
    "Flyte Admins to change these limits or consult the configuration"
)


def template(**fields: Any) -> tasks_pb2.TaskTemplate:
    values: dict[str, Any] = dict(
        id=ID,
        type="python-task",
        metadata=tasks_pb2.TaskMetadata(runtime=tasks_pb2.RuntimeMetadata(version="1.16")),
        interface=interface_pb2.TypedInterface(),
        container=tasks_pb2.Container(image="img"),
    )
    values.update(fields)
    return tasks_pb2.TaskTemplate(**{k: v for k, v in values.items() if v is not None})


def create(tmpl: tasks_pb2.TaskTemplate | None = None, **fields: Any) -> task_pb2.TaskCreateRequest:
    values: dict[str, Any] = dict(id=ID, spec=task_pb2.TaskSpec(template=tmpl or template()))
    values.update(fields)
    return task_pb2.TaskCreateRequest(**{k: v for k, v in values.items() if v is not None})


def entries(*pairs: tuple[int, str]) -> list[tasks_pb2.Resources.ResourceEntry]:
    return [R.ResourceEntry(name=name, value=value) for name, value in pairs]


def container(requests=(), limits=()) -> task_pb2.TaskCreateRequest:
    resources = R(requests=entries(*requests), limits=entries(*limits))
    return create(template(container=tasks_pb2.Container(image="img", resources=resources)))


def pod(*containers: Any, spec: Any = None) -> task_pb2.TaskCreateRequest:
    pod_spec = struct_pb2.Struct()
    pod_spec.update(spec if spec is not None else {"containers": list(containers)})
    return create(template(container=None, k8s_pod=tasks_pb2.K8sPod(pod_spec=pod_spec)))


def resources(requests: dict | None = None, limits: dict | None = None) -> dict:
    body: dict[str, Any] = {}
    if requests is not None:
        body["requests"] = requests
    if limits is not None:
        body["limits"] = limits
    return {"name": "primary", "image": "img", "resources": body}


def bad(message: str) -> tuple[Code, str]:
    return Code.INVALID_ARGUMENT, message


def outcome(call) -> tuple[Code, str] | None:
    try:
        call()
    except AdminError as err:
        return err.code, err.message
    return None


def check(request: task_pb2.TaskCreateRequest, limits: TaskResourceLimits = LIMITS):
    return outcome(lambda: validate_task_request(request, whitelist=WHITELIST, limits=limits))


def parse_error(name: str, value: str, reason: str = FORMAT_WRONG) -> tuple[Code, str]:
    return bad(
        f"Parsing of {name} request failed for value {value} - reason  {reason}. Please follow "
        "K8s conventions for resources "
        "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
    )


def above_limit(name: str, request: str, limit: str) -> tuple[Code, str]:
    return bad(
        f"Requested {name} default [{request}] is greater than the limit [{limit}]. "
        "Please fix your configuration"
    )


def over(name: str, kind: str, value: str, cap: str) -> tuple[Code, str]:
    return bad(f"Requested {name} {kind} [{value}] " + PLATFORM.format(cap))


# --- steps 1 and 3-9, in order ------------------------------------------------------------------

NO_META = template(metadata=None)
WRONG_TYPE_ID = identifier_pb2.Identifier(
    resource_type=identifier_pb2.WORKFLOW, project="p", domain="d", name="n", version="v"
)


@pytest.mark.parametrize(
    "request_, error",
    [
        (create(), None),
        (create(template(container=None)), None),  # no target at all: nothing more to check
        # step 1
        (create(id=None), bad("missing id")),
        (
            create(id=WRONG_TYPE_ID),
            bad(
                "unexpected resource type workflow for identifier [resource_type:WORKFLOW "
                'project:"p" domain:"d" name:"n" version:"v"], expected task instead'
            ),
        ),
        (
            create(id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK, project="p")),
            bad("missing domain"),
        ),
        # step 3
        (create(spec=None), bad("missing spec")),
        (create(spec=task_pb2.TaskSpec()), bad("missing spec")),
        # step 4
        (create(template(type="")), bad("missing type")),
        # step 5
        (create(template(type="spark")), bad("task type must be whitelisted before use")),
        (create(template(type="sidecar")), bad("task type must be whitelisted before use")),
        (create(template(type="hive")), None),
        (create(template(type="anything")), None),
        # step 6
        (create(template(metadata=None)), bad("missing metadata")),
        (create(template(metadata=tasks_pb2.TaskMetadata())), None),
        (
            create(template(metadata=tasks_pb2.TaskMetadata(runtime=tasks_pb2.RuntimeMetadata()))),
            bad("missing runtime version"),
        ),
        # step 7
        (create(template(interface=None)), bad("missing typed interface")),
        # step 8
        (create(template(container=tasks_pb2.Container())), bad("missing image")),
        # step 9
        (
            create(template(container=None, k8s_pod=tasks_pb2.K8sPod())),
            bad(
                "invalid TaskSpecification, pod tasks should specify their target as a K8sPod "
                "with a defined pod spec"
            ),
        ),
        # the first failing rule wins
        (create(id=None, spec=None), bad("missing id")),
        (create(template(type="", metadata=None)), bad("missing type")),
        (
            create(template(type="spark", metadata=None)),
            bad("task type must be whitelisted before use"),
        ),
        (create(template(metadata=None, interface=None)), bad("missing metadata")),
        (
            create(template(interface=None, container=tasks_pb2.Container())),
            bad("missing typed interface"),
        ),
    ],
)
def test_task_rules_in_order(request_, error):
    assert check(request_) == error


@pytest.mark.parametrize(
    "project, domain, scopes, allowed",
    [
        ("flytekit", "production", [("flytekit", "production")], True),
        ("flytekit", "development", [("flytekit", "production")], False),
        ("other", "production", [("flytekit", "production")], False),
        ("other", "production", [("flytekit", "production"), ("other", "")], True),
        ("any", "any", [("", "production")], True),  # an empty project matches every domain too
        ("flytekit", "any", [TaskTypeScope("flytekit", "")], True),
        ("any", "any", [], True),
    ],
)
def test_whitelist_scopes(project, domain, scopes, allowed):
    task_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.TASK, project=project, domain=domain, name="n", version="v"
    )
    request = create(template(type="spark"), id=task_id)
    result = outcome(
        lambda: validate_task_spec(request, whitelist={"spark": scopes}, limits=LIMITS)
    )
    assert result == (None if allowed else bad("task type must be whitelisted before use"))


def test_project_domain_check_runs_between_the_identifier_and_the_spec():
    calls = []

    def check_project_domain(project: str, domain: str) -> None:
        calls.append((project, domain))
        raise invalid_argument("domain [d] is unrecognized by system")

    def run(request: task_pb2.TaskCreateRequest):
        return outcome(
            lambda: validate_task_request(
                request, whitelist={}, limits=LIMITS, check_project_domain=check_project_domain
            )
        )

    assert run(create(id=None, spec=None)) == bad("missing id") and calls == []
    assert run(create(spec=None)) == bad("domain [d] is unrecognized by system")
    assert calls == [("p", "d")]


def test_the_steps_can_run_separately():
    validate_task_identifier(create())
    validate_task_spec(create(), whitelist={}, limits=LIMITS)
    with pytest.raises(AdminError, match="^missing id$"):
        validate_task_identifier(create(id=None))
    with pytest.raises(AdminError, match="^missing spec$"):
        validate_task_spec(create(spec=None), whitelist={}, limits=LIMITS)


# --- container resources ----------------------------------------------------------------------

EPHEMERAL_CAP = TaskResourceLimits(cpu="2", memory="1Gi", gpu="1", ephemeral_storage="10Gi")


@pytest.mark.parametrize(
    "request_, limits, error",
    [
        (container([(CPU, "1"), (MEMORY, "500Mi")], [(CPU, "2"), (MEMORY, "1Gi")]), LIMITS, None),
        (container([(CPU, "2000m")], [(CPU, "2")]), LIMITS, None),  # 2000m == 2
        (container([(MEMORY, "1G")], [(MEMORY, "1Gi")]), LIMITS, None),  # 1G < 1Gi
        (container([(GPU, "1")], [(GPU, "1")]), LIMITS, None),
        (container([], [(GPU, "4")]), LIMITS, None),  # only a GPU request is capped
        (container([(STORAGE, "not a quantity")]), LIMITS, None),  # unchecked resource
        (container([(EPHEMERAL, "1Ti")]), LIMITS, None),  # no platform limit configured
        (container([(CPU, "100")]), TaskResourceLimits(cpu="0"), None),  # zero: not enforced
        # each resource at most once per list
        (
            container([(CPU, "1"), (CPU, "2")]),
            LIMITS,
            bad(f"can't specify CPU limit for task [{LABEL}] multiple times"),
        ),
        (
            container([], [(MEMORY, "1Gi"), (MEMORY, "1Gi")]),
            LIMITS,
            bad(f"can't specify MEMORY limit for task [{LABEL}] multiple times"),
        ),
        # values parse as quantities
        (container([(MEMORY, "1GB")]), LIMITS, parse_error("MEMORY", "1GB")),
        (container([], [(CPU, "")]), LIMITS, parse_error("CPU", "")),
        (
            container([(EPHEMERAL, "1Ki1")]),
            LIMITS,
            parse_error("EPHEMERAL_STORAGE", "1Ki1", "unable to parse quantity's suffix"),
        ),
        # GPU: whole, request == limit, request <= platform
        (
            container([(GPU, "0.5")]),
            LIMITS,
            bad(f"gpu for [{LABEL}] must be a whole number, got: 0.5 instead"),
        ),
        (
            container([], [(GPU, "1500m")]),
            LIMITS,
            bad(f"gpu for [{LABEL}] must be a whole number, got: 1500m instead"),
        ),
        (
            container([(GPU, "1")], [(GPU, "2")]),
            LIMITS,
            bad(
                "For extended resource 'gpu' the default value must equal the limit value for "
                f"task [{LABEL}]"
            ),
        ),
        (container([(GPU, "2")], [(GPU, "2")]), LIMITS, over("GPU", "default", "2", "1")),
        # CPU, memory, ephemeral storage: request <= limit <= platform, request <= platform
        (
            container([(CPU, "2")], [(CPU, "1")]),
            LIMITS,
            above_limit("CPU", "2", "1"),
        ),
        (
            container([(CPU, "1500m")], [(CPU, "1200m")]),  # flyteadmin rounds both to 2 and passes
            LIMITS,
            above_limit("CPU", "1500m", "1200m"),
        ),
        (
            container([(MEMORY, "1Gi")], [(MEMORY, "2Gi")]),
            LIMITS,
            over("MEMORY", "limit", "2Gi", "1Gi"),
        ),
        (container([(MEMORY, "1.1G")]), LIMITS, over("MEMORY", "default", "1100M", "1Gi")),
        (container([(CPU, "2001m")]), LIMITS, over("CPU", "default", "2001m", "2")),
        (container([], [(CPU, "3")]), LIMITS, over("CPU", "limit", "3", "2")),
        (
            container([(EPHEMERAL, "20Gi")]),
            EPHEMERAL_CAP,
            over("EPHEMERAL_STORAGE", "default", "20Gi", "10Gi"),
        ),
        (
            container([], [(EPHEMERAL, "11Gi")]),
            EPHEMERAL_CAP,
            over("EPHEMERAL_STORAGE", "limit", "11Gi", "10Gi"),
        ),
        # the first failing rule wins: all of requests are read before limits, then compared
        (
            container([(CPU, "3"), (MEMORY, "x")], [(CPU, "1"), (CPU, "1")]),
            LIMITS,
            parse_error("MEMORY", "x"),
        ),
        (
            container([(CPU, "3")], [(CPU, "1"), (CPU, "1")]),
            LIMITS,
            bad(f"can't specify CPU limit for task [{LABEL}] multiple times"),
        ),
        (
            container([(MEMORY, "2Gi"), (CPU, "3")]),
            LIMITS,
            over("MEMORY", "default", "2Gi", "1Gi"),
        ),
        (
            container([(CPU, "3")], [(CPU, "1")]),
            LIMITS,
            above_limit("CPU", "3", "1"),
        ),
        (container([(CPU, "1")], [(CPU, "3")]), LIMITS, over("CPU", "limit", "3", "2")),
    ],
)
def test_container_resources(request_, limits, error):
    assert check(request_, limits) == error


def test_resource_messages_name_the_template_id():
    tmpl = template(
        id=identifier_pb2.Identifier(name="t"),
        container=tasks_pb2.Container(image="i", resources=R(requests=entries((GPU, "0.5")))),
    )
    assert check(create(tmpl)) == bad('gpu for [name:"t"] must be a whole number, got: 0.5 instead')
    tmpl.ClearField("id")
    assert check(create(tmpl)) == bad("gpu for [<nil>] must be a whole number, got: 0.5 instead")


# --- pod spec resources -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_, limits, error",
    [
        (
            pod(resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "2", "memory": "1Gi"})),
            LIMITS,
            None,
        ),
        (pod({"name": "primary", "image": "img"}), LIMITS, None),
        (pod(spec={}), LIMITS, None),
        (pod(resources({"cpu": 0.5, "nvidia.com/gpu": "0.5"})), LIMITS, None),  # k8s names only
        (pod(resources({"cpu": "  2 "})), LIMITS, None),  # k8s trims strings
        (pod(resources({"cpu": None})), LIMITS, None),
        (pod(resources({"cpu": "3"})), LIMITS, over("CPU", "default", "3", "2")),
        (pod(resources({"cpu": 3})), LIMITS, over("CPU", "default", "3", "2")),
        (pod(resources(limits={"memory": "2Gi"})), LIMITS, over("MEMORY", "limit", "2Gi", "1Gi")),
        (
            pod(resources({"ephemeral-storage": "20Gi"})),
            EPHEMERAL_CAP,
            over("EPHEMERAL_STORAGE", "default", "20Gi", "10Gi"),
        ),
        (
            pod(resources({"memory": "2Gi"}, {"memory": "1Gi"})),
            LIMITS,
            above_limit("MEMORY", "2Gi", "1Gi"),
        ),
        (
            pod(resources({"gpu": "1"}, {"gpu": "0"})),
            LIMITS,
            bad(
                "For extended resource 'gpu' the default value must equal the limit value for "
                f"task [{LABEL}]"
            ),
        ),
        (
            pod(resources({"gpu": "1.5"})),
            LIMITS,
            bad(f"gpu for [{LABEL}] must be a whole number, got: 1.5 instead"),
        ),
        # every container is checked, in order
        (
            pod(resources({"cpu": "1"}), resources({"memory": "3Gi"}), resources({"cpu": "9"})),
            LIMITS,
            over("MEMORY", "default", "3Gi", "1Gi"),
        ),
        (pod(resources({"memory": "lots"})), LIMITS, parse_error("MEMORY", "lots")),
        (pod(resources({"nvidia.com/gpu": "x"})), LIMITS, parse_error("nvidia.com/gpu", "x")),
        # a pod spec that does not decode as a PodSpec
        (pod(spec={"containers": {}}), LIMITS, bad("invalid pod spec: containers must be a list")),
        (
            pod(spec={"containers": ["c"]}),
            LIMITS,
            bad("invalid pod spec: containers[0] must be an object"),
        ),
        (
            pod({"name": "c", "resources": []}),
            LIMITS,
            bad("invalid pod spec: containers[0].resources must be an object"),
        ),
        (
            pod(resources(limits=["1"])),
            LIMITS,
            bad("invalid pod spec: containers[0].resources.limits must be an object"),
        ),
        (
            pod(resources({"cpu": True})),
            LIMITS,
            bad(
                "invalid pod spec: containers[0].resources.requests[cpu] must be a quantity "
                "string or number"
            ),
        ),
    ],
)
def test_pod_resources(request_, limits, error):
    assert check(request_, limits) == error


# --- platform limits ---------------------------------------------------------------------------


def attributes(**limits: str) -> matchable_resource_pb2.TaskResourceAttributes:
    return matchable_resource_pb2.TaskResourceAttributes(
        defaults=matchable_resource_pb2.TaskResourceSpec(cpu="100"),
        limits=matchable_resource_pb2.TaskResourceSpec(**limits),
    )


@pytest.mark.parametrize(
    "matchable, expected",
    [
        (None, LIMITS),
        (matchable_resource_pb2.TaskResourceAttributes(), LIMITS),
        (attributes(), LIMITS),
        (attributes(cpu="4"), TaskResourceLimits(cpu="4", memory="1Gi", gpu="1")),
        (
            attributes(memory="8Gi", gpu="2", ephemeral_storage="50Gi", storage="1Ti"),
            TaskResourceLimits(cpu="2", memory="8Gi", gpu="2", ephemeral_storage="50Gi"),
        ),
        (attributes(memory="eight gigs"), LIMITS),  # unparseable: the configured cap stays
    ],
)
def test_limits_from_attributes(matchable, expected):
    assert limits_from_attributes(matchable, LIMITS) == expected


def test_limits_from_attributes_feed_the_check():
    request = container([(CPU, "4")])
    assert check(request, limits_from_attributes(None, LIMITS)) == over("CPU", "default", "4", "2")
    assert check(request, limits_from_attributes(attributes(cpu="4"), LIMITS)) is None


def test_task_resource_settings_defaults():
    settings = TaskResourceSettings()
    assert (settings.defaults.cpu, settings.defaults.memory) == ("2", "200Mi")
    assert settings.defaults.gpu == settings.defaults.ephemeral_storage == ""
    assert settings.limits == TaskResourceLimits(cpu="2", memory="1Gi", gpu="1")
