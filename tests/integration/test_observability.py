"""Metrics, request ids, logs and probes of a real API server on the real apiserver
(docs/operations.md): real gRPC and HTTP calls, then the /metrics page read as Prometheus reads
it; the probes as the kubelet calls them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
import yaml
from flyteidl.admin import execution_pb2, project_pb2
from flyteidl.core import identifier_pb2
from flyteidl.service import admin_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core.config import MetricsSettings, Settings
from flyteadmin.devstack.processes import free_ports
from tests.integration.servers import LoopThread
from tests.local_http import serve_locally
from tests.scrape import Page, fetch, scrape
from tests.waiting import eventually

ADMIN = "flyteidl.service.AdminService"
HEALTH = "grpc.health.v1.Health"


@contextlib.contextmanager
def observed_server(settings: Settings) -> Iterator:
    """An ApiServer and its metrics port (any free port) on one event loop thread; yields the
    server and the metrics server."""
    from flyteadmin.api_server.app import ApiServer
    from flyteadmin.metrics_server import serve_metrics

    settings = dataclasses.replace(settings, metrics=MetricsSettings(port=0))
    loop = LoopThread()

    async def start():
        server = ApiServer(settings)
        metrics = await serve_metrics(settings, server.backend)
        await server.start()
        return server, metrics

    server, metrics = loop.call(start())
    try:
        yield server, metrics
    finally:
        loop.call(server.stop())
        loop.call(metrics.stop())
        loop.close()


def delta(before: Page, after: Page, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def http_call(port: int, path: str, headers: dict[str, str] | None = None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_grpc_and_http_calls_are_counted_timed_and_sized_with_bounded_labels(settings, unique):
    project = f"obs-{unique}"
    with (
        observed_server(settings) as (server, metrics),
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        before = scrape(metrics.url)

        # gRPC: one success, one NOT_FOUND.
        stub.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=project, name="o"))
        )
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetProject(project_pb2.ProjectGetRequest(id=f"{project}-missing"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        # grpc's health service is registered by method (not a generic handler): counted too.
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        # HTTP: the same kinds of calls through the gateway.
        status, _, _ = http_call(server.http_port, "/api/v1/projects")
        assert status == 200
        status, _, _ = http_call(server.http_port, f"/api/v1/projects/{project}-missing")
        assert status == 404
        status, _, _ = http_call(server.http_port, "/no/such/route")
        assert status == 404

        def watched() -> Page | None:
            page = scrape(metrics.url)
            # This test's store namespace holds exactly the one project.
            one = page.value("flyteadmin_store_objects", resource="projects") == 1
            return page if one else None

        after = eventually(watched, "the projects cache gauge to count the new project")

    rpc = "flyteadmin_rpc_requests_total"
    assert delta(before, after, rpc, method="RegisterProject", transport="grpc", code="OK") == 1
    assert delta(before, after, rpc, method="GetProject", transport="grpc", code="NOT_FOUND") == 1
    assert delta(before, after, rpc, service=HEALTH, method="Check", code="OK") == 1
    assert delta(before, after, rpc, method="ListProjects", transport="http", code="OK") == 1
    assert delta(before, after, rpc, method="GetProject", transport="http", code="NOT_FOUND") == 1
    assert delta(before, after, rpc, service="http", method="-", code="NOT_FOUND") == 1
    assert after.labels(rpc, "service") >= {ADMIN}

    duration = "flyteadmin_rpc_duration_seconds_count"
    assert delta(before, after, duration, method="RegisterProject", transport="grpc") == 1
    assert delta(before, after, duration, method="ListProjects", transport="http") == 1
    # Sizes are the bytes on the wire: grpc's serialized messages, the HTTP bodies.
    sent = "flyteadmin_rpc_request_bytes_sum"
    assert delta(before, after, sent, method="RegisterProject", transport="grpc") > len(project)
    answered = "flyteadmin_rpc_response_bytes_sum"
    assert delta(before, after, answered, method="ListProjects", transport="http") > 0
    assert after.has("flyteadmin_rpc_in_flight", transport="grpc")

    # The store: the create went to the apiserver, the watch saw it, the cache holds it.
    kube = "flyteadmin_kube_requests_total"
    assert delta(before, after, kube, verb="create", resource="projects", code="201") == 1
    assert after.value("flyteadmin_kube_request_duration_seconds_count", verb="create") >= 1
    assert after.value("flyteadmin_store_synced", resource="executions") == 1
    assert after.value("flyteadmin_store_bytes", resource="projects") > 0
    assert after.value("flyteadmin_etcd_quota_bytes") > 0
    assert after.value("flyteadmin_store_lists_total", resource="projects") >= 1
    assert after.value("flyteadmin_store_watch_last_event_timestamp_seconds", resource="projects")
    # The library's process collectors.
    assert after.value("process_resident_memory_bytes") > 0
    assert after.has("python_gc_collections_total")

    # Bounded labels: no project name, path or request id is ever a label value.
    values = {v for _, labels, _ in after.samples for v in labels.values()}
    assert not [v for v in values if project in v or v.startswith("a-")], values


def test_request_ids_round_trip_on_both_doors(settings):
    with (
        observed_server(settings) as (server, _),
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        _, call = stub.GetDomains.with_call(
            project_pb2.GetDomainRequest(), metadata=[("x-request-id", "given-1")]
        )
        assert ("x-request-id", "given-1") in call.trailing_metadata()
        # A failed call says it too; without one, a new id in flyteadmin's format.
        with pytest.raises(grpc.RpcError) as failed:
            stub.GetProject(project_pb2.ProjectGetRequest(id="nope"))
        (made,) = [v for k, v in failed.value.trailing_metadata() if k == "x-request-id"]
        assert made.startswith("a-") and len(made) == 22

        status, headers, _ = http_call(
            server.http_port, "/api/v1/domains", {"X-Request-Id": "given-2"}
        )
        assert (status, headers["X-Request-Id"]) == (200, "given-2")
        status, headers, _ = http_call(server.http_port, "/api/v1/projects/nope")
        assert status == 404 and headers["X-Request-Id"].startswith("a-")


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 in front of the apiserver: stopping it makes the apiserver
    unreachable for whoever dials the proxy, without touching the apiserver itself."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()


def test_readiness_follows_caches_and_apiserver_and_liveness_does_not(
    settings, kubeconfig, tmp_path
):
    from flyteadmin.api_server.app import ApiServer
    from flyteadmin.metrics_server import serve_metrics

    config = yaml.safe_load(Path(kubeconfig).read_text())
    server_url = urlsplit(config["clusters"][0]["cluster"]["server"])
    proxy_loop = LoopThread()
    proxy = TcpProxy((server_url.hostname, server_url.port))
    proxy_loop.call(proxy.start())
    # The apiserver's certificate names 127.0.0.1, so the proxy's address verifies too.
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    proxied = tmp_path / "kubeconfig"
    proxied.write_text(yaml.safe_dump(config))
    settings = dataclasses.replace(
        settings,
        kubernetes=dataclasses.replace(settings.kubernetes, kubeconfig=str(proxied)),
        metrics=MetricsSettings(port=0),
    )
    loop = LoopThread()

    async def probes_first():
        server = ApiServer(settings)
        return server, await serve_metrics(settings, server.backend)

    server, metrics = loop.call(probes_first())
    base = metrics.url.removesuffix("/metrics")
    try:
        # Before the caches have synced: alive, not ready, and saying why.
        assert fetch(f"{base}/livez")[0] == 200
        status, text = fetch(f"{base}/readyz")
        assert status == 503 and "the executions cache has not synced" in text
        loop.call(server.start())
        eventually(lambda: fetch(f"{base}/readyz") == (200, "ok\n"), "ready after the sync")

        proxy_loop.call(proxy.stop())  # kube-apiserver unreachable
        status, text = eventually(
            lambda: (found := fetch(f"{base}/readyz"))[0] == 503 and found, "not ready"
        )
        assert "kube-apiserver is not reachable" in text
        assert fetch(f"{base}/livez") == (200, "ok\n")  # a slow dependency is no restart

        proxy_loop.call(proxy.start())  # reachable again, on the same address
        eventually(lambda: fetch(f"{base}/readyz")[0] == 200, "ready again")
    finally:
        loop.call(server.stop())
        loop.call(metrics.stop())
        loop.close()
        proxy_loop.call(proxy.stop())
        proxy_loop.close()


FLYTEADMIN = str(Path(sys.executable).parent / "flyteadmin")


def test_serve_and_operator_commands_log_json_lines_and_serve_their_metrics(
    kubeconfig, kube_api, namespace, storage_settings, unique, tmp_path
):
    grpc_port, http_port, serve_metrics, operator_metrics = free_ports(4)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"grpc_port": grpc_port, "http_port": http_port},
                "kubernetes": {"kubeconfig": str(kubeconfig), "namespace": namespace},
                "operator": {"namespace_template": f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"},
                "storage": dataclasses.asdict(storage_settings),
                "logging": {"format": "json"},
                "schedules": {"enabled": False},
            }
        )
    )
    procs, logs = {}, {}
    for name, port in (("serve", serve_metrics), ("operator", operator_metrics)):
        logs[name] = tmp_path / f"{name}.log"
        procs[name] = subprocess.Popen(
            [FLYTEADMIN, name, "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(logs[name], "w"),
            start_new_session=True,
            env={**os.environ, "FLYTEADMIN__METRICS__PORT": str(port)},
        )
    serve_base, operator_base = (f"http://127.0.0.1:{p}" for p in (serve_metrics, operator_metrics))
    execution = f"exec-{unique}"
    try:
        for base in (serve_base, operator_base):
            eventually(lambda b=base: fetch(f"{b}/readyz")[0] == 200, f"{base} ready", 60, 0.2)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            stub.RegisterProject(
                project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id="p", name="P")),
                metadata=[("x-request-id", "req-register")],
            )
            wanted = identifier_pb2.WorkflowExecutionIdentifier(
                project="p", domain="development", name=execution
            )
            with pytest.raises(grpc.RpcError):
                stub.GetExecution(
                    execution_pb2.WorkflowExecutionGetRequest(id=wanted),
                    metadata=[("x-request-id", "req-get")],
                )
        # The operator reconciled the new project's namespaces, and says so on its own port.
        eventually(
            lambda: scrape(f"{operator_base}/metrics").value(
                "flyteadmin_operator_reconciles_total", handler="project_namespaces", outcome="ok"
            ),
            "the operator's reconcile metric",
            60,
            0.2,
        )
        served = scrape(f"{serve_base}/metrics")
        assert served.value("flyteadmin_rpc_requests_total", method="RegisterProject") == 1
        # Both commands manage their heap (core/heap.py): the loaded caches are frozen, by a
        # full pass that was timed (published with the cache gauges, every few seconds).
        for base in (serve_base, operator_base):

            def heap_reported(base: str = base) -> bool:
                page = scrape(f"{base}/metrics")
                return (
                    page.value("flyteadmin_gc_frozen_objects") > 0
                    and page.value("flyteadmin_gc_pass_seconds_count", generation="2") >= 1
                )

            eventually(heap_reported, f"{base}'s heap metrics", 30, 0.5)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=30)
        core = client.CoreV1Api(kube_api)
        for domain in ("development", "staging", "production"):
            with contextlib.suppress(ApiException):
                core.delete_namespace(f"p-{unique}-{domain}")

    # Every line both processes wrote is one JSON object.
    records = {
        name: [json.loads(line) for line in log.read_text().splitlines()]
        for name, log in logs.items()
    }
    assert all({"timestamp", "level", "logger", "message"} <= r.keys() for r in records["serve"])
    (access,) = [r for r in records["serve"] if r.get("request_id") == "req-get"]
    assert access["logger"] == "flyteadmin.access"
    assert access["rpc"] == "flyteidl.service.AdminService/GetExecution"
    assert (access["project"], access["domain"], access["execution"]) == (
        "p",
        "development",
        execution,
    )
    assert access["code"] == "NOT_FOUND" and access["transport"] == "grpc"
    assert access["duration_ms"] > 0
    (register,) = [r for r in records["serve"] if r.get("request_id") == "req-register"]
    assert register["code"] == "OK" and register["rpc"].endswith("/RegisterProject")
    assert any(r["logger"].startswith("flyteadmin") for r in records["operator"])


@contextlib.contextmanager
def process_metrics() -> Iterator[str]:
    """A metrics port with no readiness of its own: this test process's metrics (the operator
    thread's and the API server's, as in `flyteadmin dev`); yields its /metrics URL."""
    from flyteadmin.metrics_server import MetricsServer

    loop = LoopThread()
    server = MetricsServer(Settings(metrics=MetricsSettings(port=0)))
    loop.call(server.start())
    try:
        yield server.url
    finally:
        loop.call(server.stop())
        loop.close()


def test_operator_event_and_blob_metrics_and_the_event_of_a_failed_launch(
    settings, storage_settings, unique, kube_api, kubeconfig
):
    from flyteadmin.core.crmap.executions import execution_object_name
    from flyteadmin.core.flyteworkflow import crd as fw_crd
    from flyteadmin.devstack.kubetools import kubectl_path
    from tests.integration.test_events_api import NODE, WF, Propeller
    from tests.integration.test_operator_executions import _served, _settings, run

    with (
        process_metrics() as url,
        _served(_settings(settings, storage_settings, unique), kube_api) as (stub, namespace),
    ):
        before = scrape(url)
        run(stub, "run-ok")

        reconciles = "flyteadmin_operator_reconciles_total"

        def launched() -> Page | None:
            page = scrape(url)
            done = delta(before, page, "flyteadmin_execution_launches_total", outcome="created")
            # The reconcile is counted when its handler returns, after the launch it made.
            reconciled = delta(before, page, reconciles, handler="execution", outcome="ok")
            return page if done and reconciled else None

        page = eventually(launched, "the FlyteWorkflow object of run-ok, its reconcile counted")
        assert page.value("flyteadmin_execution_launch_latency_seconds_count") >= 1
        # (the project's namespaces were made before `before`: `_served` waits for them)
        assert page.value(reconciles, handler="project_namespaces", outcome="ok") >= 1
        # CreateExecution wrote the inputs and the user's (the launch plan's default fills x),
        # the launch the closure its object names (operator.use_offloaded_workflow_closure).
        assert delta(before, page, "flyteadmin_blob_requests_total", operation="write") >= 3

        # Events as flytepropeller sends them: accepted, a duplicate, a refused one.
        propeller = Propeller(stub, "run-ok")
        propeller.workflow(WF.RUNNING, 1)
        with pytest.raises(grpc.RpcError):
            propeller.workflow(WF.RUNNING, 2)
        with pytest.raises(grpc.RpcError):
            propeller.workflow(WF.QUEUED, 3)
        propeller.node("n0", NODE.RUNNING, 4)
        page = scrape(url)
        events = "flyteadmin_events_total"
        assert delta(before, page, events, kind="workflow", outcome="accepted") == 1
        assert delta(before, page, events, kind="workflow", outcome="duplicate") == 1
        assert delta(before, page, events, kind="workflow", outcome="rejected") == 1
        assert delta(before, page, events, kind="node", outcome="accepted") == 1
        latency = "flyteadmin_event_latency_seconds_count"
        assert delta(before, page, latency, kind="workflow") == 1

        # A launch the cluster refuses: the execution fails, and `kubectl describe` says why.
        client.CoreV1Api(kube_api).create_namespaced_resource_quota(
            namespace,
            {
                "metadata": {"name": "no-workflows"},
                "spec": {"hard": {f"count/{fw_crd.PLURAL}.{fw_crd.GROUP}": "0"}},
            },
        )
        eventually(
            lambda: (
                client.CoreV1Api(kube_api)
                .read_namespaced_resource_quota("no-workflows", namespace)
                .status.hard
            ),
            "the quota's status",
        )
        failed = run(stub, "run-bad")
        launches = "flyteadmin_execution_launches_total"
        eventually(lambda: delta(before, scrape(url), launches, outcome="failed"), "the failure")
        name = execution_object_name(failed)
        store = settings.kubernetes.namespace

        def described() -> str | None:
            out = subprocess.run(
                [str(kubectl_path()), f"--kubeconfig={kubeconfig}", "describe", "executions",
                 name, "-n", store],
                capture_output=True, text=True, timeout=60,
            ).stdout  # fmt: skip
            return out if "LaunchFailed" in out else None

        out = eventually(described, "the LaunchFailed event in kubectl describe")
        assert "Warning" in out and "cannot create the FlyteWorkflow object" in out


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[str, list]]:
    """An OTLP/HTTP traces endpoint on 127.0.0.1 that keeps what it receives: yields its URL
    and the list of (resource attributes, span) it fills."""
    from aiohttp import web
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    received: list = []

    async def traces(request: web.Request) -> web.Response:
        export = trace_service_pb2.ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                received.extend((resource, span) for span in scope.spans)
        body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    loop = LoopThread()

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        return await serve_locally(app)

    runner, port = loop.call(start())
    try:
        yield f"http://127.0.0.1:{port}/v1/traces", received
    finally:
        loop.call(runner.cleanup())
        loop.close()


def test_tracing_exports_rpc_and_kubernetes_spans_continuing_the_callers_trace(settings, unique):
    from flyteadmin.core import tracing
    from flyteadmin.core.config import TracingSettings

    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    with otlp_receiver() as (endpoint, received):
        tracing.configure(TracingSettings(enabled=True, endpoint=endpoint), "flyteadmin-test")
        try:
            with (
                observed_server(settings) as (server, _),
                grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
            ):
                admin_pb2_grpc.AdminServiceStub(channel).RegisterProject(
                    project_pb2.ProjectRegisterRequest(
                        project=project_pb2.Project(id=f"tr-{unique}", name="t")
                    ),
                    metadata=[("traceparent", f"00-{trace_id}-{parent_id}-01")],
                )
                assert http_call(server.http_port, "/api/v1/projects")[0] == 200
        finally:
            tracing.shutdown()  # exports what is buffered
        spans = {span.name: (resource, span) for resource, span in received}

    resource, rpc = spans["flyteidl.service.AdminService/RegisterProject"]
    assert resource["service.name"] == "flyteadmin-test"
    assert (rpc.trace_id.hex(), rpc.parent_span_id.hex()) == (trace_id, parent_id)
    _, kube = spans["kube create projects"]
    assert (kube.trace_id, kube.parent_span_id) == (rpc.trace_id, rpc.span_id)
    _, http = spans["flyteidl.service.AdminService/ListProjects"]
    attributes = {a.key: a.value.string_value for a in http.attributes}
    assert attributes["rpc.system"] == "http" and attributes["rpc.status"] == "OK"
    assert attributes["rpc.method"] == "ListProjects"
    assert http.trace_id != rpc.trace_id  # a new trace: that caller sent none


DASHBOARD = Path(__file__).resolve().parents[2] / "charts/flyteadmin/dashboards/flyteadmin.json"
# Labels Prometheus adds to every scraped series (and histograms' bucket bound).
TARGET_LABELS = {"job", "instance", "le"}
_NAME = re.compile(r"\b((?:flyteadmin|process|python)_[a-z0-9_]+)\b")
_SELECTOR = re.compile(r"\b((?:flyteadmin|process|python)_[a-z0-9_]+)\{([^}]*)\}")
_BY = re.compile(r"\bby \(([^)]*)\)")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names(page: Page) -> set[str]:
    """Every series name the page declares (with or without samples yet)."""
    return {
        family + suffix
        for family, kind in page.types.items()
        for suffix in _SUFFIXES.get(kind, ("",))
    }


def test_every_dashboard_query_names_metrics_the_server_exports(
    settings, storage_settings, unique, kube_api
):
    from tests.integration.test_events_api import WF, Propeller
    from tests.integration.test_operator_executions import _served, _settings, run

    with (
        process_metrics() as url,
        _served(_settings(settings, storage_settings, unique), kube_api) as (stub, _),
    ):
        run(stub, "dash")
        Propeller(stub, "dash").workflow(WF.RUNNING, 1)
        page = eventually(
            lambda: (p := scrape(url)).has("flyteadmin_execution_launches_total") and p,
            "some traffic through every part",
        )
    exported = exported_names(page)
    queries = [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel.get("targets", ())
    ]
    assert len(queries) > 30
    for expr in queries:
        names = set(_NAME.findall(expr))
        assert names, expr
        assert names <= exported, (expr, names - exported)
        # Label names used must be labels of the metrics (checked where they have samples).
        labels = {n: {k for m, ls, _ in page.samples if m == n for k in ls} for n in names}
        for name, selector in _SELECTOR.findall(expr):
            keys = set(re.findall(r"(\w+)\s*[=!]~?", selector))
            if page.has(name):
                assert keys <= labels[name], (expr, keys - labels[name])
        if any(page.has(n) for n in names):
            known = TARGET_LABELS.union(*labels.values())
            for clause in _BY.findall(expr):
                used = {label.strip() for label in clause.split(",")}
                assert used <= known, (expr, used - known)
    # The golden signals have data after one execution's traffic.
    for name in (
        "flyteadmin_rpc_requests_total",
        "flyteadmin_rpc_duration_seconds_bucket",
        "flyteadmin_kube_requests_total",
        "flyteadmin_store_objects",
        "flyteadmin_store_watch_last_event_timestamp_seconds",
        "flyteadmin_operator_reconciles_total",
        "flyteadmin_execution_launch_latency_seconds_bucket",
        "flyteadmin_events_total",
        "flyteadmin_blob_requests_total",
        "process_cpu_seconds_total",
    ):
        assert page.has(name), name
