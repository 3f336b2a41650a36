"""GetVersion's figures: the version, the git commit and the build time (issue 12 §4)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

from flyteadmin import buildinfo

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_reports_its_commit_and_the_commit_time(monkeypatch, tmp_path):
    monkeypatch.setattr(buildinfo, "BUILD_INFO_FILE", tmp_path / "absent.json")
    info = buildinfo.build_info()
    if not (ROOT / ".git").exists():  # an exported tree: nothing to tell
        assert (info.commit, info.build_time) == ("unknown", "unknown")
        return
    head = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%H %ct"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert info.version == buildinfo.package_version() != "0.0.0+unknown"
    assert info.commit == head[0]
    when = dt.datetime.fromtimestamp(int(head[1]), dt.UTC)
    assert info.build_time == when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_build_records_commit_and_time(monkeypatch, tmp_path):
    target = tmp_path / "build_info.json"
    monkeypatch.setattr(buildinfo, "BUILD_INFO_FILE", target)
    moment = dt.datetime(2026, 12, 5, 16, 0, 1, tzinfo=dt.UTC)
    buildinfo.write("0123abc", now=moment)
    assert json.loads(target.read_text()) == {
        "commit": "0123abc",
        "build_time": "2026-12-05T16:00:01Z",
    }
    info = buildinfo.build_info()
    assert (info.commit, info.build_time) == ("0123abc", "2026-12-05T16:00:01Z")
    assert info.version == buildinfo.package_version()


def test_get_version_answers_with_the_build_info():
    import asyncio

    from flyteidl.admin import version_pb2

    from flyteadmin.api_server.services import version

    (get_version,) = version.handlers(None).values()  # type: ignore[arg-type]
    answer = asyncio.run(get_version(version_pb2.GetVersionRequest(), None))
    info = buildinfo.build_info()
    assert answer.control_plane_version == version_pb2.Version(
        Build=info.commit, Version=info.version, BuildTime=info.build_time
    )
    assert info.commit != "python" and info.build_time
