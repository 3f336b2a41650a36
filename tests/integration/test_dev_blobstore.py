"""The dev blob store (fake-gcs-server on its filesystem backend): what it keeps across a kill,
and what ``recover`` sets aside before a start. No cluster needed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from flyteadmin.devstack.gcs import start_gcs_emulator


def client(endpoint: str) -> storage.Client:
    return storage.Client(
        project="p", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )


@pytest.fixture
def kept(tmp_path: Path):
    """A blob store with a kept data folder (as under `flyteadmin dev --data-dir`)."""
    blobs = start_gcs_emulator(tmp_path / "work", data_dir=tmp_path / "store")
    yield blobs
    blobs.stop()


def test_a_killed_server_restarts_with_every_acknowledged_object(kept, tmp_path):
    bucket = client(kept.endpoint).bucket(kept.bucket)
    written = {f"exec/{i}/inputs.pb": os.urandom(100 + i) for i in range(50)}
    for name, data in written.items():
        bucket.blob(name).upload_from_string(data, content_type="application/x-protobuf")
    kept.service.child.signal(signal.SIGKILL)
    kept.service.child.popen.wait()
    kept.service.start()  # what the supervisor does: same port, same folder
    bucket = client(kept.endpoint).bucket(kept.bucket)
    for name, data in written.items():
        assert bucket.blob(name).download_as_bytes() == data
    assert bucket.get_blob("exec/7/inputs.pb").content_type == "application/x-protobuf"
    assert {b.name for b in bucket.list_blobs(prefix="exec/")} == set(written)


def test_what_an_interrupted_write_left_is_recovered_before_the_next_start(tmp_path):
    said: list[str] = []
    kept = start_gcs_emulator(tmp_path / "work", data_dir=tmp_path / "store", log=said.append)
    try:
        check_recovery(kept, said)
    finally:
        kept.stop()


def check_recovery(kept, said: list[str]) -> None:
    bucket = client(kept.endpoint).bucket(kept.bucket)
    bucket.blob("exec/a/inputs.pb").upload_from_string(b"acknowledged")
    objects = kept.root / "objects" / kept.bucket
    # What a kill between fake-gcs-server's rename of the content and its metadata write
    # leaves: a whole file without metadata (here the rewrite of an acknowledged object, and a
    # new one), and renameio's probe file (also without metadata).
    (objects / "exec" / "a" / "inputs.pb").unlink()
    (objects / "exec" / "a" / "inputs.pb").write_bytes(b"acknowledged")
    (objects / "exec" / "b").mkdir(parents=True)
    (objects / "exec" / "b" / "outputs.pb").write_bytes(b"in flight")
    (objects / "exec" / "a" / ".inputs.pb123456").write_bytes(b"")
    with pytest.raises(gexc.GoogleAPICallError):  # such files break listing their folder
        list(bucket.list_blobs(prefix="exec/"))

    kept.processes.stop()
    kept.service.start()  # recover() before it, restore() after it, as every (re)start
    bucket = client(kept.endpoint).bucket(kept.bucket)
    assert sorted(b.name for b in bucket.list_blobs(prefix="exec/")) == [
        "exec/a/inputs.pb",
        "exec/b/outputs.pb",
    ]
    assert bucket.blob("exec/a/inputs.pb").download_as_bytes() == b"acknowledged"
    assert bucket.blob("exec/b/outputs.pb").download_as_bytes() == b"in flight"
    (aside,) = (kept.root / "lost+found").iterdir()
    assert [p.name for p in aside.rglob("*") if p.is_file()] == [".inputs.pb123456"]
    assert said == [
        "blob store: 3 file(s) of interrupted writes: 2 restored as objects, 1 temporary left "
        f"in {kept.root / 'lost+found'}"
    ]


def test_a_throwaway_store_is_removed_on_stop(tmp_path):
    blobs = start_gcs_emulator(tmp_path / "work")
    root = blobs.root
    client(blobs.endpoint).bucket(blobs.bucket).blob("x").upload_from_string(b"x")
    assert (root / "objects" / blobs.bucket / "x").exists()
    blobs.stop()
    assert not root.exists()


def test_a_kept_store_comes_back_on_its_port_with_its_objects(tmp_path):
    # Pods created before a restart of `flyteadmin dev` carry the endpoint in their env.
    first = start_gcs_emulator(tmp_path / "work", data_dir=tmp_path / "store")
    try:
        client(first.endpoint).bucket(first.bucket).blob("a").upload_from_string(b"kept")
    finally:
        first.stop()
    again = start_gcs_emulator(tmp_path / "work", data_dir=tmp_path / "store")
    try:
        assert again.endpoint == first.endpoint
        assert client(again.endpoint).bucket(again.bucket).blob("a").download_as_bytes() == b"kept"
    finally:
        again.stop()
