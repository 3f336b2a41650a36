"""Which state of an object the cache serves when the event journal holds one too
(``Collection.overlay``): the one made durable at the higher etcd revision."""

from __future__ import annotations

import datetime as dt

import pytest
from flyteidl.admin import project_pb2
from kubernetes import client

from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.store import Collection, Stored

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def records() -> Collection[project_pb2.Project]:
    # Never started: no watch, no cluster; _apply is what the watch and writes call.
    return Collection(client.ApiClient(), "ns", ProjectCodec(), http=None)  # type: ignore[arg-type]


def state(description: str) -> project_pb2.Project:
    return project_pb2.Project(id="p", name="p", description=description)


def obj(rv: int, description: str, origin: int = 0) -> Stored[project_pb2.Project]:
    return Stored("p", rv, "uid", NOW, state(description), size=10, origin=origin)


def served(records: Collection[project_pb2.Project]) -> tuple[str, int, int]:
    stored = records.get("p")
    assert stored is not None
    return stored.value.description, stored.resource_version, records.pending_origin("p")


def test_a_journal_state_is_served_until_its_object_holds_it(records):
    records._apply("ADDED", obj(90, "queued"))
    assert records.overlay("p", state("running"), 100, NOW)
    assert served(records) == ("running", 90, 100)  # the object's version, for the fold
    # The fold of an older state (origin 95) lands: its version is taken, not its body.
    records._apply("MODIFIED", obj(150, "queued+", origin=95))
    assert served(records) == ("running", 150, 100)
    # The fold of this state: the object holds it now.
    records._apply("MODIFIED", obj(160, "running", origin=100))
    assert served(records) == ("running", 160, 0)


def test_an_older_journal_state_never_hides_a_newer_one(records):
    assert records.overlay("p", state("running"), 100, NOW)
    assert not records.overlay("p", state("queued"), 80, NOW)  # a late batch
    assert served(records) == ("running", 0, 100)
    records._apply("ADDED", obj(120, "succeeded"))  # a direct write after it: newer
    assert served(records) == ("succeeded", 120, 0)
    assert not records.overlay("p", state("running"), 100, NOW)  # that batch, seen again


def test_a_deletion_is_not_undone_by_an_older_batch(records):
    records._apply("ADDED", obj(120, "succeeded"))
    records._apply("DELETED", obj(200, "succeeded"))
    assert not records.overlay("p", state("running"), 150, NOW)
    assert records.get("p") is None


def test_a_relist_keeps_journal_states_newer_than_what_it_listed(records):
    records._apply("ADDED", obj(90, "queued"))
    records.overlay("p", state("running"), 100, NOW)
    records.overlay("q", state("other"), 110, NOW)  # no object yet
    records._replace_all([obj(95, "queued")], list_rv=300)
    assert served(records) == ("running", 95, 100)
    assert records.get("q") is not None and records.pending_origin("q") == 110
    records._replace_all([obj(130, "running", origin=100)], list_rv=400)
    assert served(records) == ("running", 130, 0)
