"""API-server workers: several processes on the same ports, read-your-writes across them, and a
worker that dies is started again."""

from __future__ import annotations

import dataclasses
import http.client
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flyteadmin.api_server.app import WORKER_HEADER
from flyteadmin.api_server.workers import Workers
from tests.waiting import eventually


def _http(method: str, url: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    """One request on a new connection (so the kernel may hand it to any worker)."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get(WORKER_HEADER, ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get(WORKER_HEADER, ""), error.read()


@pytest.fixture
def workers(settings):
    pool = Workers(settings, count=2, say=print)
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


def _connection_to_each_worker(port: int) -> dict[str, http.client.HTTPConnection]:
    """Keep-alive connections until there is one served by each of the two workers."""
    found: dict[str, http.client.HTTPConnection] = {}
    for _ in range(200):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/v1/projects?limit=1")
        response = conn.getresponse()
        response.read()
        worker = response.headers[WORKER_HEADER]
        if worker in found:
            conn.close()
        else:
            found[worker] = conn
        if len(found) == 2:
            return found
    raise AssertionError(f"connections reached only workers {sorted(found)}")


def _call(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def test_every_write_is_visible_to_the_next_call_on_another_worker(workers):
    conns = _connection_to_each_worker(workers.http_port)
    try:
        for i in range(60):
            writer, reader = ("0", "1") if i % 2 else ("1", "0")
            project = f"rw{i}"
            body = f'{{"project": {{"id": "{project}", "name": "{project}"}}}}'.encode()
            status, text = _call(conns[writer], "POST", "/api/v1/projects", body)
            assert status == 200, text
            # At once, on the other worker's connection: the project must be there.
            status, text = _call(conns[reader], "GET", f"/api/v1/projects/{project}")
            assert status == 200, f"worker {reader} did not see worker {writer}'s write: {text!r}"
    finally:
        for conn in conns.values():
            conn.close()


def test_a_worker_that_dies_is_started_again(workers):
    victim = workers.pids()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 180  # a liveness bound on a busy machine, not a timing check
    while time.monotonic() < deadline:
        workers.check()
        if victim not in workers.pids() and len(workers.pids()) == 2:
            break
        time.sleep(0.2)
    assert victim not in workers.pids() and len(workers.pids()) == 2
    # Both answer again.
    url = f"http://127.0.0.1:{workers.http_port}/api/v1/projects?limit=10"
    eventually(lambda: {_http("GET", url)[1] for _ in range(30)} == {"0", "1"}, timeout=120)


def test_a_worker_that_cannot_start_is_reported(settings, tmp_path):
    """A worker that dies before it is ready (here: its kubeconfig does not exist) is an error
    naming its exit code, not a wait for the start timeout."""
    broken = dataclasses.replace(
        settings,
        kubernetes=dataclasses.replace(settings.kubernetes, kubeconfig=str(tmp_path / "none")),
    )
    pool = Workers(broken, count=1, say=print)
    try:
        with pytest.raises(RuntimeError, match="worker 0 exited with 1"):
            pool.start(timeout=120)
    finally:
        pool.stop()


def _threads(pid: int) -> dict[int, tuple[str, set[int]]]:
    """Each thread of the process: its name and the CPUs it may run on."""
    threads = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{task}/comm").read_text().strip()
            threads[int(task)] = (name, os.sched_getaffinity(int(task)))
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
    return threads


@pytest.mark.parametrize("pinning", ["always", "never"])
def test_thread_pinning_keeps_the_python_threads_on_one_cpu_and_grpcs_free(settings, pinning):
    allowed = os.sched_getaffinity(0)  # what a worker inherits from this process
    server = dataclasses.replace(settings.server, thread_pinning=pinning)
    pool = Workers(dataclasses.replace(settings, server=server), count=1, say=print)
    pool.start()
    try:
        (pid,) = pool.pids()
        # A call first: the server's threads are all running once it has answered.
        status, _, _ = _http("GET", f"http://127.0.0.1:{pool.http_port}/api/v1/projects?limit=1")
        assert status == 200
        threads = _threads(pid)
        main_cpus = threads[pid][1]
        pinned = [name for name, cpus in threads.values() if cpus == {max(allowed)}]
        grpcs = [cpus for name, cpus in threads.values() if name == "event_engine"]
        assert grpcs, f"no grpc threads found among {sorted(n for n, _ in threads.values())}"
        if pinning == "never":
            assert main_cpus == allowed
            assert all(cpus == allowed for _, cpus in threads.values())
        else:
            # The last CPU the process may use; every watch thread with it (a dozen or more).
            assert main_cpus == {max(allowed)}
            assert len(pinned) >= 12, pinned
            assert all(cpus == allowed for cpus in grpcs)  # grpc's own threads stay free
    finally:
        pool.stop()
