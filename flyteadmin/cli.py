"""The ``flyteadmin`` command.

flyteadmin dev        everything on the embedded local control plane (or --kubeconfig)
flyteadmin serve      the API server (gRPC + HTTP), for in-cluster use
flyteadmin operator   the Kopf operator, for in-cluster use
flyteadmin config     print the default configuration
flyteadmin crds       print the CRD manifests
flyteadmin auth       hash a client secret, or generate a token signing key
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from flyteadmin.core import config as config_module
from flyteadmin.core import event_loop, logs, memory
from flyteadmin.core.config import LoggingSettings, Settings, load_settings

# prometheus-client's multiprocess folder (read by it, and by core/metrics.py).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

if TYPE_CHECKING:  # imported when used: the API server is not loaded by every command
    from flyteadmin.api_server.workers import Workers


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if getattr(args, "kubeconfig", None) and args.command != "dev":
        settings = dataclasses.replace(
            settings,
            kubernetes=dataclasses.replace(settings.kubernetes, kubeconfig=args.kubeconfig),
        )
    return settings


def _observe(settings: Settings, args: argparse.Namespace, service: str) -> None:
    """Logging and tracing of this process (as ``service``) from the configuration, and its
    heap managed as a server's (core/heap.py)."""
    from flyteadmin.core import heap, tracing

    logs.configure(settings.logging, args.log_level)
    tracing.configure(settings.tracing, service)
    heap.manage(settings.freeze_caches)


@contextlib.contextmanager
def shared_metrics() -> Iterator[None]:
    """Metrics of several processes on one page (docs/operations.md): prometheus-client's
    multiprocess mode, in a fresh folder named by ``PROMETHEUS_MULTIPROC_DIR`` (kept if the
    environment names one). It applies to the processes that import prometheus-client after
    this: the workers, and this one when it enters before importing anything that does."""
    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    folder = tempfile.mkdtemp(prefix="flyteadmin-metrics-", dir=shm)
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(folder, ignore_errors=True)


def install_signal_stop() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_until_signalled(
    main: Callable[[asyncio.Event], Awaitable[None]], settings: Settings
) -> None:
    """Run ``main(stop)`` on the configured event loop, ``stop`` set on SIGINT or SIGTERM."""

    async def runner() -> None:
        await main(install_signal_stop())

    event_loop.run(runner(), settings.event_loop)


def cmd_serve(args: argparse.Namespace) -> None:
    from flyteadmin.api_server.workers import worker_count

    settings = _settings(args)
    if worker_count(settings) > 1:
        with shared_metrics():
            from flyteadmin.api_server.workers import Workers

            _observe(settings, args, "flyteadmin-api-server")
            _serve_workers(settings, Workers(settings, say=print))
        return
    from flyteadmin.api_server.app import ApiServer
    from flyteadmin.metrics_server import serve_metrics

    _observe(settings, args, "flyteadmin-api-server")

    async def main(stop: asyncio.Event) -> None:
        server = ApiServer(settings)
        metrics = await serve_metrics(settings, server.backend)
        await server.start()
        print(
            f"ready: gRPC {settings.server.host}:{server.grpc_port}, "
            f"HTTP {settings.server.host}:{server.http_port}, metrics {metrics.url}",
            flush=True,
        )
        await stop.wait()
        await server.stop()
        await metrics.stop()

    run_until_signalled(main, settings)


def _serve_workers(settings: Settings, workers: Workers) -> None:
    """Several API-server processes (``server.workers``), supervised until SIGINT/SIGTERM;
    this process serves their metrics (aggregated) and readiness."""
    from flyteadmin.metrics_server import serve_metrics

    async def main(stop: asyncio.Event) -> None:
        metrics = await serve_metrics(settings, also=workers.problems)
        try:
            await asyncio.to_thread(workers.start)
            print(
                f"ready: gRPC {workers.settings.server.host}:{workers.grpc_port}, "
                f"HTTP {workers.settings.server.host}:{workers.http_port} "
                f"({workers.count} workers), metrics {metrics.url}",
                flush=True,
            )
            while not stop.is_set():
                await asyncio.to_thread(workers.check)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
        finally:
            await asyncio.to_thread(workers.stop)
            await metrics.stop()

    run_until_signalled(main, settings)


def cmd_operator(args: argparse.Namespace) -> None:
    from flyteadmin.metrics_server import serve_metrics
    from flyteadmin.operator.runner import operator_backend, run_operator

    settings = _settings(args)
    _observe(settings, args, "flyteadmin-operator")

    async def main(stop: asyncio.Event) -> None:
        backend = operator_backend(settings)
        metrics = await serve_metrics(settings, backend)  # alive at once, ready once synced
        try:
            await run_operator(settings, stop_flag=stop, backend=backend)
        finally:
            await metrics.stop()

    run_until_signalled(main, settings)


def cmd_dev(args: argparse.Namespace) -> None:
    # gRPC's C core logs at INFO when a child process is forked while its threads run (every
    # start of a child); nothing a user acts on. Set before grpc is imported.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    settings = _settings(args)
    if args.log_level is None and settings.logging.level == LoggingSettings.level:
        # `flyteadmin dev:` lines say what a user needs; the rest (an access line per RPC, Kopf's
        # handler lines) only when it warns, unless --log-level or logging.level ask for more.
        args.log_level = "WARNING"
    # The operator runs in this process, the API server in worker processes: one page for all.
    with shared_metrics():
        from flyteadmin.devstack.stack import DevOptions, run_dev

        _observe(settings, args, "flyteadmin-dev")
        options = DevOptions(
            settings=settings,
            kubeconfig=args.kubeconfig,
            data_dir=Path(args.data_dir) if args.data_dir else None,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            metrics_port=_dev_metrics_port(args.metrics_port, settings.metrics.port),
            seed_projects=tuple(args.project or ("flytesnacks",)),
            auth=args.auth,
            propeller=not args.no_propeller,
            pod_runner=not args.no_pod_runner,
            clusters=args.clusters,
            workers=args.workers,
        )
        run_dev(options)


def _dev_metrics_port(asked: int | None, configured: int) -> int:
    """``--metrics-port``, else the configured port, else (taken, e.g. by another developer's
    dev stack) any free one: the URL is printed either way."""
    from flyteadmin.devstack.processes import port_is_free

    if asked is not None:
        return asked
    return configured if configured == 0 or port_is_free(configured) else 0


def cmd_auth(args: argparse.Namespace) -> None:
    """hash-secret: a client secret (stdin) -> the hash for auth.clients; keygen: an RSA PEM."""
    if args.action == "keygen":
        from flyteadmin.core.auth.keys import generate_pem

        sys.stdout.write(generate_pem().decode())
        return
    from flyteadmin.core.auth.client_secrets import hash_secret

    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        sys.exit("flyteadmin auth hash-secret: give the secret on stdin")
    print(hash_secret(secret))


def main(argv: list[str] | None = None) -> None:
    memory.limit_malloc_arenas()  # first: before any thread has an arena
    parser = argparse.ArgumentParser(
        prog="flyteadmin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--log-level",
        help="overrides logging.level of the configuration (`dev`: WARNING unless configured)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole control plane locally")
    dev.add_argument("--config", help="YAML configuration file (see `flyteadmin config`)")
    dev.add_argument("--kubeconfig", help="use this cluster instead of the local control plane")
    dev.add_argument("--data-dir", help="keep the local cluster's state here across restarts")
    dev.add_argument("--grpc-port", type=int, default=8089)
    dev.add_argument("--http-port", type=int, default=8088)
    dev.add_argument(
        "--metrics-port",
        type=int,
        help="metrics and probes port (default: metrics.port, 10254, or any free one if taken)",
    )
    dev.add_argument(
        "--project",
        action="append",
        help="project to create at start if absent (default: flytesnacks)",
    )
    dev.add_argument(
        "--auth",
        action="store_true",
        help="require tokens (built-in authorization server, a generated client and secret)",
    )
    dev.add_argument(
        "--no-propeller",
        action="store_true",
        help="do not run flytepropeller (executions are accepted but not run)",
    )
    dev.add_argument(
        "--workers",
        type=int,
        default=0,
        help="API-server processes sharing the ports (default: server.workers, 1)",
    )
    dev.add_argument(
        "--no-pod-runner",
        action="store_true",
        help="do not run Pods as local processes on the embedded control plane",
    )
    dev.add_argument(
        "--clusters",
        type=int,
        default=0,
        metavar="N",
        help="run executions in N local data-plane clusters, each with its own propeller and "
        "pod runner (docs/multicluster.md)",
    )
    dev.set_defaults(func=cmd_dev)

    for name, func, text in (
        ("serve", cmd_serve, "run the API server"),
        ("operator", cmd_operator, "run the operator"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--config", help="YAML configuration file")
        sub.add_argument("--kubeconfig", help="kubeconfig path (default: in-cluster)")
        sub.set_defaults(func=func)

    cfg = commands.add_parser("config", help="print the default configuration")
    cfg.set_defaults(func=lambda a: sys.stdout.write(config_module.dump_defaults()))
    crd = commands.add_parser("crds", help="print the CRD manifests")

    def print_crds(_: argparse.Namespace) -> None:
        from flyteadmin.core import crds

        sys.stdout.write("---\n".join(crds.rendered_files().values()))

    crd.set_defaults(func=print_crds)

    auth = commands.add_parser("auth", help="make secrets for the built-in authorization server")
    auth.add_argument("action", choices=("hash-secret", "keygen"))
    auth.set_defaults(func=cmd_auth)

    args = parser.parse_args(argv)
    # Until a command reads its configuration (which may say otherwise): text at INFO.
    logs.configure(LoggingSettings(), args.log_level)
    args.func(args)


if __name__ == "__main__":
    main()
