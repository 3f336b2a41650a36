"""``flyteadmin dev``: the whole control plane on one machine.

Starts (or reuses, with --kubeconfig) a Kubernetes control plane and a GCS emulator (the blob
store; its blobs persist with --data-dir), installs the CRDs, runs the operator and the API
server in one process, starts stock flytepropeller when it is built (docs/propeller.md) and, on
the embedded control plane, a local pod runner in place of a kubelet (docs/podrunner.md), writes
a flytekit config file, and stops everything on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from flyteidl.admin import project_pb2

from flyteadmin.core import kube
from flyteadmin.core.config import Settings
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.devstack.gcs import start_gcs_emulator


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
    propeller: bool = True  # start flytepropeller when it is built (docs/propeller.md)
    workers: int = 0  # API-server processes (0: one per core; api_server/workers.py)
    pod_runner: bool = True  # run Pods locally on the embedded control plane (docs/podrunner.md)
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


async def _serve(
    settings: Settings, options: DevOptions, flytekit_config: Path, propeller_setups=()
) -> None:
    from flyteadmin.api_server.workers import Workers
    from flyteadmin.cli import install_signal_stop
    from flyteadmin.metrics_server import serve_metrics
    from flyteadmin.operator.runner import OperatorThread

    stop = install_signal_stop()
    # The API server runs in worker processes of its own: the operator, the pod runner and the
    # API then never wait for each other's CPU (one Python process is one core).
    server = Workers(settings, options.workers or None, say=say)
    metrics = await serve_metrics(settings, also=server.problems)  # every process's metrics
    operator = OperatorThread(settings)
    propellers = []
    try:
        await asyncio.to_thread(server.start)
        say(f"API server: {server.count} worker process(es)")
        await _seed(settings, options.seed_projects)
        await asyncio.to_thread(operator.start)
        for setup in propeller_setups:
            from flyteadmin.devstack.propeller import start_propeller

            propellers.append(await asyncio.to_thread(start_propeller, setup))
            where = f" (cluster {setup.cluster_id})" if setup.cluster_id else ""
            say(f"flytepropeller{where}: running, log {propellers[-1].log_path}")
        say(f"flytekit config: {flytekit_config}")
        say(f"metrics: {metrics.url}")
        say(f"ready: gRPC 127.0.0.1:{server.grpc_port}, HTTP http://127.0.0.1:{server.http_port}")
        while not stop.is_set() and operator.running:
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass
            await asyncio.to_thread(server.check)
            for propeller in [p for p in propellers if not p.alive()]:
                tail = propeller.child.log_tail()
                say(f"flytepropeller exited; executions will not run. Its log ends:\n{tail}")
                propellers.remove(propeller)
        if not operator.running:
            raise RuntimeError("the operator stopped unexpectedly") from operator.error
    finally:
        for propeller in propellers:
            await asyncio.to_thread(propeller.stop)
        await asyncio.to_thread(operator.stop)
        await asyncio.to_thread(server.stop)
        await metrics.stop()


def run_dev(options: DevOptions) -> None:
    if options.clusters:  # a wrong count or configuration fails before anything starts
        from flyteadmin.devstack import dataplanes

        planned = dataplanes.planned_clusters(options.clusters, options.settings)
    temporary = options.data_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="flyteadmin-dev-")) if temporary else options.data_dir
    assert workdir is not None
    workdir.mkdir(parents=True, exist_ok=True)
    plane = None
    blobs = None
    runner = None
    planes = []
    try:
        kubeconfig = options.kubeconfig
        if not kubeconfig:
            from flyteadmin.devstack.controlplane import start_control_plane

            say("starting the local Kubernetes control plane")
            plane = start_control_plane(workdir / "k8s", log=say)
            kubeconfig = str(plane.kubeconfig)
        say(f"kubeconfig: {kubeconfig}")
        blobs = start_gcs_emulator(
            workdir / "gcs",
            bucket=options.settings.storage.bucket or "flyteadmin",
            data_dir=None if temporary else workdir / "gcs" / "data",
        )
        say(f"blob store: {blobs.endpoint} bucket {blobs.bucket}")
        settings = dataclasses.replace(
            options.settings,
            server=dataclasses.replace(
                options.settings.server,
                host="127.0.0.1",
                grpc_port=options.grpc_port,
                http_port=options.http_port,
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
        if options.clusters:
            from flyteadmin.devstack.podrunner import gcs_emulator_env

            planes = dataplanes.start_data_planes(
                planned,
                workdir,
                pod_runner=options.pod_runner,
                pod_env=gcs_emulator_env(blobs.endpoint),
                log=say,
            )
            settings = dataplanes.with_data_planes(settings, planes)
        pods_dir = None
        if plane is not None and options.pod_runner and not planes:
            # The embedded control plane has no kubelet: task Pods run as local processes.
            # With --kubeconfig the cluster's kubelets run them.
            from flyteadmin.devstack.podrunner import PodRunner, RunnerOptions, gcs_emulator_env

            runner = PodRunner(
                kubeconfig,
                workdir / "podrunner",
                RunnerOptions(extra_env=gcs_emulator_env(blobs.endpoint)),
            )
            runner.start()
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
                if setup is None:
                    break  # not built (said once)
                propeller_setups.append(dataclasses.replace(setup, cluster_id=cluster_id))
        asyncio.run(_serve(settings, options, flytekit_config, propeller_setups))
    finally:
        if runner is not None:
            runner.stop()
        if planes:
            from flyteadmin.devstack.dataplanes import stop_data_planes

            stop_data_planes(planes)
        if blobs is not None:
            blobs.stop()
        if plane is not None:
            plane.stop()
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
        say("stopped")
