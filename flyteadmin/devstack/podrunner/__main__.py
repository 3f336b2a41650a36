"""``python -m flyteadmin.devstack.podrunner --kubeconfig K --workdir W [--env NAME=VALUE ...]``

The pod runner as a process of its own, as ``flyteadmin dev`` runs it: supervised like the
other children (restarted when it dies; the Pods it was running are then marked Failed by the
new runner, docs/podrunner.md), and off the API server's interpreter lock. It creates
``<workdir>/ready`` once its Node is registered and the first lists are handled, stops on
SIGTERM or SIGINT, and exits 1 if one of its threads dies.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from flyteadmin.devstack.podrunner.runner import PodRunner, RunnerOptions

READY_FILE = "ready"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flyteadmin.devstack.podrunner")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ready = args.workdir / READY_FILE
    ready.unlink(missing_ok=True)
    extra_env = dict(item.split("=", 1) for item in args.env)
    runner = PodRunner(args.kubeconfig, args.workdir, RunnerOptions(extra_env=extra_env))
    runner.start()
    try:
        ready.touch()
        while not stop.wait(1.0):
            if not runner.running:
                logging.error("a thread of the pod runner died (%s); exiting", runner.error)
                return 1
        return 0
    finally:
        ready.unlink(missing_ok=True)
        runner.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
