"""The cache remembers deletions only as long as it must: an older event cannot bring a deleted
object back, and the memory of deletions does not grow with every object ever deleted."""

from __future__ import annotations

import datetime as dt

import pytest
from flyteidl.admin import project_pb2
from kubernetes import client

from flyteadmin.core import store
from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.store import Collection, Stored


def _stored(name: str, rv: int) -> Stored[project_pb2.Project]:
    value = project_pb2.Project(id=name, name=name)
    return Stored(name, rv, f"uid-{name}", dt.datetime.now(dt.UTC), value)


@pytest.fixture
def projects() -> Collection[project_pb2.Project]:
    # Never started: no watch, no cluster; _apply is what the watch thread calls.
    return Collection(client.ApiClient(), "ns", ProjectCodec(), http=None)  # type: ignore[arg-type]


def test_an_older_event_does_not_bring_a_deleted_object_back(projects):
    projects._apply("ADDED", _stored("a", 10))
    projects._apply("DELETED", _stored("a", 12))
    projects._apply("MODIFIED", _stored("a", 11))  # e.g. a late write response
    assert projects.get("a") is None
    projects._apply("ADDED", _stored("a", 13))  # created again: newer, so it counts
    assert projects.get("a").resource_version == 13


def test_deletions_the_watch_has_passed_are_forgotten(projects, monkeypatch):
    monkeypatch.setattr(store, "TOMBSTONE_SECONDS", 0.0)
    for rv in range(1, 20001, 2):
        name = f"p{rv}"
        projects._apply("ADDED", _stored(name, rv))
        projects._apply("DELETED", _stored(name, rv + 1))
        projects.seen_version = rv + 1  # the watch delivered the deletion
    assert len(projects._tombstones) == 1  # only the newest, not 10,000


def test_a_deletion_the_watch_has_not_passed_is_kept(projects, monkeypatch):
    monkeypatch.setattr(store, "TOMBSTONE_SECONDS", 0.0)
    projects.seen_version = 5
    projects._apply("ADDED", _stored("a", 4))
    projects._apply("DELETED", _stored("a", 8))  # e.g. our own delete, ahead of the watch
    projects._apply("ADDED", _stored("b", 6))
    projects._apply("DELETED", _stored("b", 9))
    assert set(projects._tombstones) == {"a", "b"}
    projects._apply("MODIFIED", _stored("a", 7))
    assert projects.get("a") is None
