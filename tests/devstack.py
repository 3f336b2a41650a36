"""Driving `flyteadmin dev` as a user does, for the end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from flyteadmin.devstack.processes import free_ports

# A value printed by `flyteadmin dev`. print() writes the line and its newline separately, so a
# log record from another thread (it starts with a timestamp) can be glued onto the value.
VALUE = r"(\S+?)(?=\d{4}-\d\d-\d\d \d|\s|$)"


def start_dev(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, dict[str, str], Path]:
    """Start `flyteadmin dev` as a user would; return once it prints its ready line."""
    grpc_port, http_port, metrics_port = free_ports(3)
    log = tmp_path / f"dev-{grpc_port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flyteadmin",
                "dev",
                "--grpc-port",
                str(grpc_port),
                "--http-port",
                str(http_port),
                "--metrics-port",
                str(metrics_port),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
            start_new_session=True,
        )
    found: dict[str, str] = {"grpc": str(grpc_port), "http": str(http_port)}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log.read_text()
        if m := re.search(r"flytekit config: " + VALUE, text):
            found["flytekit"] = m.group(1)
        if m := re.search(r"metrics: " + VALUE, text):
            found["metrics"] = m.group(1)
        if m := re.search(r"kubeconfig: " + VALUE, text):
            found["kubeconfig"] = m.group(1)
        if m := re.search(r"blob store: (\S+) bucket " + VALUE, text):
            found["gcs"], found["bucket"] = m.group(1), m.group(2)
        if re.search(r"ready: gRPC", text):
            return proc, found, log
        assert proc.poll() is None, f"dev exited before ready:\n{text}"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"dev not ready in time:\n{log.read_text()}")


def stop(proc: subprocess.Popen, log: Path) -> str:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    return log.read_text()
