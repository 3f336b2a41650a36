"""One request must never stall the server (issue 12 §1): while 16 clients send the hostile
filters and huge pages that froze it, a 17th client's GetVersion keeps answering, and every
hostile request gets its answer (a client error, or the page for a pattern that used to
backtrack) well within a generous deadline. Latency figures are bench/hostile.py's job; the
deadlines here only tell an answer from a hang."""

from __future__ import annotations

import itertools
import threading

import grpc
from flyteidl.admin import version_pb2
from flyteidl.service import admin_pb2_grpc

from tests.hostile_requests import HOSTILE
from tests.integration.registration_helpers import task_request

ATTACKERS = 16
ROUNDS = 3  # each attacker sends every hostile request this many times
DEADLINE = 60.0  # an answer, not a benchmark: the old parser needed minutes for some of these


def test_hostile_lists_get_client_errors_and_the_server_keeps_answering(
    registered_stub, api_server
):
    for n in range(40):
        registered_stub.CreateTask(task_request("a_forty_character_task_name_xxxxxxxxxxx", f"v{n}"))
    target = f"127.0.0.1:{api_server.grpc_port}"
    outcomes: list[tuple[str, grpc.StatusCode, grpc.StatusCode]] = []
    versions: list[bool] = []
    done = threading.Event()

    def attacker(offset: int) -> None:
        with grpc.insecure_channel(target) as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            requests = itertools.islice(
                itertools.cycle(HOSTILE), offset, offset + ROUNDS * len(HOSTILE)
            )
            for rpc, request, expected in requests:
                try:
                    getattr(stub, rpc)(request, timeout=DEADLINE)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    code = exc.code()
                outcomes.append((rpc, code, expected))

    def version_client() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            while not done.is_set():
                try:
                    stub.GetVersion(version_pb2.GetVersionRequest(), timeout=DEADLINE)
                    versions.append(True)
                except grpc.RpcError:
                    versions.append(False)

    watcher = threading.Thread(target=version_client)
    watcher.start()
    attackers = [threading.Thread(target=attacker, args=(i,)) for i in range(ATTACKERS)]
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join()
    done.set()
    watcher.join()

    assert len(outcomes) == ATTACKERS * ROUNDS * len(HOSTILE)
    wrong = [(rpc, code.name, want.name) for rpc, code, want in outcomes if code != want]
    assert not wrong, wrong[:10]
    failed = versions.count(False)
    assert versions and not failed, f"{failed} of {len(versions)} GetVersion calls failed"
