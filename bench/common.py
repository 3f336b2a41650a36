"""Shared pieces of the benchmarks: the stack (control plane + API server process), timed load
loops (asyncio clients or threads), percentiles, CPU accounting and table printing.

Every benchmark runs the API server as a separate process (its own GIL) and drives it from this
one; everything started here is stopped by the ``stack`` context manager, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flyteadmin.core import kube
from flyteadmin.devstack.processes import Child, ProcessGroup, free_port, wait_until


def run_main(main: Callable[[], None]) -> None:
    """Run a benchmark's ``main``: SIGTERM, like Ctrl-C, raises KeyboardInterrupt, so that the
    ``stack`` clean-up runs either way; exit status 130 when interrupted."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a shell
        signal.signal(signal.SIGINT, interrupt)
    try:
        main()
    except KeyboardInterrupt:
        say("interrupted; stopped everything")
        sys.exit(130)


def load_options(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A parser with the options every benchmark starts with: --clients, --seconds, --warmup."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds each (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds each (2)")
    return parser


def stack_options(parser: argparse.ArgumentParser, phases: tuple[str, ...], what: str) -> None:
    """The options every benchmark ends with: --kubeconfig, --profile and --only (of
    ``phases``; ``what`` names them in the help, e.g. "timed phases")."""
    parser.add_argument("--kubeconfig", help="use this cluster instead of a local control plane")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the server under bench/serve_profiled.py; its pstats file goes here",
    )
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=list(phases),
        help=f"comma-separated {what} to run, of {','.join(phases)} (all)",
    )


def parse_args(
    parser: argparse.ArgumentParser, phases: tuple[str, ...], argv: list[str] | None
) -> argparse.Namespace:
    """Parse, refusing phases in --only that are not in ``phases``."""
    args = parser.parse_args(argv)
    if unknown := set(args.only) - set(phases):
        parser.error(f"unknown phase(s) {sorted(unknown)}; known: {','.join(phases)}")
    return args


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    kubeconfig: str
    namespace: str
    grpc_port: int
    http_port: int
    workdir: Path
    server: Child
    plane_start_seconds: float | None
    """Wall time of ``start_control_plane`` (binaries already built), None with --kubeconfig."""
    server_start_seconds: float
    processes: dict[str, int] = field(default_factory=dict)
    """Name -> pid of every process whose CPU time is reported (server, kube-apiserver, etcd)."""
    plane_dir: Path | None = None
    """The local control plane's folder (``ports.json``, logs), None with --kubeconfig."""

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def server_peak_rss_mib(self) -> float | None:
        return _status_kib(self.server.popen.pid, "VmHWM") / 1024 or None

    def server_rss_mib(self) -> float | None:
        """The server's resident set now (``VmRSS``)."""
        return _status_kib(self.server.popen.pid, "VmRSS") / 1024 or None

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) so far of each reported process and of this load generator,
        and under ``MACHINE`` the busy CPU time of the whole machine (from /proc/stat)."""
        out = {name: cpu_seconds(pid) for name, pid in self.processes.items()}
        out["loadgen"] = time.process_time()
        out[MACHINE] = _machine_busy_seconds()
        return out


MACHINE = "machine"


def _machine_busy_seconds() -> float:
    """All CPUs' non-idle time: user nice system (idle iowait) irq softirq steal."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    ticks = [int(v) for v in first[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS


def _status_kib(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


_TICKS = os.sysconf("SC_CLK_TCK")


def add_apiserver_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark that writes straight to a running stack's kube-apiserver and
    counts its and etcd's CPU."""
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--apiserver-pid", type=int, required=True)
    parser.add_argument("--etcd-pid", type=int, required=True)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the process has used; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


async def timed_pass(
    action: Callable[[int], Awaitable[None]], count: int, clients: int, pids: dict[str, int]
) -> tuple[float, dict[str, float]]:
    """``action(i)`` for i in 0..count-1 from ``clients`` concurrent callers: the wall time and
    the CPU seconds each process of ``pids`` (name -> pid) spent meanwhile."""
    queue = list(range(count))
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    start = time.perf_counter()

    async def worker() -> None:
        while queue:
            await action(queue.pop())

    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - start
    return wall, {k: cpu_seconds(p) - cpu0[k] for k, p in pids.items()}


def _merged(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in, mappings recursively (``extra`` wins)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _start_server(
    workdir: Path,
    kubeconfig: str,
    namespace: str,
    group: ProcessGroup,
    profile: Path | None,
    extra_config: dict | None = None,
) -> tuple[Child, int, int]:
    """``flyteadmin serve`` on free ports; returns once it has printed ``ready``.
    ``extra_config`` is merged into its config YAML (e.g. ``{"storage": {...}}``)."""
    grpc_port, http_port = free_port(), free_port()
    while http_port == grpc_port:
        http_port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "grpc_port": grpc_port, "http_port": http_port},
        "kubernetes": {"kubeconfig": kubeconfig, "namespace": namespace},
        "metrics": {"port": 0},  # any free port (its URL is in the ready line)
    }
    config = _merged(config, extra_config or {})
    config_path = workdir / "flyteadmin.yaml"
    config_path.write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "flyteadmin.cli"]
    if profile is not None:
        # By path: the repo root must not go on sys.path (its operator/ shadows the stdlib's).
        profile.parent.mkdir(parents=True, exist_ok=True)
        script = Path(__file__).with_name("serve_profiled.py")
        argv = [sys.executable, str(script), str(profile.resolve()), "--"]
    argv += ["--log-level", "WARNING", "serve", "--config", str(config_path)]
    argv += ["--kubeconfig", kubeconfig]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTEADMIN__")}
    # `-m` would put the working directory (the repo root, whose operator/ folder shadows the
    # standard library's `operator`) first on sys.path; PYTHONSAFEPATH keeps it off.
    env["PYTHONSAFEPATH"] = "1"
    child = group.start("flyteadmin-serve", argv, env)
    wait_until(
        lambda: any(
            line.startswith("ready")
            for line in child.log_path.read_text(errors="replace").splitlines()
        ),
        timeout=120,
        what="flyteadmin serve to print 'ready'",
        child=child,
    )
    return child, grpc_port, http_port


def _start_operator(workdir: Path, kubeconfig: str, group: ProcessGroup) -> Child:
    """``flyteadmin operator`` with the server's config file; returns once Kopf runs."""
    argv = [sys.executable, "-m", "flyteadmin.cli", "--log-level", "INFO", "operator"]
    argv += ["--config", str(workdir / "flyteadmin.yaml"), "--kubeconfig", kubeconfig]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTEADMIN__")}
    env["PYTHONSAFEPATH"] = "1"
    child = group.start("flyteadmin-operator", argv, env)
    wait_until(
        lambda: "kopf" in child.log_path.read_text(errors="replace").lower(),
        timeout=120,
        what="flyteadmin operator to start",
        child=child,
    )
    return child


@contextlib.contextmanager
def stack(
    kubeconfig: str | None = None,
    extra_namespaces: int = 0,
    profile: Path | None = None,
    *,
    blobstore: bool = False,
    server_config: dict | None = None,
    etcd_args: tuple[str, ...] = (),
    apiserver_args: tuple[str, ...] = (),
    operator: bool = False,
) -> Iterator[Stack]:
    """Control plane (unless ``kubeconfig``), CRDs, a fresh store namespace, the API server.

    ``extra_namespaces`` more fresh namespaces are created, named ``<store namespace>-<i>``
    (e.g. for raw writes the server does not watch). With ``profile`` the server runs under
    ``bench/serve_profiled.py``, which writes its profile there when the server stops. With
    ``blobstore`` a GCS emulator (fake-gcs-server on tmpfs, 127.0.0.1) is started first and the
    server's ``storage:`` settings point at it (workflow closures above 64 KiB go there).
    ``server_config`` is merged into the server's config YAML. ``etcd_args`` and
    ``apiserver_args`` are extra flags of the local control plane (e.g. a small quota); with
    ``operator`` a ``flyteadmin operator`` runs beside the server, with the same config.
    """
    workdir = Path(tempfile.mkdtemp(prefix="flyteadmin-bench-"))
    group = ProcessGroup(workdir / "logs")
    plane = api = gcs = None
    extra_config = dict(server_config or {})
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    namespaces = [namespace] + [f"{namespace}-{i}" for i in range(1, extra_namespaces + 1)]
    try:
        plane_seconds = None
        if not kubeconfig:
            from flyteadmin.devstack.controlplane import start_control_plane

            say("starting the local control plane (etcd, kube-apiserver, controller-manager)")
            started = time.monotonic()
            plane = start_control_plane(log=say, etcd_args=etcd_args, apiserver_args=apiserver_args)
            plane_seconds = time.monotonic() - started
            kubeconfig = str(plane.kubeconfig)
        api = kube.api_client(kubeconfig)
        kube.apply_crds(api, flyteworkflow=operator)  # the operator launches FlyteWorkflows
        for ns in namespaces:
            kube.ensure_namespace(api, ns)
        if blobstore:
            from flyteadmin.devstack.gcs import start_gcs_emulator

            say("starting the GCS emulator (blob store)")
            gcs = start_gcs_emulator(workdir / "gcs")
            settings = gcs.storage_settings()
            storage = {
                "endpoint": settings.endpoint,
                "public_endpoint": settings.public_endpoint,
                "bucket": settings.bucket,
                "credentials_file": settings.credentials_file,
            }
            extra_config = _merged({"storage": storage}, extra_config)
        say(f"store namespace {namespace}; starting `flyteadmin serve`")
        started = time.monotonic()
        server, grpc_port, http_port = _start_server(
            workdir, kubeconfig, namespace, group, profile, extra_config
        )
        processes = {"server": server.popen.pid}
        if operator:
            processes["operator"] = _start_operator(workdir, kubeconfig, group).popen.pid
        if plane is not None:
            processes |= {c.name: c.popen.pid for c in plane.processes.children}
        if gcs is not None:
            processes |= {c.name: c.popen.pid for c in gcs.processes.children}
        yield Stack(
            kubeconfig=kubeconfig,
            namespace=namespace,
            grpc_port=grpc_port,
            http_port=http_port,
            workdir=workdir,
            server=server,
            plane_start_seconds=plane_seconds,
            server_start_seconds=time.monotonic() - started,
            processes=processes,
            plane_dir=plane.workdir if plane is not None else None,
        )
    finally:
        group.stop()
        if gcs is not None:
            gcs.stop()
        if plane is not None:
            plane.stop()
        elif api is not None:  # someone else's cluster: leave nothing behind
            from kubernetes import client

            for ns in namespaces:
                with contextlib.suppress(Exception):
                    client.CoreV1Api(api).delete_namespace(ns)
        if api is not None:
            api.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------- measuring


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float]
    """Seconds per successful call."""
    errors: int = 0
    first_error: str = ""
    cpu: dict[str, float] = field(default_factory=dict)
    """Process name -> cores used during the window (CPU seconds / wall seconds)."""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @classmethod
    def merge(cls, parts: list[Result]) -> Result:
        """One result from several windows of the same benchmark (CPU weighted by duration)."""
        seconds = sum(p.seconds for p in parts)
        names = {k for p in parts for k in p.cpu}
        cpu = {k: sum(p.cpu.get(k, 0.0) * p.seconds for p in parts) / seconds for k in names}
        return cls(
            parts[0].name,
            seconds,
            [latency for p in parts for latency in p.latencies],
            sum(p.errors for p in parts),
            next((p.first_error for p in parts if p.first_error), ""),
            cpu,
        )

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class _Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error = ""

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {str(exc)[:200]}"


def _cores(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    return {k: (after[k] - before.get(k, after[k])) / wall for k in after}


async def _async_window(
    op: Callable[[int], Awaitable[object]], clients: int, seconds: float
) -> tuple[_Recorder, float]:
    rec = _Recorder()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def client(i: int) -> None:
        while loop.time() < deadline:
            t0 = time.perf_counter()
            try:
                await op(i)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                rec.failed(exc)
            else:
                rec.latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return rec, time.perf_counter() - started


async def measure_async(
    name: str,
    op: Callable[[int], Awaitable[object]],
    *,
    clients: int,
    seconds: float,
    warmup: float,
    stack: Stack,
) -> Result:
    """``clients`` asyncio tasks call ``op(client_index)`` back to back for ``seconds``."""
    say(f"{name}: {warmup:.3g}s warm-up, {seconds:.3g}s measured, {clients} clients")
    if warmup > 0:
        await _async_window(op, clients, warmup)
    before = stack.cpu_seconds()
    rec, wall = await _async_window(op, clients, seconds)
    cpu = _cores(before, stack.cpu_seconds(), wall)
    return Result(name, wall, rec.latencies, rec.errors, rec.first_error, cpu)


async def measure_phases(stack: Stack, args: argparse.Namespace, phases: dict) -> dict[str, Result]:
    """phase -> (row name, op, clients): the phases selected by ``--only``, one after another,
    each for ``--seconds`` after ``--warmup``."""
    return {
        key: await measure_async(
            name, op, clients=clients, seconds=args.seconds, warmup=args.warmup, stack=stack
        )
        for key, (name, op, clients) in phases.items()
        if key in args.only
    }


async def measure_count_async(
    name: str,
    op: Callable[[int, int], Awaitable[object]],
    *,
    count: int,
    clients: int,
    stack: Stack,
) -> Result:
    """``clients`` asyncio tasks make ``count`` calls in all, back to back: each takes the next
    number ``n`` (0 to count - 1) and calls ``op(client_index, n)``. No warm-up; the window is
    the wall time of the whole batch (e.g. seeding through the API)."""
    say(f"{name}: {count:,} calls, {clients} clients")
    rec = _Recorder()
    numbers = iter(range(count))

    async def client(i: int) -> None:
        for n in numbers:  # one shared iterator: every number is taken once
            t0 = time.perf_counter()
            try:
                await op(i, n)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                rec.failed(exc)
            else:
                rec.latencies.append(time.perf_counter() - t0)

    before = stack.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - started
    cpu = _cores(before, stack.cpu_seconds(), wall)
    return Result(name, wall, rec.latencies, rec.errors, rec.first_error, cpu)


def _thread_window(op: Callable[[int], object], threads: int, seconds: float):
    rec = _Recorder()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        mine: list[float] = []
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                op(i)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    rec.failed(exc)
            else:
                mine.append(time.perf_counter() - t0)
        with lock:
            rec.latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return rec, time.perf_counter() - started


def measure_threads(
    name: str,
    op: Callable[[int], object],
    *,
    threads: int,
    seconds: float,
    warmup: float,
    stack: Stack,
) -> Result:
    """``threads`` threads call ``op(thread_index)`` back to back for ``seconds``."""
    say(f"{name}: {warmup:.3g}s warm-up, {seconds:.3g}s measured, {threads} threads")
    if warmup > 0:
        _thread_window(op, threads, warmup)
    before = stack.cpu_seconds()
    rec, wall = _thread_window(op, threads, seconds)
    cpu = _cores(before, stack.cpu_seconds(), wall)
    return Result(name, wall, rec.latencies, rec.errors, rec.first_error, cpu)


# --------------------------------------------------------------------------------- printing


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A plain-text table; the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        out = [str(cells[0]).ljust(widths[0])]
        out += [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out)

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def print_figures(rows: list[tuple[str, str, str, bool | None]]) -> None:
    """(figure, measured, target, met) rows; ``met`` None for a figure without a target."""
    status = {True: "met", False: "MISSED", None: ""}
    print_table(
        ["figure", "measured", "target", "status"],
        [[f, m, t, status[ok]] for f, m, t, ok in rows],
    )


def note_memory(stack: Stack, info: dict, when: str) -> None:
    """The server's resident set now and its peak so far, as ``info["rss_after_<when>"]`` and
    ``info["hwm_after_<when>"]`` (MiB) for the report."""
    info[f"rss_after_{when}"] = stack.server_rss_mib()
    info[f"hwm_after_{when}"] = stack.server_peak_rss_mib()


Figure = tuple[str, str, str, bool | None]


def print_results(
    args: argparse.Namespace,
    phases: tuple[str, ...],
    command: str,
    results: list[Result],
    cpu_note: str,
) -> None:
    """The head of a report: the machine, ``command`` (plus --only and --kubeconfig when given),
    the results table and its CPU note."""
    print()
    print(f"machine: {machine_info()}")
    if set(args.only) != set(phases):
        command += f" --only {','.join(args.only)}"
    print(f"command: {command}" + (" --kubeconfig K" if args.kubeconfig else ""))
    print()
    print_table(*result_rows(results))
    print(f"({cpu_note})")
    print()


def start_figures(stack: Stack) -> list[Figure]:
    """The first figures of every report: control plane and API server start times."""
    plane = f"{stack.plane_start_seconds:.1f} s" if stack.plane_start_seconds else "n/a"
    return [
        ("control plane warm start", plane, "", None),
        ("API server start (to 'ready')", f"{stack.server_start_seconds:.1f} s", "", None),
    ]


def print_figures_and_errors(figures: list[Figure], results: list[Result]) -> None:
    """The tail of a report: the figures table, then the first error of each failing row."""
    print_figures(figures)
    for r in results:
        if r.errors:
            print(f"{r.name}: {r.errors} errors, first: {r.first_error}")


# Process name -> column header of the cores it used; "all" is their sum.
CPU_COLUMNS = {
    "server": "srv",
    "kube-apiserver": "apisrv",
    "etcd": "etcd",
    "kube-controller-manager": "kcm",
    "loadgen": "gen",
}
# Shown only when some result has them (a stack with a blob store).
OPTIONAL_CPU_COLUMNS = {"gcs-emulator": "gcs"}
CPU_NOTE = (
    "cpu columns: cores used during the window by the API server (srv), kube-apiserver, etcd, "
    "kube-controller-manager (kcm), this load generator (gen), all of these, and by other "
    "processes on the machine (other: noise, e.g. someone else's tests)"
)
CPU_NOTE_GCS = CPU_NOTE.replace("(kcm), ", "(kcm), the GCS emulator (gcs), ")


def result_rows(results: list[Result]) -> tuple[list[str], list[list[str]]]:
    """The standard columns: rate, latency percentiles, errors, and cores used per process."""
    present = {k: h for k, h in OPTIONAL_CPU_COLUMNS.items() if any(k in r.cpu for r in results)}
    columns = {k: h for k, h in CPU_COLUMNS.items() if k != "loadgen"} | present
    columns["loadgen"] = CPU_COLUMNS["loadgen"]  # the load generator stays last
    headers = ["benchmark", "req/s", "p50 ms", "p90 ms", "p99 ms", "calls", "errors"]
    headers += [f"cpu {h}" for h in columns.values()] + ["cpu all", "cpu other"]
    rows = []
    for r in results:
        row = [r.name, f"{r.rate:,.0f}", f"{r.ms(50):.2f}", f"{r.ms(90):.2f}", f"{r.ms(99):.2f}"]
        row += [f"{len(r.latencies):,}", str(r.errors)]
        row += [f"{r.cpu[c]:.2f}" if c in r.cpu else "-" for c in columns]
        ours = sum(v for k, v in r.cpu.items() if k != MACHINE)
        row += [f"{ours:.2f}", f"{max(r.cpu.get(MACHINE, 0.0) - ours, 0.0):.2f}"]
        rows.append(row)
    return headers, rows


def machine_info() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import grpc

    return (
        f"nproc {len(os.sched_getaffinity(0))} ({model or platform.machine()}), "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, {platform.system()} "
        f"{platform.release()}, load average now {os.getloadavg()[0]:.1f}"
    )
