"""DataProxyService.GetData and CreateDownloadLink over gRPC: flyte:// URLs of node and task
executions (inputs, outputs, one literal, a deck), and signed links to a node's deck."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from flyteidl.admin import project_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.service import admin_pb2_grpc, dataproxy_pb2, dataproxy_pb2_grpc

from flyteadmin.core.blobstore import GcsBlobStore
from tests.integration.conftest import run
from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    chain_workflow,
    launch_plan_request,
    task_request,
)
from tests.integration.test_events_api import Propeller, ints

NODE = core_execution.NodeExecution.Phase
TASK = core_execution.TaskExecution.Phase
INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
BASE = f"flyte://v1/{PROJECT}/{DOMAIN}/dp"
DECK_HTML = b"<html>deck</html>"
Link = dataproxy_pb2.CreateDownloadLinkRequest


@pytest.fixture
def store(storage_settings) -> Iterator[GcsBlobStore]:
    blobs = GcsBlobStore(storage_settings)
    yield blobs
    run(blobs.close())


@pytest.fixture
def channel(api_server):
    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="f"))
        )
        admin.CreateTask(task_request("t"))
        admin.CreateWorkflow(chain_workflow("wf", "t"))
        admin.CreateLaunchPlan(launch_plan_request("lp", "wf", x=5))
        yield channel


@pytest.fixture
def proxy(channel, store) -> dataproxy_pb2_grpc.DataProxyServiceStub:
    """Execution "dp": n0 ran twice (attempt 0 failed) and has a deck; n1 runs without one;
    n2 names a deck that was never written."""
    inputs_uri = store.uri_for("dp", "n0", "inputs.pb")
    run(store.put(inputs_uri, ints(x=3).SerializeToString()))
    deck_uri = store.uri_for("dp", "n0", "deck.html")
    run(store.put(deck_uri, DECK_HTML))
    p = Propeller(admin_pb2_grpc.AdminServiceStub(channel), "dp")
    p.create()
    p.node("n0", NODE.RUNNING, 1, input_uri=inputs_uri)
    p.task_event("n0", 0, TASK.RUNNING, 2, input_uri=inputs_uri)
    p.task_event("n0", 0, TASK.FAILED, 3)
    p.task_event("n0", 1, TASK.RUNNING, 4, input_uri=inputs_uri)
    p.task_event("n0", 1, TASK.SUCCEEDED, 5, output_data=ints(o0=7))
    p.node("n0", NODE.SUCCEEDED, 6, output_data=ints(o0=7), deck_uri=deck_uri)
    p.node("n1", NODE.RUNNING, 7)
    p.node("n2", NODE.SUCCEEDED, 8, deck_uri=store.uri_for("dp", "n2", "missing.html"))
    return dataproxy_pb2_grpc.DataProxyServiceStub(channel)


def get(proxy, url: str) -> dataproxy_pb2.GetDataResponse:
    return proxy.GetData(dataproxy_pb2.GetDataRequest(flyte_url=url))


def refused(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return info.value.code(), info.value.details()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_get_data_of_nodes_and_task_attempts(proxy):
    assert get(proxy, f"{BASE}/n0/i").literal_map == ints(x=3)
    assert get(proxy, f"{BASE}/n0/o").literal_map == ints(o0=7)
    assert get(proxy, f"{BASE}/n0/o/o0").literal == ints(o0=7).literals["o0"]
    assert get(proxy, f"{BASE}/n0/i/x").literal == ints(x=3).literals["x"]
    assert get(proxy, f"{BASE}/n0/1/o").literal_map == ints(o0=7)
    assert get(proxy, f"{BASE}/n0/1/i/x").literal == ints(x=3).literals["x"]
    failed = get(proxy, f"{BASE}/n0/0/o")
    assert failed.WhichOneof("data") == "literal_map" and not failed.literal_map.literals
    assert get(proxy, f"{BASE}/n1/o").literal_map == ints()


def test_get_data_of_a_deck_is_a_signed_link(proxy):
    deck = get(proxy, f"{BASE}/n0/d").pre_signed_urls
    assert len(deck.signed_url) == 1 and deck.expires_at.seconds > 0
    assert fetch(deck.signed_url[0]) == DECK_HTML


@pytest.mark.parametrize(
    "url, code, message",
    [
        ("", INVALID, "flyte_url is required"),
        ("http://x/y", INVALID, "failed to parse flyte url [http://x/y]"),
        (f"flyte://v1/{PROJECT}/{DOMAIN}", INVALID, "failed to parse flyte url"),
        (f"{BASE}/n0/x", INVALID, "<i|o|d>"),
        (f"{BASE}/n0/d/name", INVALID, "a literal name only after i or o"),
        (f"{BASE}/n0/o/nope", INVALID, "name [nope] not found in node execution"),
        (f"{BASE}/n0/1/o/nope", INVALID, "name [nope] not found in task execution"),
        (f"{BASE}/n0/1/d", INVALID, "deck type cannot be specified with a retry attempt"),
        (f"{BASE}/n0/5/o", INVALID, "no task executions were listed"),
        (f"{BASE}/n1/d", NOT_FOUND, "no deckUrl found"),
        (f"{BASE}/n2/d", NOT_FOUND, "object not found"),
        (f"{BASE}/nx/o", NOT_FOUND, "missing entity of type NodeExecution"),
        (f"{BASE}/nx/0/o", NOT_FOUND, "missing entity of type NodeExecution"),
        (f"flyte://v1/{PROJECT}/{DOMAIN}/nope/n0/o", NOT_FOUND, "missing entity"),
    ],
)
def test_bad_flyte_urls(proxy, url, code, message):
    got_code, details = refused(proxy.GetData, dataproxy_pb2.GetDataRequest(flyte_url=url))
    assert got_code == code, details
    assert message in details


def test_download_link_of_a_deck(proxy):
    p = Propeller(None, "dp")
    answer = proxy.CreateDownloadLink(
        Link(artifact_type=dataproxy_pb2.ARTIFACT_TYPE_DECK, node_execution_id=p.node_id("n0"))
    )
    assert len(answer.signed_url) == 1
    assert list(answer.pre_signed_urls.signed_url) == list(answer.signed_url)
    assert answer.expires_at == answer.pre_signed_urls.expires_at
    assert fetch(answer.signed_url[0]) == DECK_HTML
    short = proxy.CreateDownloadLink(
        Link(
            artifact_type=dataproxy_pb2.ARTIFACT_TYPE_DECK,
            node_execution_id=p.node_id("n0"),
            expires_in={"seconds": 90},
        )
    )
    assert "X-Goog-Expires=90" in short.signed_url[0]

    deck = dataproxy_pb2.ARTIFACT_TYPE_DECK
    for request, code, message in [
        (Link(node_execution_id=p.node_id("n0")), INVALID, "invalid artifact type"),
        (Link(artifact_type=deck), INVALID, "source is required"),
        (Link(artifact_type=deck, node_execution_id=p.node_id("n1")), NOT_FOUND, "no deckUrl"),
        (Link(artifact_type=deck, node_execution_id=p.node_id("n2")), NOT_FOUND, "not found"),
        (Link(artifact_type=deck, node_execution_id=p.node_id("nx")), NOT_FOUND, "missing"),
        (
            Link(
                artifact_type=deck,
                node_execution_id=p.node_id("n0"),
                expires_in={"seconds": 7200},
            ),
            INVALID,
            "cannot exceed max allowed expiration",
        ),
    ]:
        got_code, details = refused(proxy.CreateDownloadLink, request)
        assert (got_code, message in details) == (code, True), details
