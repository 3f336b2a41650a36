"""The pure parts of observability: metric labels, auth failure reasons, log formats, the
multiprocess registry (docs/operations.md)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from flyteadmin.api_server.auth.authentication import Authenticator
from flyteadmin.api_server.telemetry import code_of_status, execution_of
from flyteadmin.core import logs, metrics
from flyteadmin.core.auth.runtime import Auth
from flyteadmin.core.auth.tokens import LocalKeys, Unauthenticated, Verifier
from flyteadmin.core.config import AuthSettings, ConfigError, LoggingSettings
from flyteadmin.core.metrics import kube_labels
from tests.unit.test_auth_tokens import AUDIENCE, ISSUER, KEY, KeyRing, bad_tokens
from tests.waiting import eventually


@pytest.mark.parametrize(
    ("method", "path", "labels"),
    [
        ("POST", "/apis/flyteadmin.io/v1alpha1/namespaces/s/executions", ("create", "executions")),
        ("GET", "/apis/flyteadmin.io/v1alpha1/namespaces/s/executions/x", ("get", "executions")),
        ("GET", "/apis/flyteadmin.io/v1alpha1/namespaces/s/executions", ("list", "executions")),
        (
            "PUT",
            "/apis/flyteadmin.io/v1alpha1/namespaces/s/executions/x/status",
            ("update", "executions/status"),
        ),
        ("DELETE", "/apis/flyte.lyft.com/v1alpha1/namespaces/p-d/flyteworkflows/x?a=b", None),
        ("POST", "/api/v1/namespaces/s/events", ("create", "events")),
        ("GET", "/api/v1/namespaces/p-development", ("get", "namespaces")),
        ("POST", "/api/v1/namespaces", ("create", "namespaces")),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            ("create", "subjectaccessreviews"),
        ),
        ("GET", "/readyz", ("get", "nonresource")),
    ],
)
def test_kubernetes_calls_are_labelled_by_verb_and_resource_never_by_name(method, path, labels):
    expected = labels or ("delete", "flyteworkflows")
    assert kube_labels(method, path) == expected


def test_http_statuses_map_to_the_code_grpc_gateway_made_them_from():
    assert [code_of_status(s) for s in (200, 302, 400, 401, 403, 404, 405, 409, 413, 500)] == [
        "OK", "OK", "INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND",
        "UNIMPLEMENTED", "ALREADY_EXISTS", "RESOURCE_EXHAUSTED", "INTERNAL",
    ]  # fmt: skip


def test_the_execution_of_a_request_is_found_wherever_the_message_holds_it():
    from flyteidl.admin import event_pb2, execution_pb2
    from flyteidl.core import identifier_pb2
    from flyteidl.event import event_pb2 as ev

    ex = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e1")
    node = identifier_pb2.NodeExecutionIdentifier(execution_id=ex, node_id="n0")
    task_event = event_pb2.TaskExecutionEventRequest(
        event=ev.TaskExecutionEvent(parent_node_execution_id=node)
    )
    assert execution_of(task_event) == ex
    assert execution_of(execution_pb2.ExecutionCreateResponse(id=ex)) == ex
    assert execution_of(execution_pb2.ExecutionCreateRequest(project="p", name="e1")) is None


# Bad `authorization` values -> the reason word counted in flyteadmin_auth_failures_total.
REASONS = {
    "missing": "missing_credentials",
    "not bearer": "malformed_header",
    "empty bearer": "malformed_header",
    "malformed": "malformed_token",
    "expired": "expired",
    "not yet valid": "not_yet_valid",
    "wrongly signed": "bad_signature",
    "alg none": "unsupported_algorithm",
    "hs256 with the public key": "unsupported_algorithm",
    "wrong issuer": "unknown_issuer",
    "wrong audience": "wrong_audience",
    "no expiry": "missing_claim",
    "without the required scope": "missing_scope",
}


def test_auth_failures_are_counted_by_a_fixed_reason():
    verifier = Verifier(LocalKeys(KeyRing(KEY)), issuer=ISSUER, audiences=[AUDIENCE])
    authenticator = Authenticator(Auth(AuthSettings(mode="self"), ISSUER, verifier))
    cases = bad_tokens()
    for case, reason in REASONS.items():
        metadata = {} if cases[case] is None else {"authorization": cases[case]}
        before = REGISTRY.get_sample_value("flyteadmin_auth_failures_total", {"reason": reason})
        with pytest.raises(Unauthenticated) as caught:
            asyncio.run(authenticator.authenticate(metadata))
        assert caught.value.reason == reason, case
        after = REGISTRY.get_sample_value("flyteadmin_auth_failures_total", {"reason": reason})
        assert after == (before or 0) + 1, case


@pytest.fixture
def log_stream():
    """A stream for ``logs.configure``; the handler is removed afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    yield stream
    logs.remove()
    root.setLevel(level)
    logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.NOTSET)


def _in_a_request(log: logging.Logger, message: str) -> None:
    token = logs.REQUEST.set(
        logs.RequestContext("req-1", rpc="S/M", project="p", domain="d", execution="e")
    )
    try:
        log.warning(message)
    finally:
        logs.REQUEST.reset(token)


def test_text_lines_carry_the_request_fields(log_stream):
    logs.configure(LoggingSettings(), stream=log_stream)
    log = logging.getLogger("flyteadmin.test")
    _in_a_request(log, "inside")
    log.warning("outside")
    inside, outside = log_stream.getvalue().splitlines()
    assert inside.endswith(
        "WARNING flyteadmin.test: inside [request_id=req-1 rpc=S/M project=p domain=d execution=e]"
    )
    assert outside.endswith("WARNING flyteadmin.test: outside")


def test_a_worker_process_says_which_it_is(log_stream):
    logs.configure(LoggingSettings(), stream=log_stream, worker=2)
    logging.getLogger("flyteadmin.test").warning("text")
    logs.configure(LoggingSettings(format="json"), stream=log_stream, worker=2)
    logging.getLogger("flyteadmin.test").warning("json")
    text, line = log_stream.getvalue().splitlines()
    assert " worker2 WARNING flyteadmin.test: text" in text
    assert json.loads(line)["worker"] == 2


def test_json_lines_parse_and_keep_plain_extras_only(log_stream):
    logs.configure(
        LoggingSettings(format="json", levels={"flyteadmin.test": "DEBUG"}), stream=log_stream
    )
    log = logging.getLogger("flyteadmin.test")
    _in_a_request(log, "inside")
    log.debug("detail", extra={"k8s_ref": {"name": "x"}, "settings": object()})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    inside, detail, failed = (json.loads(line) for line in log_stream.getvalue().splitlines())
    assert inside["message"] == "inside" and inside["level"] == "WARNING"
    assert {k: inside[k] for k in logs.FIELDS} == {
        "request_id": "req-1", "rpc": "S/M", "project": "p", "domain": "d", "execution": "e",
    }  # fmt: skip
    assert detail["k8s_ref"] == {"name": "x"} and "settings" not in detail
    assert "request_id" not in detail  # empty fields are left out
    assert "ValueError: boom" in failed["exc_info"]


def test_the_access_log_can_be_turned_off_and_bad_settings_are_refused(log_stream):
    logs.configure(LoggingSettings(access_log=False), stream=log_stream)
    logging.getLogger(logs.ACCESS_LOGGER).info("rpc")
    assert log_stream.getvalue() == ""
    with pytest.raises(ConfigError, match="logging.format"):
        logs.configure(LoggingSettings(format="xml"))
    with pytest.raises(ConfigError, match="logging.levels.kopf"):
        logs.configure(LoggingSettings(levels={"kopf": "LOUD"}))


WORKER = textwrap.dedent(
    """
    import sys
    from flyteadmin.core import metrics
    metrics.rpc_started("grpc")
    metrics.rpc_finished("S", "M", "grpc", "OK", 0.01)
    metrics.rpc_started("grpc")  # still in flight when the page is read
    metrics.watch_event("executions", "ADDED")
    metrics.STORE_OBJECTS.labels("executions").set(int(sys.argv[1]))
    sys.stdout.write("done")
    sys.stdout.flush()
    sys.stdin.read()
    """
)
READER = textwrap.dedent(
    """
    import sys
    from prometheus_client import generate_latest
    from flyteadmin.core import metrics
    for pid in sys.argv[1:]:
        metrics.process_ended(int(pid))
    print(generate_latest(metrics.registry()).decode())
    """
)


def test_several_processes_share_one_metrics_page_in_multiprocess_mode(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONSAFEPATH": "1"}

    def read(*ended: int) -> set[str]:
        args = [sys.executable, "-c", READER, *map(str, ended)]
        page = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
        return set(page.splitlines())

    requests = 'flyteadmin_rpc_requests_total{code="OK",method="M",service="S",transport="grpc"}'

    def flushed() -> set[str] | None:
        # A process's RPC counts reach the shared files at its next flush (every 0.1 s).
        page = read()
        return page if f"{requests} 2.0" in page else None

    # Two workers keep their values in the shared folder, and stay alive (the live gauges)
    # until told to end.
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(objects)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for objects in (3, 5)
    ]
    try:
        for worker in workers:
            assert worker.stdout.read(4) == "done"
        both = eventually(flushed, "both workers' RPC counts on the page", 10, 0.1)
        workers[1].communicate("")
        one = read(workers[1].pid)  # what a supervisor does when a worker dies
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.communicate("")
    assert f"{requests} 2.0" in both and f"{requests} 2.0" in one  # counters outlive processes
    assert 'flyteadmin_rpc_in_flight{transport="grpc"} 2.0' in both  # livesum
    assert 'flyteadmin_rpc_in_flight{transport="grpc"} 1.0' in one
    assert 'flyteadmin_store_objects{resource="executions"} 5.0' in both  # livemax
    assert 'flyteadmin_store_objects{resource="executions"} 3.0' in one
    watch = 'flyteadmin_store_watch_last_event_timestamp_seconds{resource="executions"}'
    assert any(line.startswith(watch) for line in both)


def test_values_recorded_later_are_what_the_metrics_would_have_recorded():
    """The hot values (core/metrics.py ``_later``) are added up and written at a flush: the
    page then equals the one the metrics' own ``observe``/``inc`` make, bucket by bucket."""
    pages = []
    observations = [0.0004, 0.001, 0.003, 0.003, 0.7, 42.0, 0.02, 1e-9]
    for deferred in (False, True):
        registry = CollectorRegistry()
        histogram = Histogram("h", "h", ["m"], buckets=(0.001, 0.01, 0.5, 1.0), registry=registry)
        counter = Counter("c", "c", ["m"], registry=registry)
        gauge = Gauge("g", "g", ["m"], registry=registry)
        latest = Gauge("l", "l", ["m"], registry=registry)
        plain = Histogram("p", "p", buckets=(1.0, 10.0), registry=registry)  # no labels
        for value in observations:
            if deferred:
                metrics._later(histogram, "x").add(value)
                metrics._later(counter, "x").add(2)
                metrics._later(gauge, "x").add(1)
                metrics._later(plain).add(value * 100)
                metrics._latest(latest, "x").set(value)
            else:
                histogram.labels("x").observe(value)
                counter.labels("x").inc(2)
                gauge.labels("x").inc(1)
                plain.observe(value * 100)
                latest.labels("x").set(value)
        if deferred:
            metrics._later(gauge, "x").add(-3)
            metrics.flush()
        else:
            gauge.labels("x").dec(3)
        pages.append(
            sorted(
                line
                for line in generate_latest(registry).decode().splitlines()
                if "_created" not in line
            )
        )
    assert pages[0] == pages[1]
    assert 'h_bucket{le="0.01",m="x"} 5.0' in pages[1] and 'g{m="x"} 5.0' in pages[1]


def test_the_page_of_this_process_holds_what_was_recorded_just_before():
    before = REGISTRY.get_sample_value("flyteadmin_kube_requests_total", _KUBE) or 0
    metrics.kube_call("GET", "/api/v1/namespaces/a/pods/b", 200, 0.01)
    page = generate_latest(metrics.registry()).decode()  # what /metrics serves
    assert REGISTRY.get_sample_value("flyteadmin_kube_requests_total", _KUBE) == before + 1
    assert "flyteadmin_kube_requests_total" in page


_KUBE = {"verb": "get", "resource": "pods", "code": "200"}
