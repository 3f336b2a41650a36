"""``flyteadmin dev``: the whole control plane on one machine.

Builds what is missing on first use (the Kubernetes binaries, flytepropeller and the blob store,
from Go modules, concurrently), starts (or reuses, with --kubeconfig) a Kubernetes control plane
and the blob store (fake-gcs-server; its objects persist with --data-dir), installs the CRDs,
runs the operator and the API server in this process, starts stock flytepropeller
(docs/propeller.md) and, on the embedded control plane, the pod runner in place of a kubelet
(docs/podrunner.md), and writes a flytekit config file.

Every child process is supervised (``supervisor``): one that dies is restarted with backoff, and
one that keeps dying stops the stack with exit code 1 and its log's last lines. SIGINT/SIGTERM
stop everything within ``STOP_SECONDS`` even if a child is wedged (``Shutdown``); a second
signal stops at once. docs/testbed.md has the policy per component.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from flyteidl.admin import project_pb2

from flyteadmin.core import event_loop, kube
from flyteadmin.core.config import Settings
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.devstack import gobuild
from flyteadmin.devstack.gcs import GcsEmulator, start_gcs_emulator
from flyteadmin.devstack.processes import Child, ProcessGroup, Service, stop_all
from flyteadmin.devstack.supervisor import Supervisor

STOP_SECONDS = 30.0
"""From SIGINT/SIGTERM (or a failure) to exit, at most; then whatever still runs is killed."""


@dataclass(frozen=True)
class DevOptions:
    settings: Settings
    kubeconfig: str | None = None
    data_dir: Path | None = None
    grpc_port: int = 8089
    http_port: int = 8088
    metrics_port: int = 10254  # /metrics, /livez, /readyz (docs/operations.md)
    seed_projects: tuple[str, ...] = ("flytesnacks",)
    auth: bool = False  # `self` auth with a generated client (docs/auth.md)
    propeller: bool = True  # run flytepropeller, built on first use (docs/propeller.md)
    pod_runner: bool = True  # run Pods locally on the embedded control plane (docs/podrunner.md)
    workers: int = 0  # API-server processes (0: one per core; api_server/workers.py)
    clusters: int = 0  # local data-plane clusters executions run in (docs/multicluster.md)


def say(message: str) -> None:
    print(f"flyteadmin dev: {message}", flush=True)


def write_flytekit_config(path: Path, grpc_port: int, credentials=None) -> None:
    config = {"admin": {"endpoint": f"dns:///127.0.0.1:{grpc_port}", "insecure": True}}
    if credentials is not None:  # flytekit's client-credentials flow (clients.md §3.3)
        config["admin"].update(
            authType="ClientSecret",
            clientId=credentials.client_id,
            clientSecretLocation=str(credentials.secret_file),
        )
    path.write_text(yaml.safe_dump(config))


# ---------------------------------------------------------------------------- stopping


class StackFailed(Exception):
    """A supervised part of the stack cannot be kept running; the message says which and why."""


class Shutdown:
    """Bounded stop. The first SIGINT/SIGTERM asks the stack to stop: during start-up it
    interrupts the start (KeyboardInterrupt), while serving it sets the serving loop's stop
    event. From then on (or from ``begin``, on a failure) a watchdog kills every child still
    running and exits after ``STOP_SECONDS``; a second signal does that at once."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._begun = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def serving(self, loop: asyncio.AbstractEventLoop | None, stop: asyncio.Event | None) -> None:
        """Signals now set ``stop`` on ``loop`` (None: back to interrupting)."""
        self._loop, self._stop = loop, stop

    def begin(self) -> None:
        if self._begun.is_set():
            return
        self._begun.set()
        threading.Thread(target=self._watchdog, name="stop-watchdog", daemon=True).start()

    def _on_signal(self, signum: int, _frame) -> None:
        if self._begun.is_set():
            self._kill(f"{signal.Signals(signum).name} again: stopping at once")
        self.begin()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        else:
            raise KeyboardInterrupt

    def _watchdog(self) -> None:
        time.sleep(STOP_SECONDS)
        self._kill(f"not stopped within {STOP_SECONDS:.0f}s: killing what is left")

    def _kill(self, why: str) -> None:
        say(why)
        for pid in self._pids():
            try:
                os.killpg(pid, signal.SIGKILL)  # a child and what it started (own group)
            except OSError:
                try:
                    os.kill(pid, signal.SIGKILL)  # an API-server worker (our group)
                except OSError:
                    pass
        os._exit(1)


# ---------------------------------------------------------------------------- children


def build_missing(options: DevOptions) -> None:
    """First use: build every missing Go program at once (docs/testbed.md has the timings)."""
    from flyteadmin.devstack import gcs_build, k8s_build, propeller_build

    tools = [gcs_build.TOOL] if gcs_build.needs_build() else []
    if (not options.kubeconfig or options.clusters) and k8s_build.needs_build():
        tools.append(k8s_build.TOOL)
    if options.propeller and propeller_build.needs_build():
        tools.append(propeller_build.TOOL)
    if not tools:
        return
    if shutil.which("go") is None:
        names = ", ".join(tool.name for tool in tools)
        raise gobuild.GoBuildError(
            f"first run: {names} must be built from Go modules, and Go (>= 1.26) is not "
            "installed. Install Go, or give prebuilt binaries (KUBEBUILDER_ASSETS, "
            f"{propeller_build.BINARY_ENV}, {gcs_build.BINARY_ENV}; docs/testbed.md)"
        )
    say(
        f"first run: building {', '.join(t.name for t in tools)} from Go modules into "
        f"{gobuild.cache_root()} (once; about 10 minutes on 2 cores)"
    )
    gobuild.ensure_all(tools, log=say)


def start_pod_runner(
    kubeconfig: str, workdir: Path, blobs: GcsEmulator, group: ProcessGroup
) -> Service:
    """The pod runner as a child process (``python -m flyteadmin.devstack.podrunner``)."""
    from flyteadmin.devstack.podrunner import gcs_emulator_env
    from flyteadmin.devstack.podrunner.__main__ import READY_FILE

    argv = [sys.executable, "-m", "flyteadmin.devstack.podrunner"]
    argv += ["--kubeconfig", kubeconfig, "--workdir", str(workdir)]
    for name, value in gcs_emulator_env(blobs.endpoint).items():
        argv += ["--env", f"{name}={value}"]
    # PYTHONSAFEPATH: the working directory may be the repository, whose operator/ folder
    # would shadow the standard library's operator module.
    # PROMETHEUS_MULTIPROC_DIR: the metrics page is the API server's and the operator's.
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONSAFEPATH"] = "1"
    service = Service("pod-runner", argv, env, (workdir / READY_FILE).exists, group)
    service.start()
    return service


@dataclass
class Stack:
    """What ``run_dev`` started; stopped together."""

    workdir: Path
    temporary: bool
    supervisor: Supervisor
    groups: list[ProcessGroup] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    workers: Any = None
    """The API server's worker processes (``api_server.workers.Workers``), once started."""

    def children(self) -> list[Child]:
        """Every child, in reverse order of start (how they are stopped)."""
        return [c for group in reversed(self.groups) for c in reversed(group.children)]

    def pids(self) -> list[int]:
        """Every process to kill when the stop overruns."""
        workers = self.workers.pids() if self.workers is not None else []
        return [*workers, *(c.popen.pid for c in self.children() if c.alive())]

    def supervise(self, group: ProcessGroup, *services: Service, label: str = "") -> None:
        if group not in self.groups:
            self.groups.append(group)
        for service in services:
            self.supervisor.watch(service, label=label)

    def stop(self) -> None:
        self.supervisor.halt()
        stop_all(self.children())
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.supervisor.join()
        if self.temporary:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------- serving


async def _seed(settings: Settings, projects: tuple[str, ...]) -> None:
    from flyteadmin.core.backend import Backend

    backend = Backend(settings)
    await backend.start()
    try:
        for project_id in projects:
            request = project_pb2.ProjectRegisterRequest(
                project=project_pb2.Project(
                    id=project_id, name=project_id, description=f"{project_id} description"
                )
            )
            try:
                await backend.projects.register(request)
                say(f"created project {project_id}")
            except AdminError as error:
                if error.code != Code.ALREADY_EXISTS:
                    raise
    finally:
        await backend.stop()


class _SignalsOffTheMainThread(logging.Filter):
    """Kopf warns on every start that it ignores OS signals off the main thread. Here that is
    the design: the main thread handles them and stops the operator through its stop flag."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "OS signals are ignored" not in record.getMessage()


async def _serve(
    settings: Settings,
    options: DevOptions,
    flytekit_config: Path,
    stack: Stack,
    shutdown: Shutdown,
    propeller_setups=(),
) -> None:
    from flyteadmin.api_server.workers import Workers
    from flyteadmin.metrics_server import serve_metrics
    from flyteadmin.operator.runner import OperatorThread

    stop = asyncio.Event()
    shutdown.serving(asyncio.get_running_loop(), stop)
    logging.getLogger("kopf._core.reactor.running").addFilter(_SignalsOffTheMainThread())
    # The API server runs in worker processes of its own: the operator, the pod runner and the
    # API then never wait for each other's CPU (one Python process is one core). Workers
    # supervises them itself (``check``).
    # --workers, else server.workers (1). Not one per core: every worker watches every write,
    # and on a small machine the second one costs the writes more than it gives the reads
    # (docs/operations.md, "Sizing").
    server = Workers(settings, options.workers or None, say=say)
    stack.workers = server
    metrics = await serve_metrics(settings, also=server.problems)  # every process's metrics
    operator = OperatorThread(settings)
    try:
        # Seeded before the workers start, so that their caches load the projects with
        # everything else: seeded after, a client's first call right after `ready` could reach
        # a worker whose watch had not delivered them yet.
        await _seed(settings, options.seed_projects)
        await asyncio.to_thread(server.start)
        say(f"API server: {server.count} worker process(es)")
        await asyncio.to_thread(operator.start)
        for setup in propeller_setups:
            from flyteadmin.devstack.propeller import start_propeller

            group = ProcessGroup(setup.workdir / "logs")
            stack.groups.append(group)
            # Started from this (the main) thread, which outlives it: a child's death signal
            # follows the thread that forked it (processes.py).
            propeller = start_propeller(setup, group)
            where = f" (cluster {setup.cluster_id})" if setup.cluster_id else ""
            label = f"cluster {setup.cluster_id}: " if setup.cluster_id else ""
            stack.supervise(group, propeller.service, label=label)
            say(f"flytepropeller{where}: running, log {propeller.log_path}")
        say(f"flytekit config: {flytekit_config}")
        say(f"metrics: {metrics.url}")
        say(f"ready: gRPC 127.0.0.1:{server.grpc_port}, HTTP http://127.0.0.1:{server.http_port}")
        while not stop.is_set() and operator.running and not stack.supervisor.failed.is_set():
            await asyncio.to_thread(server.check)
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass
        if stack.supervisor.failed.is_set():
            raise StackFailed(stack.supervisor.failure)
        if not operator.running:
            raise StackFailed(f"the operator stopped unexpectedly: {operator.error!r}")
    finally:
        shutdown.begin()
        shutdown.serving(None, None)
        stack.supervisor.halt()
        await asyncio.to_thread(operator.stop)
        await asyncio.to_thread(server.stop)
        await metrics.stop()


def run_dev(options: DevOptions) -> None:
    """Run the stack until SIGINT/SIGTERM; exit 1 (with the reason said) if it fails."""
    planned = []
    if options.clusters:  # a wrong count or configuration fails before anything starts
        from flyteadmin.devstack import dataplanes

        planned = dataplanes.planned_clusters(options.clusters, options.settings)
    temporary = options.data_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="flyteadmin-dev-")) if temporary else options.data_dir
    assert workdir is not None
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir, temporary, Supervisor(say))
    shutdown = Shutdown(stack.pids)
    shutdown.install()
    failed = False
    try:
        _run(options, stack, shutdown, planned)
    except KeyboardInterrupt:
        pass
    except (StackFailed, gobuild.GoBuildError, RuntimeError, TimeoutError) as exc:
        # What failed and why, in a line a user can act on (a child's log tail included).
        say(f"stopping: {exc}")
        failed = True
    finally:
        shutdown.begin()
        stack.stop()
        say("stopped")
    if failed:
        sys.exit(1)


def _run(options: DevOptions, stack: Stack, shutdown: Shutdown, planned: list) -> None:
    workdir = stack.workdir
    build_missing(options)
    kubeconfig = options.kubeconfig
    plane = None
    if not kubeconfig:
        from flyteadmin.devstack.controlplane import start_control_plane

        say("starting the local Kubernetes control plane")
        plane = start_control_plane(workdir / "k8s", durable=not stack.temporary, log=say)
        stack.cleanups.append(plane.stop)
        stack.supervise(plane.processes, *plane.services)
        kubeconfig = str(plane.kubeconfig)
    say(f"kubeconfig: {kubeconfig}")
    blobs = start_gcs_emulator(
        workdir / "gcs",
        bucket=options.settings.storage.bucket or "flyteadmin",
        data_dir=None if stack.temporary else workdir / "gcs" / "store",
        log=say,
    )
    stack.cleanups.append(blobs.stop)
    stack.supervise(blobs.processes, blobs.service)
    say(f"blob store: {blobs.endpoint} bucket {blobs.bucket}")
    # `auto` pins here: the dev stack owns its machine (api_server/affinity.py).
    pinning = options.settings.server.thread_pinning
    settings = dataclasses.replace(
        options.settings,
        server=dataclasses.replace(
            options.settings.server,
            host="127.0.0.1",
            grpc_port=options.grpc_port,
            http_port=options.http_port,
            thread_pinning="always" if pinning == "auto" else pinning,
        ),
        metrics=dataclasses.replace(options.settings.metrics, port=options.metrics_port),
        kubernetes=dataclasses.replace(options.settings.kubernetes, kubeconfig=kubeconfig),
        storage=blobs.storage_settings(options.settings.storage),
    )
    credentials = None
    if options.auth:
        from flyteadmin.core.auth.dev import prepare_dev_credentials

        credentials = prepare_dev_credentials(workdir / "auth")
        settings = dataclasses.replace(
            settings,
            auth=dataclasses.replace(
                settings.auth,
                mode="self",
                secrets_dir=str(credentials.directory),
                public_url=f"http://127.0.0.1:{options.http_port}",
            ),
        )
        say(f"auth: client {credentials.client_id}, secret file {credentials.secret_file}")
    api = kube.api_client(kubeconfig)
    try:
        kube.apply_crds(api, flyteworkflow=True)
        kube.ensure_namespace(api, settings.kubernetes.namespace)
    finally:
        api.close()
    flytekit_config = workdir / "flytekit.yaml"
    write_flytekit_config(flytekit_config, options.grpc_port, credentials)
    planes = start_data_planes(planned, stack, blobs, pod_runner=options.pod_runner)
    if planes:
        from flyteadmin.devstack.dataplanes import with_data_planes

        settings = with_data_planes(settings, planes)
    pods_dir = None
    if plane is not None and options.pod_runner and not planes:
        # The embedded control plane has no kubelet: task Pods run as local processes.
        # With --kubeconfig the cluster's kubelets run them; with data planes, theirs do.
        group = ProcessGroup(workdir / "podrunner" / "logs")
        stack.groups.append(group)
        runner = start_pod_runner(kubeconfig, workdir / "podrunner", blobs, group)
        stack.supervise(group, runner)
        pods_dir = workdir / "podrunner" / "pods"
        say(f"pod runner: Pods run as local processes, logs under {pods_dir}")
    propeller_setups = []
    if options.propeller:
        from flyteadmin.devstack.propeller import dev_setup

        # One propeller per cluster that runs executions: each data plane, else this one.
        homes = [(p.workdir, p.cluster.kubeconfig, p.name, p.pod_logs) for p in planes]
        for home, config, cluster_id, logs in homes or [(workdir, kubeconfig, "", pods_dir)]:
            setup = dev_setup(
                workdir=home,
                kubeconfig=config,
                grpc_port=options.grpc_port,
                blobs=blobs,
                credentials=credentials,
                pod_logs_dir=logs,
                log=say,
            )
            propeller_setups.append(dataclasses.replace(setup, cluster_id=cluster_id))
    stack.supervisor.start()
    event_loop.run(
        _serve(settings, options, flytekit_config, stack, shutdown, propeller_setups),
        settings.event_loop,
    )


def start_data_planes(planned: list, stack: Stack, blobs: GcsEmulator, *, pod_runner: bool):
    """``--clusters``: the data-plane clusters (dataplanes.py), their control planes and pod
    runners supervised like the control plane's own."""
    if not planned:
        return []
    from flyteadmin.devstack import dataplanes

    planes = dataplanes.start_data_planes(
        planned, stack.workdir, pod_runner=False, pod_env={}, durable=not stack.temporary, log=say
    )
    stack.cleanups.append(lambda: dataplanes.stop_data_planes(planes))
    for data_plane in planes:
        label = f"cluster {data_plane.name}: "
        stack.supervise(data_plane.plane.processes, *data_plane.plane.services, label=label)
        if pod_runner:
            home = data_plane.workdir / "podrunner"
            group = ProcessGroup(home / "logs")
            stack.groups.append(group)
            config = data_plane.cluster.kubeconfig
            data_plane.runner = start_pod_runner(config, home, blobs, group)
            stack.supervise(group, data_plane.runner, label=label)
    return planes
