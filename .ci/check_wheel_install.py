"""CI step: the package installed the ordinary way runs the README's start command.

Builds the wheel, installs it with the `dev` extra into a fresh virtualenv (nothing from the
checkout on the path: it runs from a temporary folder), starts that venv's `flyteadmin dev` on
free ports with the Go programs already in the cache (FLYTEADMIN_CACHE, as `.ci/run` built
them), waits for its `ready` line, runs a one-task workflow with that venv's `pyflyte run
--remote` to SUCCEEDED (flytepropeller and the pod runner included), stops it with SIGINT and
checks it exits 0. Prints the time of each step. Exits non-zero on any failure.

    .venv/bin/python .ci/check_wheel_install.py
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 300
LOCAL_FILES = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".e2e")
WORKFLOW = textwrap.dedent(
    """
    from flytekit import task, workflow


    @task
    def double(x: int) -> int:
        return 2 * x


    @workflow
    def wf(x: int = 1) -> int:
        return double(x=x)
    """
)
WAIT = textwrap.dedent(
    """
    import sys
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    remote = FlyteRemote(Config.auto(sys.argv[1]), "flytesnacks", "development")
    execution = remote.wait(remote.fetch_execution(name=sys.argv[2]), timeout=300)
    print(execution.closure.phase, execution.outputs["o0"] if execution.outputs else None)
    """
)


def step(name: str, started: float) -> None:
    print(f"wheel check: {name} in {time.monotonic() - started:.0f}s", flush=True)


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        sys.exit(f"wheel check: {' '.join(map(str, argv))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="flyteadmin-wheel-"))
    # Nothing from the checkout: no PYTHONPATH, and every command runs outside the repository.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONSAFEPATH"] = "1"
    dev = None
    try:
        started = time.monotonic()
        # From a copy: setuptools writes build/ and *.egg-info next to the sources.
        source = work / "source"
        shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*LOCAL_FILES))
        run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work, source, cwd=work)
        (wheel,) = work.glob("flyteadmin_k8s-*.whl")
        step(f"built {wheel.name}", started)

        started = time.monotonic()
        run(sys.executable, "-m", "venv", work / "venv", cwd=work)
        python = work / "venv" / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", f"{wheel}[dev]", cwd=work, env=env)
        step("installed it with the dev extra into a fresh venv", started)

        started = time.monotonic()
        grpc_port, http_port = free_ports(2)
        log = work / "dev.log"
        with open(log, "w") as out:
            dev = subprocess.Popen(
                [work / "venv" / "bin" / "flyteadmin", "dev", "--grpc-port", str(grpc_port),
                 "--http-port", str(http_port)],
                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        while "flyteadmin dev: ready:" not in log.read_text():
            if dev.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"wheel check: flyteadmin dev did not get ready:\n{log.read_text()}")
            time.sleep(0.5)
        step("flyteadmin dev ready (cached Go programs)", started)
        config = re.search(r"flytekit config: (\S+)", log.read_text()).group(1)

        started = time.monotonic()
        (work / "wf.py").write_text(WORKFLOW)
        out = run(
            work / "venv" / "bin" / "pyflyte", "--config", config, "run", "--remote",
            "--project", "flytesnacks", "--domain", "development", "wf.py", "wf", "--x", "21",
            cwd=work, env=env,
        )  # fmt: skip
        name = re.search(r"/executions/([a-z0-9-]+)", out).group(1)
        (work / "wait.py").write_text(WAIT)
        result = run(python, work / "wait.py", config, name, cwd=work, env=env).split()
        if result != ["4", "42"]:  # WorkflowExecutionPhase.SUCCEEDED, and 2 * 21
            sys.exit(f"wheel check: execution {name} ended {result}:\n{log.read_text()}")
        step(f"pyflyte run --remote: execution {name} SUCCEEDED with 42", started)

        dev.send_signal(signal.SIGINT)
        code = dev.wait(60)
        if code != 0 or "flyteadmin dev: stopped" not in log.read_text():
            sys.exit(f"wheel check: flyteadmin dev exited {code}:\n{log.read_text()}")
        dev = None
        print("wheel check: passed", flush=True)
    finally:
        if dev is not None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
