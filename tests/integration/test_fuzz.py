"""Fuzz every method of the five services, over gRPC and over the HTTP gateway (issue 12 §2).

Each method gets the empty request, random requests, malformed bytes and, where a valid example
request exists (``seeds``), copies of it with one field set to an extreme value (an enum number
no enum defines, integer bounds, NaN, 20 KB / 1 MB / non-ASCII / hostile strings, out-of-range
timestamps). Every answer must be a status a default client can read, never UNKNOWN, INTERNAL
or UNAVAILABLE (clients retry it), never a hang; a request that is refused must leave every
custom resource and every blob as it was. The seed is fixed and the cases are bounded, so the
run is the same each time. The counts by status code are printed (``-s``).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import random
from urllib.parse import quote

import grpc
import pytest
import requests
from flyteidl.admin import (
    common_pb2,
    event_pb2,
    execution_pb2,
    launch_plan_pb2,
    matchable_resource_pb2,
    node_execution_pb2,
    project_attributes_pb2,
    project_domain_attributes_pb2,
    project_pb2,
    signal_pb2,
    task_execution_pb2,
    workflow_attributes_pb2,
)
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2
from flyteidl.event import event_pb2 as ev
from flyteidl.service import dataproxy_pb2
from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.protobuf.message import Message

from flyteadmin.api_server.routes import ROUTES, SERVICES, Route, resolve_field_path
from tests import fuzzing
from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    chain_workflow,
    ident,
    launch_plan_request,
    task_request,
)
from tests.integration.stored_state import Snapshot

SEED = 12
CASES_PER_SEED = 10
RANDOM_CASES = 3
TIMEOUT = 30.0
# A default grpc-core client rejects received metadata above 8 KiB (soft limit) or 16 KiB.
METADATA_BUDGET = 8 * 1024
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE}
HTTP_FORBIDDEN = {2, 13, 14}
HTTP_FAILURES = {0, 500, 502, 503, 504}  # 0: no answer (a hang); 501 is UNIMPLEMENTED
MR = matchable_resource_pb2.MatchableResource
# Methods that may write; a refusal of any of them must leave everything as it was.
WRITERS = ("Create", "Register", "Update", "Delete", "Set", "GetOrCreate", "Terminate",
           "Relaunch", "Recover")  # fmt: skip
ADMIN, PROXY, SIGNAL = (
    "/flyteidl.service.AdminService/",
    "/flyteidl.service.DataProxyService/",
    "/flyteidl.service.SignalService/",
)


def _stamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    return stamp


def seeds() -> dict[str, Message]:
    """A valid request per method (against the state ``fixture`` registers)."""
    ex = identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name="fz")
    node = identifier_pb2.NodeExecutionIdentifier(node_id="n0", execution_id=ex)
    task_ex = identifier_pb2.TaskExecutionIdentifier(
        task_id=ident(RT.TASK, "t"), node_execution_id=node, retry_attempt=0
    )
    named = common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="t")
    pd_list = common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
        limit=10,
        filters="eq(name,t)+contains(version,v)",
        sort_by=common_pb2.Sort(key="created_at", direction=common_pb2.Sort.ASCENDING),
    )
    ids = common_pb2.NamedEntityIdentifierListRequest(project=PROJECT, domain=DOMAIN, limit=10)
    boolean = types_pb2.LiteralType(simple=types_pb2.BOOLEAN)
    signal_id = identifier_pb2.SignalIdentifier(signal_id="gate", execution_id=ex)
    attributes = matchable_resource_pb2.MatchingAttributes(
        task_resource_attributes=matchable_resource_pb2.TaskResourceAttributes(
            defaults=matchable_resource_pb2.TaskResourceSpec(cpu="1", memory="100Mi")
        )
    )
    get = common_pb2.ObjectGetRequest
    return {
        ADMIN + "CreateTask": task_request("fzt", "v9"),
        ADMIN + "GetTask": get(id=ident(RT.TASK, "t")),
        ADMIN + "ListTasks": pd_list,
        ADMIN + "ListTaskIds": ids,
        ADMIN + "CreateWorkflow": chain_workflow("fzwf", "t", version="v9"),
        ADMIN + "GetWorkflow": get(id=ident(RT.WORKFLOW, "wf")),
        ADMIN + "ListWorkflows": pd_list,
        ADMIN + "CreateLaunchPlan": launch_plan_request("fzlp", "wf"),
        ADMIN + "GetLaunchPlan": get(id=ident(RT.LAUNCH_PLAN, "lp")),
        ADMIN + "UpdateLaunchPlan": launch_plan_pb2.LaunchPlanUpdateRequest(
            id=ident(RT.LAUNCH_PLAN, "lp"), state=launch_plan_pb2.ACTIVE
        ),
        ADMIN + "GetActiveLaunchPlan": launch_plan_pb2.ActiveLaunchPlanRequest(id=named),
        ADMIN + "ListActiveLaunchPlans": launch_plan_pb2.ActiveLaunchPlanListRequest(
            project=PROJECT, domain=DOMAIN, limit=10
        ),
        ADMIN + "ListLaunchPlans": pd_list,
        ADMIN + "CreateExecution": execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "lp")),
        ),
        ADMIN + "RelaunchExecution": execution_pb2.ExecutionRelaunchRequest(id=ex),
        ADMIN + "RecoverExecution": execution_pb2.ExecutionRecoverRequest(id=ex),
        ADMIN + "GetExecution": execution_pb2.WorkflowExecutionGetRequest(id=ex),
        ADMIN + "UpdateExecution": execution_pb2.ExecutionUpdateRequest(
            id=ex, state=execution_pb2.EXECUTION_ACTIVE
        ),
        ADMIN + "GetExecutionData": execution_pb2.WorkflowExecutionGetDataRequest(id=ex),
        ADMIN + "ListExecutions": pd_list,
        ADMIN + "TerminateExecution": execution_pb2.ExecutionTerminateRequest(id=ex, cause="x"),
        ADMIN + "GetNodeExecution": node_execution_pb2.NodeExecutionGetRequest(id=node),
        ADMIN + "ListNodeExecutions": node_execution_pb2.NodeExecutionListRequest(
            workflow_execution_id=ex, limit=10
        ),
        ADMIN + "CreateWorkflowEvent": event_pb2.WorkflowExecutionEventRequest(
            request_id="r",
            event=ev.WorkflowExecutionEvent(
                execution_id=ex,
                producer_id="propeller",
                phase=core_execution.WorkflowExecution.RUNNING,
                occurred_at=_stamp(),
            ),
        ),
        ADMIN + "CreateNodeEvent": event_pb2.NodeExecutionEventRequest(
            request_id="r",
            event=ev.NodeExecutionEvent(
                id=node,
                producer_id="propeller",
                phase=core_execution.NodeExecution.RUNNING,
                occurred_at=_stamp(),
                input_uri="gs://flyteadmin/x/inputs.pb",
            ),
        ),
        ADMIN + "CreateTaskEvent": event_pb2.TaskExecutionEventRequest(
            request_id="r",
            event=ev.TaskExecutionEvent(
                task_id=ident(RT.TASK, "t"),
                parent_node_execution_id=node,
                producer_id="propeller",
                phase=core_execution.TaskExecution.RUNNING,
                occurred_at=_stamp(),
            ),
        ),
        ADMIN + "GetTaskExecution": task_execution_pb2.TaskExecutionGetRequest(id=task_ex),
        ADMIN + "ListTaskExecutions": task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=node, limit=10
        ),
        ADMIN + "RegisterProject": project_pb2.ProjectRegisterRequest(
            project=project_pb2.Project(id="fzp", name="fz", description="d")
        ),
        ADMIN + "UpdateProject": project_pb2.Project(id=PROJECT, name="f", description="d"),
        ADMIN + "GetProject": project_pb2.ProjectGetRequest(id=PROJECT),
        ADMIN + "ListProjects": project_pb2.ProjectListRequest(limit=10, filters="eq(state,0)"),
        ADMIN + "UpdateProjectDomainAttributes": (
            project_domain_attributes_pb2.ProjectDomainAttributesUpdateRequest(
                attributes=project_domain_attributes_pb2.ProjectDomainAttributes(
                    project=PROJECT, domain=DOMAIN, matching_attributes=attributes
                )
            )
        ),
        ADMIN + "GetProjectDomainAttributes": (
            project_domain_attributes_pb2.ProjectDomainAttributesGetRequest(
                project=PROJECT, domain=DOMAIN, resource_type=MR.TASK_RESOURCE
            )
        ),
        ADMIN + "UpdateProjectAttributes": project_attributes_pb2.ProjectAttributesUpdateRequest(
            attributes=project_attributes_pb2.ProjectAttributes(
                project=PROJECT, matching_attributes=attributes
            )
        ),
        ADMIN + "UpdateWorkflowAttributes": (
            workflow_attributes_pb2.WorkflowAttributesUpdateRequest(
                attributes=workflow_attributes_pb2.WorkflowAttributes(
                    project=PROJECT, domain=DOMAIN, workflow="wf", matching_attributes=attributes
                )
            )
        ),
        ADMIN + "ListMatchableAttributes": matchable_resource_pb2.ListMatchableAttributesRequest(
            resource_type=MR.TASK_RESOURCE
        ),
        ADMIN + "ListNamedEntities": common_pb2.NamedEntityListRequest(
            resource_type=RT.TASK, project=PROJECT, domain=DOMAIN, limit=10
        ),
        ADMIN + "GetNamedEntity": common_pb2.NamedEntityGetRequest(resource_type=RT.TASK, id=named),
        ADMIN + "UpdateNamedEntity": common_pb2.NamedEntityUpdateRequest(
            resource_type=RT.TASK,
            id=named,
            metadata=common_pb2.NamedEntityMetadata(description="d"),
        ),
        ADMIN + "GetExecutionMetrics": execution_pb2.WorkflowExecutionGetMetricsRequest(
            id=ex, depth=2
        ),
        PROXY + "CreateUploadLocation": dataproxy_pb2.CreateUploadLocationRequest(
            project=PROJECT,
            domain=DOMAIN,
            filename="a.txt",
            filename_root="root",
            content_md5=bytes(range(16)),
            expires_in=duration_pb2.Duration(seconds=60),
        ),
        PROXY + "CreateDownloadLocation": dataproxy_pb2.CreateDownloadLocationRequest(
            native_url="gs://flyteadmin/x", expires_in=duration_pb2.Duration(seconds=60)
        ),
        PROXY + "CreateDownloadLink": dataproxy_pb2.CreateDownloadLinkRequest(
            artifact_type=dataproxy_pb2.ARTIFACT_TYPE_DECK, node_execution_id=node
        ),
        PROXY + "GetData": dataproxy_pb2.GetDataRequest(
            flyte_url=f"flyte://v1/{PROJECT}/{DOMAIN}/fz/n0/i"
        ),
        SIGNAL + "GetOrCreateSignal": signal_pb2.SignalGetOrCreateRequest(
            id=signal_id, type=boolean
        ),
        SIGNAL + "ListSignals": signal_pb2.SignalListRequest(workflow_execution_id=ex, limit=10),
        SIGNAL + "SetSignal": signal_pb2.SignalSetRequest(
            id=signal_id,
            value=literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=True))
            ),
        ),
    }


@pytest.fixture
def fixture(registered_stub):
    registered_stub.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            name="fz",
            spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "lp")),
        )
    )
    return registered_stub


class Tally:
    def __init__(self) -> None:
        self.codes: collections.Counter[str] = collections.Counter()
        self.violations: list[str] = []

    def fail(self, where: str, what: str) -> None:
        self.violations.append(f"{where}: {what}"[:400])


def _grpc_call(channel, method: str, data: bytes) -> tuple[grpc.StatusCode, str, int]:
    call = channel.unary_unary(
        method, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    try:
        call(data, timeout=TIMEOUT)
        return grpc.StatusCode.OK, "", 0
    except grpc.RpcError as exc:
        trailers = sum(len(k) + len(v) for k, v in (exc.trailing_metadata() or ()))
        details = exc.details() or ""
        return exc.code(), details, trailers + len(details.encode())


def _path_value(message: Message, field_path: str) -> str:
    chain = resolve_field_path(message.DESCRIPTOR, field_path)
    value = message
    for fd in chain:
        value = getattr(value, fd.name)
    text = str(value)
    return quote(text, safe="") or "-"


def _query(message: Message, route: Route) -> list[tuple[str, str]]:
    bound = set(route.variables)
    params: list[tuple[str, str]] = []

    def walk(msg: Message, prefix: str) -> None:
        for fd, value in msg.ListFields():
            name = prefix + fd.name
            if name in bound:
                continue
            if fd.message_type is not None:
                if not fd.is_repeated and fd.message_type.full_name.startswith("flyteidl"):
                    walk(value, name + ".")
                continue
            for item in value if fd.is_repeated else [value]:
                if isinstance(item, bytes):
                    continue
                params.append((name, str(item)))

    walk(message, "")
    return params


def _http_call(base: str, route: Route, case: fuzzing.Case) -> tuple[int, dict | None]:
    message = case.message if case.message is not None else route.request_type()
    path = route.template
    for name in route.variables:
        path = path.replace("{" + name + "}", _path_value(message, name))
    headers, body, params = {}, None, None
    if route.body:
        try:
            text = json_format.MessageToJson(case.message, preserving_proto_field_name=True)
            headers["Content-Type"] = "application/json"
            body = text.encode()
        except (AttributeError, ValueError, json_format.Error):  # not a message, or no JSON form
            headers["Content-Type"] = "application/octet-stream"
            body = case.data
    else:
        params = _query(message, route)
    try:
        response = requests.request(
            route.verb, base + path, params=params, data=body, headers=headers, timeout=TIMEOUT
        )
    except requests.Timeout:
        return 0, None  # a hang
    try:
        status = response.json()
    except ValueError:
        status = None
    return response.status_code, status if isinstance(status, dict) else None


def _cases(method, rng: random.Random, seed: Message | None) -> list[fuzzing.Case]:
    request_type = method.input_type
    empty = fuzzing.Case("empty", b"", None)
    cases = [empty]
    for _ in range(RANDOM_CASES):
        message = fuzzing.random_message(request_type, rng)
        cases.append(fuzzing.Case("random", message.SerializeToString(), message))
    base = seed if seed is not None else fuzzing.random_message(request_type, rng)
    for label, message in fuzzing.mutants(base, rng, CASES_PER_SEED if seed else 4):
        cases.append(fuzzing.Case(label.split()[0], message.SerializeToString(), message))
    cases.extend(fuzzing.malformed(request_type, base.SerializeToString(), rng))
    return cases


def test_every_method_answers_hostile_requests_with_a_readable_client_status(
    fixture, api_server, gcs, storage_settings
):
    rng = random.Random(SEED)
    snapshot = Snapshot(api_server, gcs, storage_settings.prefix)
    tally = Tally()
    examples = seeds()
    routes_by_method: dict[str, list[Route]] = collections.defaultdict(list)
    for route in ROUTES:
        routes_by_method[route.full_method].append(route)
    base = f"http://127.0.0.1:{api_server.http_port}"
    with grpc.insecure_channel(
        f"127.0.0.1:{api_server.grpc_port}",
        options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
    ) as channel:
        for service in SERVICES:
            for method in service.methods:
                full = f"/{service.full_name}/{method.name}"
                writer = method.name.startswith(WRITERS)
                for case in _cases(method, rng, examples.get(full)):
                    where = f"gRPC {method.name} [{case.label}]"
                    before = snapshot.take() if writer else None
                    code, details, size = _grpc_call(channel, full, case.data)
                    tally.codes[code.name] += 1
                    if code in FORBIDDEN or code == grpc.StatusCode.DEADLINE_EXCEEDED:
                        tally.fail(where, f"{code.name} {details}")
                    if size > METADATA_BUDGET or (
                        code == grpc.StatusCode.RESOURCE_EXHAUSTED and "metadata" in details
                    ):  # the client could not read the status it was sent
                        tally.fail(where, f"status of {size} bytes: {details[:80]}")
                    if writer and code != grpc.StatusCode.OK and snapshot.take() != before:
                        tally.fail(where, f"{code.name} but something was stored: {details}")
                    for route in routes_by_method[full][:1]:
                        where = f"HTTP {route.verb} {route.template} [{case.label}]"
                        before = snapshot.take() if writer else None
                        status, body = _http_call(base, route, case)
                        tally.codes[f"HTTP {status or 'hang'}"] += 1
                        rpc_code = (body or {}).get("code")
                        if status in HTTP_FAILURES or rpc_code in HTTP_FORBIDDEN:
                            tally.fail(where, f"{status} {json.dumps(body)[:200]}")
                        if writer and status != 200 and snapshot.take() != before:
                            tally.fail(where, f"{status} but something was stored")
    print("\nfuzz answers by status:", dict(sorted(tally.codes.items())))
    print(f"fuzz violations: {len(tally.violations)}")
    for line in tally.violations:
        print("  ", line)
    assert not tally.violations, "\n".join(tally.violations[:50])
