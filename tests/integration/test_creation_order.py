"""created_at to the microsecond for every kind (issue 12 §4): versions registered within one
second come back in registration order, so the latest version is the last registered one (what
flytekit's fetch without a version and `flytectl get task --latest` ask for); objects written
before the change still read and sort, on their creationTimestamp."""

from __future__ import annotations

import grpc
import yaml
from flyteidl.admin import (
    common_pb2,
    description_entity_pb2,
    execution_pb2,
    project_pb2,
    signal_pb2,
    task_pb2,
)
from flyteidl.core import identifier_pb2, types_pb2
from flyteidl.service import signal_pb2_grpc
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote
from kubernetes import client

from flyteadmin.core.crmap.protojson import from_b64, to_json
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

# Versions whose identifier order is the reverse of their registration order, registered
# back to back (well within a second): only the creation time can order them.
VERSIONS = ["v9", "v8", "v7", "v6", "v5"]
ASC, DESC = common_pb2.Sort.ASCENDING, common_pb2.Sort.DESCENDING


def _listed(call, name: str, direction: int, limit: int = 100) -> list[str]:
    answer = call(
        common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=name),
            limit=limit,
            sort_by=common_pb2.Sort(key="created_at", direction=direction),
        )
    )
    items = getattr(answer, answer.DESCRIPTOR.fields[0].name)
    return [item.id.version for item in items]


def test_versions_registered_within_a_second_list_in_registration_order(
    registered_stub, api_server, tmp_path
):
    stub = registered_stub
    for version in VERSIONS:
        description = description_entity_pb2.DescriptionEntity(short_description=version)
        request = task_request("ordered", version)
        request.spec.description.CopyFrom(description)
        stub.CreateTask(request)
        stub.CreateWorkflow(chain_workflow("ordered", "t", version=version))
        stub.CreateLaunchPlan(launch_plan_request("ordered", "ordered", version=version))
    for call in (stub.ListTasks, stub.ListWorkflows, stub.ListLaunchPlans):
        assert _listed(call, "ordered", ASC) == VERSIONS
        assert _listed(call, "ordered", DESC) == VERSIONS[::-1]
        assert _listed(call, "ordered", DESC, limit=1) == ["v5"]
    descriptions = stub.ListDescriptionEntities(
        description_entity_pb2.DescriptionEntityListRequest(
            resource_type=RT.TASK,
            id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="ordered"),
            limit=10,
            sort_by=common_pb2.Sort(key="created_at", direction=ASC),
        )
    )
    assert [d.id.version for d in descriptions.descriptionEntities] == VERSIONS

    config = tmp_path / "flytekit.yaml"
    endpoint = f"dns:///127.0.0.1:{api_server.grpc_port}"
    config.write_text(yaml.safe_dump({"admin": {"endpoint": endpoint, "insecure": True}}))
    remote = FlyteRemote(Config.auto(str(config)), default_project=PROJECT, default_domain=DOMAIN)
    assert remote.fetch_task(name="ordered").id.version == "v5"
    assert remote.fetch_workflow(name="ordered").id.version == "v5"
    assert remote.fetch_launch_plan(name="ordered").id.version == "v5"


def test_projects_and_signals_sort_on_microsecond_creation_times(registered_stub, api_server):
    stub = registered_stub
    ids = ["p-z", "p-y", "p-x", "p-w"]
    for project_id in ids:
        stub.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=project_id, name="p"))
        )
    listed = stub.ListProjects(
        project_pb2.ProjectListRequest(
            limit=10,
            filters="contains(identifier,p-)",
            sort_by=common_pb2.Sort(key="created_at", direction=ASC),
        )
    )
    assert [p.id for p in listed.projects] == ids

    stub.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            name="ordered",
            spec=execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, "lp")),
        )
    )
    execution = identifier_pb2.WorkflowExecutionIdentifier(
        project=PROJECT, domain=DOMAIN, name="ordered"
    )
    gates = ["g9", "g8", "g7", "g6"]
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        signals = signal_pb2_grpc.SignalServiceStub(channel)
        for gate in gates:
            signals.GetOrCreateSignal(
                signal_pb2.SignalGetOrCreateRequest(
                    id=identifier_pb2.SignalIdentifier(signal_id=gate, execution_id=execution),
                    type=types_pb2.LiteralType(simple=types_pb2.BOOLEAN),
                )
            )
        listed = signals.ListSignals(
            signal_pb2.SignalListRequest(workflow_execution_id=execution, limit=10)
        )  # the default order: created_at ascending
    assert [s.id.signal_id for s in listed.signals] == gates


def test_objects_written_before_microsecond_times_still_read_and_sort(
    registered_stub, api_server, kube_api, namespace
):
    """A Task object as the previous release wrote it (no created_at in its closure): it is
    served, and sorted on the object's creationTimestamp."""
    stub = registered_stub
    stub.CreateTask(task_request("legacy", "v1"))
    api = client.CustomObjectsApi(kube_api)
    objects = api.list_namespaced_custom_object("flyteadmin.io", "v1alpha1", namespace, "tasks")
    body = next(o for o in objects["items"] if o["spec"]["id"]["name"] == "legacy")
    # That release kept the closure as protobuf JSON (``closure``), not binary (``closureProto``).
    closure = from_b64(task_pb2.TaskClosure, body["spec"].pop("closureProto"))
    closure.ClearField("created_at")
    body["spec"]["closure"] = to_json(closure)
    api.replace_namespaced_custom_object(
        "flyteadmin.io", "v1alpha1", namespace, "tasks", body["metadata"]["name"], body
    )

    def without_created_at():
        got = stub.GetTask(common_pb2.ObjectGetRequest(id=ident(RT.TASK, "legacy")))
        return not got.closure.HasField("created_at")

    eventually(without_created_at, "the edited object in the cache")
    stub.CreateTask(task_request("legacy", "v2"))
    # v1 sorts on its creationTimestamp (whole seconds, so never after its real creation).
    assert _listed(stub.ListTasks, "legacy", ASC) == ["v1", "v2"]
    assert _listed(stub.ListTasks, "legacy", DESC, limit=1) == ["v2"]


def test_lists_by_creation_time_page_through_every_version_once(registered_stub):
    """Lists sorted by creation time read the creation-order index (issue 16): every page,
    both directions, with and without a filter, by name and over the project-domain, must give
    what sorting all versions by (created_at, id) gives."""
    stub = registered_stub
    versions = [f"v{n:02d}" for n in (7, 3, 11, 0, 9, 1, 12, 5, 2, 10, 4, 8, 6)]
    for version in versions:
        stub.CreateTask(task_request("paged", version))
        stub.CreateTask(task_request("paged-other", version))

    def every_page(name: str, direction: int, limit: int, filters: str = "") -> list[tuple]:
        rows, token = [], ""
        while True:
            answer = stub.ListTasks(
                common_pb2.ResourceListRequest(
                    id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=name),
                    limit=limit,
                    token=token,
                    filters=filters,
                    sort_by=common_pb2.Sort(key="created_at", direction=direction),
                )
            )
            rows += [
                (t.closure.created_at.ToDatetime(), t.id.name, t.id.version) for t in answer.tasks
            ]
            if not answer.token:
                return rows
            token = answer.token

    everything = every_page("", ASC, 1000)
    mine = [r for r in everything if r[1].startswith("paged")]
    assert len(mine) == 2 * len(versions)
    assert everything == sorted(everything)  # (created_at, name, version): the id breaks ties
    for limit in (1, 4, 100):
        assert every_page("paged", ASC, limit) == [r for r in everything if r[1] == "paged"]
        assert every_page("paged", DESC, limit) == sorted(
            (r for r in everything if r[1] == "paged"), key=lambda r: r[0], reverse=True
        )
        assert every_page("", DESC, limit, "contains(name,paged)") == sorted(
            mine, key=lambda r: r[0], reverse=True
        )
        assert every_page("paged", ASC, limit, "ne(version,v03)") == [
            r for r in everything if r[1] == "paged" and r[2] != "v03"
        ]
    # registration order, not identifier order
    assert [r[2] for r in every_page("paged", ASC, 5)] == versions
