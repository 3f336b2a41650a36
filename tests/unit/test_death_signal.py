"""Children started through ``dying_with_parent`` die with the process that started them, even
when it is killed with SIGKILL (no clean-up runs), and keep their own process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from flyteadmin.devstack.processes import dying_with_parent
from tests.waiting import eventually

_PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from flyteadmin.devstack.processes import dying_with_parent
    child = subprocess.Popen(dying_with_parent(["sleep", "600"]), start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_the_child_dies_with_a_parent_killed_by_sigkill():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        eventually(lambda: open(f"/proc/{child}/cmdline").read().startswith("sleep"), "exec")
        assert os.getpgid(child) == child  # its own process group
        parent.kill()
        parent.wait()
        eventually(lambda: not _alive(child), "the child to die with its parent", 30)
    finally:
        parent.kill()
        parent.wait()


def test_the_command_runs_with_its_arguments_and_exit_code():
    done = subprocess.run(
        dying_with_parent(["sh", "-c", 'echo "$0 $1"; exit 3', "a b", "c"]),
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    assert (done.returncode, done.stdout) == (3, "a b c\n")


def test_the_signal_is_the_one_asked_for():
    # /proc/self/status does not show the death signal; a child asks the kernel (PR_GET_PDEATHSIG).
    probe = (
        "import ctypes; v = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(v)); "
        "print(v.value)"
    )
    done = subprocess.run(
        dying_with_parent([sys.executable, "-c", probe], signal.SIGTERM),
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == str(int(signal.SIGTERM))
