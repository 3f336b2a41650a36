"""A container as a local process group: start, signal, read its log tail and termination message.

Each container is the leader of its own session (so a signal reaches everything it started) and
gets PR_SET_PDEATHSIG: if the runner's process dies without cleaning up, the kernel kills the
container too. The death signal follows the *thread* that forked the child, so the runner forks
each container from a thread that waits for it.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from flyteadmin.devstack.processes import dying_with_parent

TAIL_LINES = 80  # the kubelet's FallbackToLogsOnError keeps the last 80 lines...
TAIL_BYTES = 2048  # ...or 2 KiB, whichever is smaller
MESSAGE_BYTES = 4096  # the kubelet's limit on a termination message file


def launch(argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path) -> subprocess.Popen:
    """Start ``argv`` (looked up on ``env['PATH']``) with stdout and stderr appended to the log.

    Raises OSError when it cannot start (no such executable, not executable): checked here,
    because the exec itself happens in the death-signal wrapper (``dying_with_parent``).
    """
    executable = argv[0] if os.sep in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
    if executable is None or not os.access(cwd / executable, os.X_OK):
        raise FileNotFoundError(errno.ENOENT, "executable file not found", argv[0])
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            dying_with_parent(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )


def signal_group(pid: int, sig: int) -> bool:
    """Signal the process group led by ``pid``; False when it is gone."""
    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), which
    tells a recorded pid from a later process that reuses the number."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[19])  # field 22 counted from after the command name (field 2)


def log_tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def termination_message(path: str, not_before: float) -> str | None:
    """The container's termination message file, when it wrote one after ``not_before``.

    The path is read as written in the Pod (the runner has no container filesystem); the
    kubelet's default ``/dev/termination-log`` is not writable on a host and is never read.
    """
    if not path or path == "/dev/termination-log":
        return None
    try:
        target = Path(path)
        if not target.is_file() or target.stat().st_mtime < not_before:
            return None
        with open(target, "rb") as f:
            return f.read(MESSAGE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
