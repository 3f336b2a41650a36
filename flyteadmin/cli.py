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
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from flyteadmin.core import config as config_module
from flyteadmin.core.config import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if getattr(args, "kubeconfig", None):
        settings = dataclasses.replace(
            settings,
            kubernetes=dataclasses.replace(settings.kubernetes, kubeconfig=args.kubeconfig),
        )
    return settings


def install_signal_stop() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` with ``stop`` set on SIGINT or SIGTERM."""

    async def runner() -> None:
        await main(install_signal_stop())

    asyncio.run(runner())


def cmd_serve(args: argparse.Namespace) -> None:
    from flyteadmin.api_server.app import ApiServer
    from flyteadmin.api_server.workers import Workers, worker_count

    settings = _settings(args)
    if worker_count(settings) > 1:
        _serve_workers(Workers(settings, say=print))
        return

    async def main(stop: asyncio.Event) -> None:
        server = ApiServer(settings)
        await server.start()
        print(
            f"ready: gRPC {settings.server.host}:{server.grpc_port}, "
            f"HTTP {settings.server.host}:{server.http_port}",
            flush=True,
        )
        await stop.wait()
        await server.stop()

    run_until_signalled(main)


def _serve_workers(workers) -> None:
    """Several API-server processes (``server.workers``), supervised until SIGINT/SIGTERM."""

    async def main(stop: asyncio.Event) -> None:
        await asyncio.to_thread(workers.start)
        print(
            f"ready: gRPC {workers.settings.server.host}:{workers.grpc_port}, "
            f"HTTP {workers.settings.server.host}:{workers.http_port} ({workers.count} workers)",
            flush=True,
        )
        try:
            while not stop.is_set():
                await asyncio.to_thread(workers.check)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
        finally:
            await asyncio.to_thread(workers.stop)

    run_until_signalled(main)


def cmd_operator(args: argparse.Namespace) -> None:
    from flyteadmin.operator.runner import run_operator

    settings = _settings(args)
    run_until_signalled(lambda stop: run_operator(settings, stop_flag=stop))


def cmd_dev(args: argparse.Namespace) -> None:
    # gRPC's C core logs at INFO when a child process is forked while its threads run (every
    # start of a child); nothing a user acts on. Set before grpc is imported.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from flyteadmin.devstack.stack import DevOptions, run_dev

    run_dev(
        DevOptions(
            settings=load_settings(args.config),
            kubeconfig=args.kubeconfig,
            data_dir=Path(args.data_dir) if args.data_dir else None,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            seed_projects=tuple(args.project or ("flytesnacks",)),
            auth=args.auth,
            propeller=not args.no_propeller,
            pod_runner=not args.no_pod_runner,
            clusters=args.clusters,
            workers=args.workers,
        )
    )


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
    parser = argparse.ArgumentParser(
        prog="flyteadmin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--log-level",
        help="default: INFO; WARNING for `dev`, whose own lines say what a user needs",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole control plane locally")
    dev.add_argument("--config", help="YAML configuration file (see `flyteadmin config`)")
    dev.add_argument("--kubeconfig", help="use this cluster instead of the local control plane")
    dev.add_argument("--data-dir", help="keep the local cluster's state here across restarts")
    dev.add_argument("--grpc-port", type=int, default=8089)
    dev.add_argument("--http-port", type=int, default=8088)
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
        help="API-server processes sharing the ports (default: one per core)",
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
    level = args.log_level or ("WARNING" if args.command == "dev" else "INFO")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args.func(args)


if __name__ == "__main__":
    main()
