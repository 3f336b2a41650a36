"""Registration RPCs over gRPC and HTTP: identity rules, bad input, lists, named entities,
description entities, large closures in the blob store, and racing launch-plan activations."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from flyteidl.admin import (
    common_pb2,
    description_entity_pb2,
    launch_plan_pb2,
    project_pb2,
    task_pb2,
)
from flyteidl.service import admin_pb2_grpc
from kubernetes import client

from flyteadmin.core.crmap.protojson import from_b64, to_json
from flyteadmin.core.crmap.registered import DescriptionCodec, Registered
from flyteadmin.core.registration.descriptions import INLINE_BYTES
from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    chain_workflow,
    ident,
    launch_plan_request,
    task_request,
)
from tests.waiting import eventually

LPState = launch_plan_pb2.LaunchPlanState


@pytest.fixture
def stub(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.RegisterProject(
            project_pb2.ProjectRegisterRequest(
                project=project_pb2.Project(id=PROJECT, name=PROJECT)
            )
        )
        yield admin


def stored(kube_api, namespace) -> dict[str, list[str]]:
    custom = client.CustomObjectsApi(kube_api)
    return {
        plural: sorted(
            i["metadata"]["resourceVersion"]
            for i in custom.list_namespaced_custom_object(
                "flyteadmin.io", "v1alpha1", namespace, plural
            )["items"]
        )
        for plural in ("tasks", "workflows", "launchplans", "namedentities", "descriptionentities")
    }


def code_of(call, *args):
    with pytest.raises(grpc.RpcError) as info:
        call(*args)
    return info.value.code(), info.value.details()


def test_identity_rule_for_tasks_workflows_and_launch_plans(stub):
    stub.CreateTask(task_request("t"))
    assert code_of(stub.CreateTask, task_request("t"))[0] == grpc.StatusCode.ALREADY_EXISTS
    code, message = code_of(stub.CreateTask, task_request("t", image="img:2"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "img:2" in message

    stub.CreateWorkflow(chain_workflow("wf", "t"))
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateWorkflow(chain_workflow("wf", "t"))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "workflow with identical structure already exists" in info.value.details()
    code, message = code_of(stub.CreateWorkflow, chain_workflow("wf", "t", nodes=3))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "different structure" in message

    stub.CreateLaunchPlan(launch_plan_request("lp", "wf", x=1))
    assert code_of(stub.CreateLaunchPlan, launch_plan_request("lp", "wf", x=1))[0] == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    code, message = code_of(stub.CreateLaunchPlan, launch_plan_request("lp", "wf", x=2))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "different structure" in message

    got = stub.GetWorkflow(common_pb2.ObjectGetRequest(id=ident(RT.WORKFLOW, "wf")))
    node_ids = [n.id for n in got.closure.compiled_workflow.primary.template.nodes]
    assert {"start-node", "end-node", "n0", "n1"} == set(node_ids)
    assert [t.template.id.name for t in got.closure.compiled_workflow.tasks] == ["t"]
    lp = stub.GetLaunchPlan(common_pb2.ObjectGetRequest(id=ident(RT.LAUNCH_PLAN, "lp")))
    assert lp.closure.state == LPState.INACTIVE
    assert lp.closure.expected_inputs.parameters["x"].default.scalar.primitive.integer == 1


BAD = [
    ("CreateTask", task_pb2.TaskCreateRequest(), "missing id"),
    ("CreateTask", task_request("t", image=""), "missing image"),
    ("CreateTask", task_request("t", cpu="3"), "Requested CPU default [3] is greater than"),
    ("CreateWorkflow", chain_workflow("wf", "no-such-task"), "failed to compile workflow for"),
    ("CreateLaunchPlan", launch_plan_request("lp", "no-such-workflow"), "missing entity"),
    ("CreateLaunchPlan", launch_plan_request("lp", "wf", y=1), "unexpected default_input y"),
    (
        "UpdateLaunchPlan",
        launch_plan_pb2.LaunchPlanUpdateRequest(id=ident(RT.LAUNCH_PLAN, "lp"), state=7),
        "invalid value for state: 7 is not a value of flyteidl.admin.LaunchPlanState",
    ),
    (
        "ListTasks",
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN)
        ),
        "invalid value for limit",
    ),
    (
        "ListTasks",
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
            limit=5,
            filters="eq(colour,red)",
        ),
        "'task.colour' is invalid filter",
    ),
    (
        "GetNamedEntity",
        common_pb2.NamedEntityGetRequest(
            resource_type=RT.TASK,
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="nope"),
        ),
        "entry not found",
    ),
    (
        "UpdateNamedEntity",
        common_pb2.NamedEntityUpdateRequest(
            resource_type=RT.TASK,
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="t"),
        ),
        "missing metadata",
    ),
    ("GetDescriptionEntity", common_pb2.ObjectGetRequest(id=ident(RT.TASK, "t")), "missing entity"),
]


@pytest.mark.parametrize(
    "method, request_, message", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)]
)
def test_bad_registration_requests_change_nothing(
    stub, kube_api, namespace, method, request_, message
):
    stub.CreateTask(task_request("t"))
    stub.CreateWorkflow(chain_workflow("wf", "t"))
    stub.CreateLaunchPlan(launch_plan_request("lp", "wf"))
    before = stored(kube_api, namespace)
    code, details = code_of(getattr(stub, method), request_)
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), details
    assert message in details
    assert stored(kube_api, namespace) == before


def test_racing_activations_leave_exactly_one_active_version(stub):
    versions = [f"r{i}" for i in range(12)]
    for v in versions:
        stub.CreateTask(task_request("t", version=v))
        request = chain_workflow("wf", "t", version=v)
        for node in request.spec.template.nodes:
            node.task_node.reference_id.version = v
        stub.CreateWorkflow(request)
        stub.CreateLaunchPlan(launch_plan_request("lp", "wf", version=v))

    def activate(version: str) -> None:
        stub.UpdateLaunchPlan(
            launch_plan_pb2.LaunchPlanUpdateRequest(
                id=ident(RT.LAUNCH_PLAN, "lp", version), state=LPState.ACTIVE
            )
        )

    for _ in range(3):
        with ThreadPoolExecutor(len(versions)) as pool:
            list(pool.map(activate, versions))
        listed = stub.ListLaunchPlans(
            common_pb2.ResourceListRequest(
                id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="lp"),
                limit=100,
            )
        )
        active = [lp.id.version for lp in listed.launch_plans if lp.closure.state == LPState.ACTIVE]
        assert len(active) == 1
        got = stub.GetActiveLaunchPlan(
            launch_plan_pb2.ActiveLaunchPlanRequest(
                id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="lp")
            )
        )
        assert got.id.version == active[0]
        actives = stub.ListActiveLaunchPlans(
            launch_plan_pb2.ActiveLaunchPlanListRequest(project=PROJECT, domain=DOMAIN, limit=10)
        )
        assert [lp.id.version for lp in actives.launch_plans] == active
    stub.UpdateLaunchPlan(
        launch_plan_pb2.LaunchPlanUpdateRequest(
            id=ident(RT.LAUNCH_PLAN, "lp", active[0]), state=LPState.INACTIVE
        )
    )
    assert code_of(
        stub.GetActiveLaunchPlan,
        launch_plan_pb2.ActiveLaunchPlanRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="lp")
        ),
    )[0] == (grpc.StatusCode.NOT_FOUND)


def test_a_several_megabyte_closure_goes_to_the_blob_store(stub, kube_api, namespace):
    stub.CreateTask(task_request("t"))
    big = chain_workflow("big", "t", nodes=60, pad="x" * 60_000)  # ~3.6 MB compiled
    stub.CreateWorkflow(big)
    got = stub.GetWorkflow(common_pb2.ObjectGetRequest(id=ident(RT.WORKFLOW, "big")))
    assert got.closure.ByteSize() > 3_000_000
    assert len(got.closure.compiled_workflow.primary.template.nodes) == 62
    objects = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "workflows"
    )["items"]
    (obj,) = [o for o in objects if o["spec"]["id"]["name"] == "big"]
    assert obj["spec"]["closureRef"].startswith("gs://")
    assert len(json.dumps(obj)) < 64 * 1024
    listed = stub.ListWorkflows(
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=10
        )
    )
    assert [w.id.name for w in listed.workflows] == ["big"]
    assert not listed.workflows[0].closure.compiled_workflow.primary.template.nodes  # light form
    assert stub.CreateWorkflow  # identical re-registration still recognised:
    assert code_of(stub.CreateWorkflow, big)[0] == grpc.StatusCode.ALREADY_EXISTS


def test_lists_ids_named_entities_and_descriptions(stub, api_server):
    for name in ("b_task", "a_task", ".flytegen.a_task"):
        request = task_request(name)
        request.spec.description.short_description = f"about {name}"
        stub.CreateTask(request)
    stub.CreateTask(task_request("a_task", version="v2"))
    pd = common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN)
    ids = stub.ListTaskIds(
        common_pb2.NamedEntityIdentifierListRequest(project=PROJECT, domain=DOMAIN, limit=2)
    )
    assert [e.name for e in ids.entities] == [".flytegen.a_task", "a_task"] and ids.token == "2"
    versions = stub.ListTasks(
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="a_task"),
            limit=10,
            sort_by=common_pb2.Sort(key="version", direction=common_pb2.Sort.DESCENDING),
        )
    )
    assert [t.id.version for t in versions.tasks] == ["v2", "v1"]
    filtered = stub.ListTasks(
        common_pb2.ResourceListRequest(id=pd, limit=10, filters="eq(version,v2)")
    )
    assert [t.id.name for t in filtered.tasks] == ["a_task"]

    named = stub.ListNamedEntities(
        common_pb2.NamedEntityListRequest(
            resource_type=RT.TASK, project=PROJECT, domain=DOMAIN, limit=10
        )
    )
    assert [e.id.name for e in named.entities] == ["a_task", "b_task"]  # .flytegen hidden
    stub.UpdateNamedEntity(
        common_pb2.NamedEntityUpdateRequest(
            resource_type=RT.TASK,
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="b_task"),
            metadata=common_pb2.NamedEntityMetadata(
                description="archived one", state=common_pb2.NAMED_ENTITY_ARCHIVED
            ),
        )
    )
    archived = stub.ListNamedEntities(
        common_pb2.NamedEntityListRequest(
            resource_type=RT.TASK, project=PROJECT, domain=DOMAIN, limit=10, filters="eq(state,1)"
        )
    )
    assert [(e.id.name, e.metadata.description) for e in archived.entities] == [
        ("b_task", "archived one")
    ]

    description = stub.GetDescriptionEntity(
        common_pb2.ObjectGetRequest(id=ident(RT.TASK, "a_task"))
    )
    assert description.short_description == "about a_task"
    listed = stub.ListDescriptionEntities(
        description_entity_pb2.DescriptionEntityListRequest(
            resource_type=RT.TASK,
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="a_task"),
            limit=5,
        )
    )
    assert [d.id.version for d in listed.descriptionEntities] == ["v1"]

    # The same reads over the HTTP gateway (GetTask gets its resource type filled in).
    url = f"http://127.0.0.1:{api_server.http_port}/api/v1/tasks/{PROJECT}/{DOMAIN}/a_task/v2"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert body["id"]["version"] == "v2" and body["id"]["resource_type"] == "TASK"


def test_launch_plan_lists_join_the_workflow_over_grpc_and_http(stub, api_server):
    stub.CreateTask(task_request("t"))
    for wf in ("wf_a", "wf_b"):
        stub.CreateWorkflow(chain_workflow(wf, "t"))
        stub.CreateLaunchPlan(launch_plan_request(f"lp_{wf}", wf))
    pd = common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN)
    joined = stub.ListLaunchPlans(
        common_pb2.ResourceListRequest(id=pd, limit=10, filters="eq(workflow.name,wf_b)")
    )
    assert [lp.id.name for lp in joined.launch_plans] == ["lp_wf_b"]
    code, message = code_of(
        stub.ListLaunchPlans,
        common_pb2.ResourceListRequest(id=pd, limit=10, filters="eq(task.name,t)"),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == "'task' entity is not allowed in filters"
    url = (
        f"http://127.0.0.1:{api_server.http_port}/api/v1/launch_plans/{PROJECT}/{DOMAIN}"
        "?limit=1&sort_by.key=name&sort_by.direction=DESCENDING"
    )
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert [lp["id"]["name"] for lp in body["launch_plans"]] == ["lp_wf_b"]
    assert body["token"] == "1"


# ------------------------------------------------------------------------------ descriptions

DOC = description_entity_pb2.DescriptionEntity(
    short_description="Double a number.",
    long_description=description_entity_pb2.Description(value="Takes x and returns 2x."),
)


def objects(kube_api, namespace, plural: str) -> list[dict]:
    custom = client.CustomObjectsApi(kube_api)
    return custom.list_namespaced_custom_object("flyteadmin.io", "v1alpha1", namespace, plural)[
        "items"
    ]


def described(stub, rt: int, name: str) -> description_entity_pb2.DescriptionEntity:
    return stub.GetDescriptionEntity(common_pb2.ObjectGetRequest(id=ident(rt, name)))


def listed_descriptions(stub, name: str) -> list[description_entity_pb2.DescriptionEntity]:
    request = description_entity_pb2.DescriptionEntityListRequest(
        resource_type=RT.TASK,
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=name),
        limit=10,
    )
    return list(stub.ListDescriptionEntities(request).descriptionEntities)


def test_a_documented_version_is_one_object_and_its_description_reads_as_before(
    stub, kube_api, namespace
):
    task = task_request("doc_task")
    task.spec.description.CopyFrom(DOC)
    stub.CreateTask(task)
    workflow = chain_workflow("doc_wf", "doc_task")
    workflow.spec.description.CopyFrom(DOC)
    stub.CreateWorkflow(workflow)

    # One create per registration: the description is in the version's object.
    assert objects(kube_api, namespace, "descriptionentities") == []
    for plural in ("tasks", "workflows"):
        (version,) = objects(kube_api, namespace, plural)
        assert version["spec"]["descriptionProto"]
    for rt, name in ((RT.TASK, "doc_task"), (RT.WORKFLOW, "doc_wf")):
        expected = description_entity_pb2.DescriptionEntity()
        expected.CopyFrom(DOC)
        expected.id.CopyFrom(ident(rt, name))
        assert described(stub, rt, name) == expected
        assert listed_descriptions(stub, name) == [expected]
    with pytest.raises(grpc.RpcError) as info:  # a task's description is not a workflow's
        described(stub, RT.WORKFLOW, "doc_task")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    # An identical re-registration is AlreadyExists and writes nothing.
    before = stored(kube_api, namespace)
    assert code_of(stub.CreateTask, task)[0] == grpc.StatusCode.ALREADY_EXISTS
    assert stored(kube_api, namespace) == before


def test_large_and_earlier_descriptions_are_objects_of_their_own(
    stub, api_server, kube_api, namespace
):
    big = task_request("big_doc")
    big.spec.description.long_description.value = "v" * (INLINE_BYTES + 1)
    stub.CreateTask(big)
    (entity,) = objects(kube_api, namespace, "descriptionentities")
    assert entity["spec"]["id"]["name"] == "big_doc"
    (version,) = objects(kube_api, namespace, "tasks")
    assert "descriptionProto" not in version["spec"]
    assert described(stub, RT.TASK, "big_doc").long_description.value == "v" * (INLINE_BYTES + 1)

    # As the release before wrote them: the version, and its description beside it as JSON.
    def earlier(name: str, short: str) -> None:
        old = description_entity_pb2.DescriptionEntity(id=ident(RT.TASK, name))
        old.short_description = short
        codec = DescriptionCodec()
        body = codec.encode(Registered(old, "", created=dt.datetime.now(dt.UTC)))
        body["spec"]["entity"] = to_json(from_b64(type(old), body["spec"].pop("entityProto")))
        body |= {"apiVersion": "flyteadmin.io/v1alpha1", "kind": "DescriptionEntity"}
        body["metadata"]["name"] = codec.name_of_id(old.id)
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "flyteadmin.io", "v1alpha1", namespace, "descriptionentities", body
        )

    stub.CreateTask(task_request("old_doc"))
    earlier("old_doc", "written before")
    # A registration retried across the upgrade: an object, and the description inside.
    both = task_request("both_doc")
    both.spec.description.CopyFrom(DOC)
    stub.CreateTask(both)
    earlier("both_doc", "the object's")

    eventually(lambda: listed_descriptions(stub, "old_doc"), "the earlier object in the cache")
    assert described(stub, RT.TASK, "old_doc").short_description == "written before"
    assert [d.short_description for d in listed_descriptions(stub, "old_doc")] == ["written before"]
    records = api_server.backend.description_records
    eventually(lambda: len(records) == 3, "the three objects in the cache")
    assert [d.short_description for d in listed_descriptions(stub, "both_doc")] == [
        DOC.short_description
    ]
    assert described(stub, RT.TASK, "both_doc").short_description == DOC.short_description
