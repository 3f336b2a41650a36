"""The event journal (core/events/journal.py): an event is durable in a batch before its answer,
every server serves the batch's states at once, the writer folds them into their objects,
batches of a server that died are folded by another, and past its limit events go straight
into their objects."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack

import grpc
import pytest
from flyteidl.admin import node_execution_pb2
from flyteidl.service import admin_pb2_grpc
from google.protobuf import json_format
from kubernetes import client

from flyteadmin.api_server.app import WORKER_HEADER
from flyteadmin.api_server.workers import Workers
from flyteadmin.core import crds
from flyteadmin.core.archive import Archiver
from flyteadmin.core.config import ArchiveSettings, EtcdSettings, JournalSettings, Settings
from flyteadmin.core.store import ORIGIN_ANNOTATION
from tests.integration.conftest import running_api_server
from tests.integration.registration_helpers import register_basics
from tests.integration.test_events_api import NODE, TASK, WF, Propeller, run_task_node
from tests.scrape import parse
from tests.waiting import eventually

NEVER = 3600.0  # a fold delay no test waits for: non-terminal states stay in the journal


def journaled(settings: Settings, **kw) -> Settings:
    return dataclasses.replace(settings, journal=JournalSettings(**kw))


def objects(kube_api, namespace: str, kind: crds.Kind) -> list[dict]:
    custom = client.CustomObjectsApi(kube_api)
    found = custom.list_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural)
    return found["items"]


def node_batches(kube_api, namespace: str) -> list[dict]:
    """The batches holding node or task states (not the execution's own)."""
    return [
        b
        for b in objects(kube_api, namespace, crds.EVENT_BATCH)
        if any(json.loads(text)["kind"] != "Execution" for text in b["spec"]["records"])
    ]


def batch_records(kube_api, namespace: str) -> list[dict]:
    return [
        json.loads(text)
        for batch in objects(kube_api, namespace, crds.EVENT_BATCH)
        for text in batch["spec"]["records"]
    ]


def execution_object(kube_api, namespace: str, name: str) -> dict:
    (found,) = [
        o for o in objects(kube_api, namespace, crds.EXECUTION) if o["spec"]["id"]["name"] == name
    ]
    return found


@pytest.fixture
def servers(settings) -> Iterator:
    """``start(**journal settings)``: API servers on the test's namespace, stopped after."""
    with ExitStack() as stack:

        def start(**kw):
            server = stack.enter_context(running_api_server(journaled(settings, **kw)))
            channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
            return server, admin_pb2_grpc.AdminServiceStub(channel)

        yield start


def running(stub, name: str) -> Propeller:
    """A RUNNING execution ``name`` on a server with the basics registered (its RUNNING waits
    in the journal too, until the execution's final phase supersedes it)."""
    register_basics(stub)
    p = Propeller(stub, name)
    p.create()
    p.workflow(WF.RUNNING, 1)
    return p


def node_phase(stub, p: Propeller, node: str) -> int:
    request = node_execution_pb2.NodeExecutionGetRequest(id=p.node_id(node))
    return stub.GetNodeExecution(request).closure.phase


def test_an_event_is_in_a_batch_before_its_answer_and_in_its_object_after(
    servers, kube_api, namespace
):
    server, stub = servers(fold_delay_seconds=NEVER)
    p = running(stub, "j1")
    p.node("n0", NODE.QUEUED, 2)
    p.node("n0", NODE.RUNNING, 3)

    # Answered: the state is in etcd, in a batch, and served; its object is not written yet.
    # (The QUEUED state's batch may be gone already: RUNNING supersedes it.)
    records = [r for r in batch_records(kube_api, namespace) if r["kind"] == "NodeExecution"]
    assert [r["status"]["phase"] for r in records][-1] == "RUNNING"
    assert objects(kube_api, namespace, crds.NODE_EXECUTION) == []
    assert node_phase(stub, p, "n0") == NODE.RUNNING
    assert [n.id.node_id for n in p.nodes().node_executions] == ["n0"]

    # A terminal state is folded at once: one write of the object, and the batches go (the
    # execution's RUNNING with its final phase, written into its object).
    p.node("n0", NODE.SUCCEEDED, 4)
    p.workflow(WF.SUCCEEDED, 5)
    eventually(server.backend.journal.idle, "the journal folded")
    (node,) = objects(kube_api, namespace, crds.NODE_EXECUTION)
    assert node["status"]["phase"] == "SUCCEEDED"
    assert int(node["metadata"]["annotations"][ORIGIN_ANNOTATION]) > 0
    assert objects(kube_api, namespace, crds.EVENT_BATCH) == []
    assert node_phase(stub, p, "n0") == NODE.SUCCEEDED


def test_another_server_serves_and_continues_from_the_journal(servers, kube_api, namespace):
    a, stub_a = servers(fold_delay_seconds=NEVER)
    b, stub_b = servers(fold_delay_seconds=NEVER)
    on_a, on_b = running(stub_a, "j2"), Propeller(stub_b, "j2")
    on_a.node("n0", NODE.RUNNING, 2)
    on_a.task_event("n0", 0, TASK.RUNNING, 3)
    assert objects(kube_api, namespace, crds.NODE_EXECUTION) == []

    # B sees A's batch through its watch: it serves the states and checks the next events
    # against them (a RUNNING again is a duplicate; SUCCEEDED follows RUNNING).
    eventually(lambda: node_phase(stub_b, on_b, "n0") == NODE.RUNNING, "B to serve A's state")
    eventually(lambda: on_b.tasks("n0").task_executions, "B to serve A's task state")
    with pytest.raises(grpc.RpcError) as info:
        on_b.node("n0", NODE.RUNNING, 2)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    on_b.task_event("n0", 0, TASK.SUCCEEDED, 4)
    on_b.node("n0", NODE.SUCCEEDED, 5)
    on_b.workflow(WF.SUCCEEDED, 6)  # supersedes A's RUNNING (else only its orphan fold ends it)

    for server in (a, b):
        eventually(server.backend.journal.idle, "both journals folded")
    (node,) = objects(kube_api, namespace, crds.NODE_EXECUTION)
    (task,) = objects(kube_api, namespace, crds.TASK_EXECUTION)
    assert (node["status"]["phase"], task["status"]["phase"]) == ("SUCCEEDED", "SUCCEEDED")
    eventually(lambda: node_phase(stub_a, on_a, "n0") == NODE.SUCCEEDED, "A to see B's state")


def test_the_batches_of_a_server_that_died_are_folded_by_another(servers, kube_api, namespace):
    dead, stub = servers(fold_delay_seconds=NEVER)
    p = running(stub, "j3")
    p.node("n0", NODE.RUNNING, 2)

    async def crash() -> None:  # it stops without folding what it wrote, as a killed one
        pass

    dead.backend.journal.close = crash  # (its fold delay keeps its loop from folding)
    assert len(objects(kube_api, namespace, crds.EVENT_BATCH)) == 2  # the execution's, the node's

    heir, heir_stub = servers(fold_delay_seconds=NEVER, orphan_seconds=0.5)
    # Served at once from the batch (the list at start), folded once the batch is an orphan.
    assert node_phase(heir_stub, Propeller(heir_stub, "j3"), "n0") == NODE.RUNNING
    eventually(lambda: objects(kube_api, namespace, crds.NODE_EXECUTION), "the orphan folded")
    eventually(lambda: not objects(kube_api, namespace, crds.EVENT_BATCH), "the batch deleted")
    (node,) = objects(kube_api, namespace, crds.NODE_EXECUTION)
    assert node["status"]["phase"] == "RUNNING"
    assert execution_object(kube_api, namespace, "j3")["status"]["phase"] == "RUNNING"


def test_past_its_limit_events_go_straight_into_their_objects(servers, kube_api, namespace):
    server, stub = servers(fold_delay_seconds=NEVER, max_unfolded=2)
    p = running(stub, "j4")  # journaled: one state unfolded
    p.node("n0", NODE.QUEUED, 2)  # journaled: two states unfolded, the limit
    assert objects(kube_api, namespace, crds.NODE_EXECUTION) == []
    p.node("n0", NODE.RUNNING, 3)  # written into the object (created from the journal state)
    (node,) = objects(kube_api, namespace, crds.NODE_EXECUTION)
    assert node["status"]["phase"] == "RUNNING"
    assert ORIGIN_ANNOTATION not in (node["metadata"].get("annotations") or {})
    # The batch's state is superseded by the object: the batch goes without a fold (and the
    # execution's with its final phase).
    p.workflow(WF.SUCCEEDED, 5)
    eventually(server.backend.journal.idle, "the superseded batches deleted")
    assert objects(kube_api, namespace, crds.NODE_EXECUTION)[0]["metadata"] == node["metadata"]


def test_a_server_that_stops_folds_what_it_wrote(settings, kube_api, namespace):
    with running_api_server(journaled(settings, fold_delay_seconds=NEVER)) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            p = running(stub, "j5")
            p.node("n0", NODE.RUNNING, 2)
            assert objects(kube_api, namespace, crds.NODE_EXECUTION) == []
    (node,) = objects(kube_api, namespace, crds.NODE_EXECUTION)
    assert node["status"]["phase"] == "RUNNING"
    assert objects(kube_api, namespace, crds.EVENT_BATCH) == []


def test_the_archiver_waits_for_the_journal(servers, kube_api, namespace):
    server, stub = servers(fold_delay_seconds=NEVER)
    p = running(stub, "j6")
    run_task_node(p, "n0", 2)
    p.node("n1", NODE.RUNNING, 20)  # left running in the journal: not in its object
    p.workflow(WF.SUCCEEDED, 30)
    backend = server.backend
    archiver = Archiver(backend, ArchiveSettings(retention_seconds=0), EtcdSettings())
    eventually(lambda: backend.execution_records.values()[0].value.phase == WF.SUCCEEDED, "end")
    assert archiver.candidates() == []
    backend.journal.settings = dataclasses.replace(backend.journal.settings, fold_delay_seconds=0)
    eventually(backend.journal.idle, "the journal folded")
    assert [s.name for s in archiver.candidates()] == [backend.execution_records.values()[0].name]
    assert {n["spec"]["nodeId"] for n in objects(kube_api, namespace, crds.NODE_EXECUTION)} == {
        "n0",
        "n1",
    }


def batch_deletes(kube_api) -> dict[str, float]:
    """kube-apiserver's own count of DELETE requests on batches (its /metrics), by scope:
    ``resource`` (one object) or ``namespace`` (a delete collection)."""
    config = kube_api.configuration
    auth = {a["key"]: a["value"] for a in config.auth_settings().values() if a["in"] == "header"}
    response = kube_api.call_api("GET", config.host + "/metrics", header_params=auth)
    page = parse(response.read().decode())
    name, labels = "apiserver_request_total", {"resource": "eventbatches", "verb": "DELETE"}
    return {scope: page.value(name, scope=scope, **labels) for scope in ("resource", "namespace")}


def test_folded_batches_are_deleted_a_group_at_a_time(servers, kube_api, namespace, monkeypatch):
    server, stub = servers(fold_delay_seconds=NEVER)
    # This server's own calls: kube-apiserver's counters also count other tests' namespaces
    # being deleted (kube-controller-manager deletes each kind there as a collection).
    calls = {"delete": 0, "delete_matching": 0}
    batches = server.backend.journal.batches
    for method in calls:
        monkeypatch.setattr(batches, method, _counted(calls, method, getattr(batches, method)))
    p = running(stub, "j7")
    for node in ("n0", "n1", "n2", "n3"):  # one batch each, in one group
        p.node(node, NODE.RUNNING, 2)
    assert len(objects(kube_api, namespace, crds.EVENT_BATCH)) == 5  # and the execution's
    before = batch_deletes(kube_api)
    for node in ("n0", "n1", "n2", "n3"):
        p.node(node, NODE.SUCCEEDED, 3)
    p.workflow(WF.SUCCEEDED, 4)
    eventually(server.backend.journal.idle, "the journal folded")
    assert objects(kube_api, namespace, crds.EVENT_BATCH) == []
    assert calls["delete"] == 0  # no batch deleted on its own
    assert 1 <= calls["delete_matching"] <= 2  # 9 batches, in 1 or 2 calls
    # ... each a collection delete on the wire
    after = batch_deletes(kube_api)
    assert after["namespace"] - before["namespace"] >= calls["delete_matching"]


def _counted(calls: dict[str, int], name: str, method):
    def counting(*args, **kwargs):
        calls[name] += 1
        return method(*args, **kwargs)

    return counting


def test_a_worker_killed_before_folding_loses_no_accepted_event(settings, kube_api, namespace):
    """kill -9 of the API-server worker that accepted an event, before it folded it: the
    state is served by the other worker and folded as an orphan."""
    pool = Workers(journaled(settings, fold_delay_seconds=NEVER, orphan_seconds=1.0), count=2)
    pool.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{pool.grpc_port}") as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            p = running(stub, "j8")
            event = p.node_request("n0", NODE.RUNNING, 2)
            request = urllib.request.Request(
                f"http://127.0.0.1:{pool.http_port}/api/v1/events/nodes",
                data=json_format.MessageToJson(event).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
                accepted_by = int(response.headers[WORKER_HEADER])
            assert len(node_batches(kube_api, namespace)) == 1
            assert objects(kube_api, namespace, crds.NODE_EXECUTION) == []
            os.kill(pool.pids()[accepted_by], signal.SIGKILL)

            def folded() -> bool:
                nodes = objects(kube_api, namespace, crds.NODE_EXECUTION)
                return bool(nodes) and nodes[0]["status"]["phase"] == "RUNNING"

            eventually(folded, "the dead worker's batch folded by another", timeout=120)
            eventually(lambda: not node_batches(kube_api, namespace), "deleted")
            assert node_phase(stub, p, "n0") == NODE.RUNNING
    finally:
        pool.stop()


def test_a_workflow_event_waits_in_the_journal_and_the_final_one_is_written(
    servers, kube_api, namespace
):
    server, stub = servers(fold_delay_seconds=NEVER)
    p = running(stub, "j10")  # RUNNING: a phase on the way
    assert execution_object(kube_api, namespace, "j10")["status"].get("phase") != "RUNNING"
    (record,) = [r for r in batch_records(kube_api, namespace) if r["kind"] == "Execution"]
    assert record["status"]["phase"] == "RUNNING"
    assert p.get().closure.phase == WF.RUNNING
    with pytest.raises(grpc.RpcError) as info:  # checked against the journal's state
        p.workflow(WF.RUNNING, 1)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS

    p.workflow(WF.SUCCEEDED, 5)  # final: into the object at once, with RUNNING's start
    stored = execution_object(kube_api, namespace, "j10")
    assert (stored["status"]["phase"], stored["status"]["duration"]) == ("SUCCEEDED", "4.000s")
    eventually(server.backend.journal.idle, "the superseded batch deleted")
    assert p.get().closure.phase == WF.SUCCEEDED


@pytest.mark.parametrize("says_origin", [True, False], ids=["lagging-process", "kubectl"])
def test_a_writer_that_had_not_seen_a_workflow_event_loses_neither_change(
    servers, kube_api, namespace, says_origin
):
    server, stub = servers(fold_delay_seconds=NEVER)
    p = running(stub, "j11")
    # Another process of ours that has not seen the batch yet (an operator whose watch lags)
    # writes the Execution from the object it has: here, its state archived. Like every
    # writer of Executions it says which state it made that from (the object's version);
    # kubectl says nothing.
    stored = execution_object(kube_api, namespace, "j11")
    stored["spec"]["state"] = "EXECUTION_ARCHIVED"
    if says_origin:
        basis = stored["metadata"]["resourceVersion"]
        stored["metadata"]["annotations"] = {ORIGIN_ANNOTATION: basis}
    custom = client.CustomObjectsApi(kube_api)
    kind = crds.EXECUTION
    custom.replace_namespaced_custom_object(
        kind.group, kind.version, namespace, kind.plural, stored["metadata"]["name"], stored
    )

    def both() -> bool:
        closure = p.get().closure
        archived = closure.state_change_details.state == 1  # EXECUTION_ARCHIVED
        return archived and closure.phase == WF.RUNNING

    eventually(both, "the event's state made again from the archived Execution")
    # Folded (its delay made 0 here) into one object holding both.
    server.backend.journal.settings = dataclasses.replace(
        server.backend.journal.settings, fold_delay_seconds=0.0
    )
    eventually(server.backend.journal.idle, "the state folded")
    folded = execution_object(kube_api, namespace, "j11")
    assert (folded["spec"]["state"], folded["status"]["phase"]) == (
        "EXECUTION_ARCHIVED",
        "RUNNING",
    )
    p.workflow(WF.SUCCEEDED, 5)
    assert p.get().closure.state_change_details.state == 1
