"""Executions launched per second across 1, 2 and 4 local data-plane clusters (issue 17).

    python -m bench.clusters [--clusters 1,2,4] [--executions E] [--clients C]

For each cluster count N, a fresh stack: the control plane (local Kubernetes, ``flyteadmin
serve`` and ``flyteadmin operator`` as processes, a GCS emulator) and N data-plane clusters
(local control planes, each with stock flytepropeller whose cluster-id is its name). Nothing
runs Pods, so each execution stops at RUNNING with its first task queued: propeller's workflow,
node and task events up to there are part of the load. E executions are created by C clients
as fast as they go and spread over the clusters by the equal-weight choice. A watch on the
FlyteWorkflow objects of each data-plane cluster records when the operator created each one
there (launched), and one on the Execution objects when propeller's RUNNING event reached the
API server (running).

Figures per N: creates/s, launched/s and running/s (each from the first create to the moment 90%
of the executions got there), the median delay from create to launched and to running, and the cores
each group of processes used over the whole run. Prints figures only; never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import yaml
from flyteidl.admin import execution_pb2, launch_plan_pb2, project_pb2
from flyteidl.core import interface_pb2, literals_pb2
from kubernetes import client, watch

from bench.common import (
    MACHINE,
    Stack,
    machine_info,
    print_table,
    run_main,
    say,
    stack,
)
from bench.requests import (
    INT,
    PROJECT,
    RPC_TIMEOUT,
    RT,
    admin_stubs,
    chain_workflow,
    ident,
    task_request,
)
from flyteadmin.core import crds, kube
from flyteadmin.core.config import ExecutionCluster
from flyteadmin.core.flyteworkflow import crd as fw_crd
from flyteadmin.devstack import propeller_build
from flyteadmin.devstack.dataplanes import DataPlane, start_data_planes, stop_data_planes
from flyteadmin.devstack.processes import ProcessGroup, wait_until
from flyteadmin.devstack.propeller import PropellerSetup, start_propeller

DOMAIN, VERSION = "development", "v1"
TASK, WF, LP = "bench.mc.t", "bench.mc.wf", "bench.mc.lp"
NAMESPACE = f"{PROJECT}-{DOMAIN}"
# Process-name prefixes -> report columns (cores used, summed over the group).
GROUPS = {
    "srv": ("server",),
    "operator": ("operator",),
    "cp k8s": ("kube-apiserver", "etcd", "kube-controller-manager"),
    "gcs": ("gcs-emulator",),
    "dp k8s": ("dp/",),
    "propellers": ("propeller/",),
    "gen": ("loadgen",),
}


@dataclasses.dataclass
class Outcome:
    clusters: int
    executions: int
    create_seconds: float
    launched: dict[str, float]
    """Execution name -> seconds from the first create to its FlyteWorkflow's creation."""
    running: dict[str, float]
    created_at: dict[str, float]
    per_cluster: dict[str, int]
    cores: dict[str, float]
    wall: float
    errors: list[str]
    """CreateExecution failures (their executions are left out)."""


# --------------------------------------------------------------------------------- the stack


@contextlib.contextmanager
def data_planes(count: int, workdir: Path) -> Iterator[list[DataPlane]]:
    """``count`` local data-plane clusters (as ``flyteadmin dev --clusters`` starts them, without
    pod runners), all serving one label."""
    clusters = [ExecutionCluster(name=f"dp-{i + 1}", labels=("bench",)) for i in range(count)]
    planes = start_data_planes(clusters, workdir, pod_runner=False, pod_env={}, log=say)
    try:
        yield planes
    finally:
        stop_data_planes(planes)


def cluster_config(planes: list[DataPlane]) -> dict:
    clusters = [
        {"name": p.name, "kubeconfig": p.cluster.kubeconfig, "labels": list(p.cluster.labels)}
        for p in planes
    ]
    # Launches and namespaces go through the operator's event handlers; the periodic passes
    # stay out of the measured window.
    return {
        "execution_clusters": {"clusters": clusters, "probe_seconds": 2},
        "operator": {"resync_seconds": 600},
    }


def start_operator(bench: Stack, group: ProcessGroup) -> None:
    config = bench.workdir / "flyteadmin.yaml"
    argv = [sys.executable, "-m", "flyteadmin.cli", "--log-level", "WARNING", "operator"]
    argv += ["--config", str(config), "--kubeconfig", bench.kubeconfig]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTEADMIN__")}
    env["PYTHONSAFEPATH"] = "1"  # the repo root's operator/ must not shadow the stdlib's
    child = group.start("operator", argv, env)
    bench.processes["operator"] = child.popen.pid


def start_propellers(bench: Stack, planes: list[DataPlane], group: ProcessGroup) -> None:
    binary = propeller_build.find_binary()
    if binary is None:
        raise SystemExit(
            "flytepropeller is not built: python -m flyteadmin.devstack.propeller_build build"
        )
    storage = yaml.safe_load((bench.workdir / "flyteadmin.yaml").read_text())["storage"]
    for plane in planes:
        name = plane.name
        setup = PropellerSetup(
            binary=binary,
            kubeconfig=plane.cluster.kubeconfig,
            admin_endpoint=bench.grpc_target,
            gcs_endpoint=storage["endpoint"],
            bucket=storage["bucket"],
            credentials_file=Path(storage["credentials_file"]),
            workdir=bench.workdir / f"propeller-{name}",
            cluster_id=name,
        )
        propeller = start_propeller(setup, group)
        bench.processes[f"propeller/{name}"] = propeller.child.popen.pid
        for child in plane.plane.processes.children:
            bench.processes[f"dp/{name}/{child.name}"] = child.popen.pid


async def register(bench: Stack) -> None:
    async with admin_stubs(bench.grpc_target, 1) as (stub,):
        project = project_pb2.Project(id=PROJECT, name=PROJECT)
        await stub.RegisterProject(project_pb2.ProjectRegisterRequest(project=project))
        task = task_request(DOMAIN, TASK, VERSION)
        await stub.CreateTask(task)
        await stub.CreateWorkflow(chain_workflow(DOMAIN, WF, VERSION, task.id, nodes=2))
        default = literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=1))
        )
        param = interface_pb2.Parameter(var=interface_pb2.Variable(type=INT), default=default)
        await stub.CreateLaunchPlan(
            launch_plan_pb2.LaunchPlanCreateRequest(
                id=ident(RT.LAUNCH_PLAN, DOMAIN, LP, VERSION),
                spec=launch_plan_pb2.LaunchPlanSpec(
                    workflow_id=ident(RT.WORKFLOW, DOMAIN, WF, VERSION),
                    default_inputs=interface_pb2.ParameterMap(parameters={"x": param}),
                ),
            )
        )


def wait_for_namespaces(planes: list[DataPlane]) -> None:
    """The operator is up and reaches every cluster: the project's namespace is in each."""
    for plane in planes:
        api = kube.api_client(plane.cluster.kubeconfig)
        try:
            core = client.CoreV1Api(api)

            def present(core=core) -> bool:
                return any(n.metadata.name == NAMESPACE for n in core.list_namespace().items)

            wait_until(present, timeout=120, what=f"namespace {NAMESPACE} in {plane.name}")
        finally:
            api.close()


# --------------------------------------------------------------------------------- measuring


class FirstSeen:
    """A watch in a thread on one kind of custom object (one namespace, or all): when each
    object first met ``wanted`` (monotonic seconds), by ``key``."""

    def __init__(self, kubeconfig: str, kind: tuple[str, str, str], namespace: str, key, wanted):
        self.seen: dict[str, float] = {}
        self._args = kind  # group, version, plural
        self._namespace, self._key, self._wanted = namespace, key, wanted
        self._stop = threading.Event()
        self._api = kube.api_client(kubeconfig)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self._api)
        group, version, plural = self._args
        if self._namespace:
            lister = functools.partial(
                custom.list_namespaced_custom_object, group, version, self._namespace, plural
            )
        else:
            lister = functools.partial(custom.list_cluster_custom_object, group, version, plural)
        resource_version = ""
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                lister, resource_version=resource_version, timeout_seconds=5
            )
            for event in stream:
                obj = event["object"]
                resource_version = obj["metadata"]["resourceVersion"]
                name = self._key(obj)
                if self._wanted(obj):
                    self.seen.setdefault(name, time.monotonic())
                if self._stop.is_set():
                    break

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._api.close()


def watch_launches(planes: list[DataPlane]) -> list[FirstSeen]:
    """The FlyteWorkflow objects of every data-plane cluster, by execution name."""
    return [
        FirstSeen(
            p.cluster.kubeconfig,
            (fw_crd.GROUP, fw_crd.VERSION, fw_crd.PLURAL),
            "",
            key=lambda o: o["metadata"]["name"],
            wanted=lambda o: True,
        )
        for p in planes
    ]


def watch_running(bench: Stack) -> FirstSeen:
    """The store's Execution objects: RUNNING (or beyond) from propeller's events."""
    return FirstSeen(
        bench.kubeconfig,
        (crds.GROUP, crds.VERSION, crds.EXECUTION.plural),
        bench.namespace,
        key=lambda o: o["spec"]["id"]["name"],
        wanted=lambda o: (o.get("status") or {}).get("phase") in ("RUNNING", "SUCCEEDED"),
    )


async def create_all(bench: Stack, total: int, clients: int) -> tuple[dict[str, float], list[str]]:
    """Create ``total`` executions with ``clients`` concurrent clients: name -> when sent (of
    those created), and the errors of the others."""
    names = iter(f"mc{n:06d}" for n in range(total))
    sent: dict[str, float] = {}
    errors: list[str] = []

    async def client_loop(stub) -> None:
        for name in names:
            request = execution_pb2.ExecutionCreateRequest(
                project=PROJECT,
                domain=DOMAIN,
                name=name,
                spec=execution_pb2.ExecutionSpec(
                    launch_plan=ident(RT.LAUNCH_PLAN, DOMAIN, LP, VERSION)
                ),
            )
            started = time.monotonic()
            try:
                await stub.CreateExecution(request, timeout=RPC_TIMEOUT)
            except grpc.RpcError as exc:
                errors.append(f"{exc.code().name}: {exc.details()}")
                continue
            sent[name] = started

    async with admin_stubs(bench.grpc_target, clients) as stubs:
        await asyncio.gather(*(client_loop(s) for s in stubs))
    return sent, errors


def run_one(count: int, args: argparse.Namespace, workdir: Path) -> Outcome:
    with (
        data_planes(count, workdir / f"n{count}") as planes,
        stack(blobstore=True, server_config=cluster_config(planes)) as bench,
    ):
        group = ProcessGroup(bench.workdir / "logs-extra")
        try:
            start_operator(bench, group)
            start_propellers(bench, planes, group)
            asyncio.run(register(bench))
            wait_for_namespaces(planes)
            launches, running = watch_launches(planes), watch_running(bench)
            watchers = [*launches, running]
            try:
                say(f"{count} cluster(s): creating {args.executions} executions")
                before = bench.cpu_seconds()
                started = time.monotonic()
                sent, errors = asyncio.run(create_all(bench, args.executions, args.clients))
                create_seconds = time.monotonic() - started
                deadline = time.monotonic() + args.timeout
                while time.monotonic() < deadline and len(running.seen) < len(sent):
                    time.sleep(0.2)
                wall = time.monotonic() - started
                after = bench.cpu_seconds()
            finally:
                for watcher in watchers:
                    watcher.stop()
            launched = {n: t for w in launches for n, t in w.seen.items()}
            cores = {k: (after[k] - before.get(k, 0.0)) / wall for k in after}
            per_cluster = {p.name: len(w.seen) for p, w in zip(planes, launches, strict=True)}
            return Outcome(
                clusters=count,
                executions=len(sent),
                create_seconds=create_seconds,
                launched={n: t - started for n, t in launched.items()},
                running={n: t - started for n, t in running.seen.items()},
                created_at={n: t - started for n, t in sent.items()},
                per_cluster=per_cluster,
                cores=cores,
                wall=wall,
                errors=errors,
            )
        finally:
            group.stop()


# --------------------------------------------------------------------------------- reporting


def rate(times: dict[str, float]) -> str:
    """Per second, up to the moment 90% had got there (one straggler does not set the rate)."""
    if not times:
        return "0"
    ordered = sorted(times.values())
    count = max(1, int(0.9 * len(ordered)))
    moment = ordered[count - 1]
    return f"{count / moment:,.1f}" if moment else "-"


def median_delay(outcome: Outcome, times: dict[str, float]) -> str:
    delays = [times[n] - outcome.created_at[n] for n in times if n in outcome.created_at]
    return f"{statistics.median(delays):.2f}" if delays else "-"


def group_cores(cores: dict[str, float]) -> dict[str, float]:
    out = {}
    for column, prefixes in GROUPS.items():
        out[column] = sum(v for k, v in cores.items() if k.startswith(prefixes))
    ours = sum(v for k, v in cores.items() if k != MACHINE)
    out["all"] = ours
    out["other"] = max(cores.get(MACHINE, 0.0) - ours, 0.0)
    return out


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print()
    print(f"machine: {machine_info()}")
    print(
        f"command: python -m bench.clusters --clusters {','.join(map(str, args.clusters))} "
        f"--executions {args.executions} --clients {args.clients}"
    )
    print()
    headers = ["clusters", "creates/s", "errors", "launched/s", "running/s", "launched", "running"]
    headers += ["p50 to launched s", "p50 to running s", "wall s"]
    rows = []
    for o in outcomes:
        rows.append(
            [
                str(o.clusters),
                f"{o.executions / o.create_seconds:,.1f}",
                str(len(o.errors)),
                rate(o.launched),
                rate(o.running),
                f"{len(o.launched)}/{o.executions}",
                f"{len(o.running)}/{o.executions}",
                median_delay(o, o.launched),
                median_delay(o, o.running),
                f"{o.wall:.1f}",
            ]
        )
    print_table(headers, rows)
    print()
    columns = [*GROUPS, "all", "other"]
    print_table(
        ["clusters", *[f"cpu {c}" for c in columns]],
        [[str(o.clusters)] + [f"{group_cores(o.cores)[c]:.2f}" for c in columns] for o in outcomes],
    )
    print(
        "(cores used from the first create to the last RUNNING: API server (srv), operator, the "
        "control plane's kube-apiserver + etcd + controller manager (cp k8s), GCS emulator, all "
        "data-plane clusters' kube-apiserver + etcd + controller manager (dp k8s), all "
        "propellers, this load generator (gen), their sum, and other processes on the machine)"
    )
    print()
    # CPU time per execution: what the control plane spends on one, and the data planes.
    sides = {
        "control plane": ("srv", "operator", "cp k8s"),
        "data planes": ("dp k8s", "propellers"),
    }
    rows = []
    for o in outcomes:
        grouped = group_cores(o.cores)
        row = [str(o.clusters)]
        for columns in sides.values():
            seconds = sum(grouped[c] for c in columns) * o.wall
            row.append(f"{1000 * seconds / o.executions:.0f}")
        rows.append(row)
    print_table(["clusters", *[f"{side} cpu ms/execution" for side in sides]], rows)
    print()
    for o in outcomes:
        spread = ", ".join(f"{k} {v}" for k, v in sorted(o.per_cluster.items()))
        print(f"{o.clusters} cluster(s): executions launched per cluster: {spread}")
        if o.errors:
            print(f"{o.clusters} cluster(s): first create error: {o.errors[0]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.clusters", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument(
        "--clusters",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 4],
        help="data-plane cluster counts to measure, in turn (1,2,4)",
    )
    parser.add_argument("--executions", type=int, default=300, help="executions per count (300)")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds to wait for every RUNNING (600)"
    )
    args = parser.parse_args(argv)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-clusters-{os.getpid()}"
    outcomes = []
    try:
        for count in args.clusters:
            try:
                outcomes.append(run_one(count, args, workdir))
            except Exception as exc:  # noqa: BLE001 - the other counts still have figures
                say(f"{count} cluster(s) failed: {exc!r}")
                continue
            done = outcomes[-1]
            say(
                f"{count} cluster(s): {len(done.launched)} launched, {len(done.running)} running "
                f"in {done.wall:.1f} s; {len(done.errors)} create errors"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(outcomes, args)


if __name__ == "__main__":
    run_main(main)
