"""Which state of an object the cache serves when the event journal holds one too
(``Collection.overlay``): the one made durable at the higher etcd revision."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from flyteidl.admin import project_pb2
from kubernetes import client

from flyteadmin.core import kube
from flyteadmin.core.config import JournalSettings
from flyteadmin.core.crmap.event_batches import EventBatchCodec
from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.events.journal import RETIRED_GRACE_SECONDS, Journal
from flyteadmin.core.store import ORIGIN_ANNOTATION, Collection, Stored

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


# ---------------------------------------------------------------------------- replayed states
# A kind other writers change too (Executions: the operator, TerminateExecution): its journal
# states carry their change, made again from what such a writer wrote without seeing them.


def run(value: project_pb2.Project) -> project_pb2.Project | None:
    """The journaled change: refused (None) once the object was aborted."""
    if "aborted" in value.description:
        return None
    return state(value.description + "+run")


def test_a_write_that_did_not_see_a_journal_state_gets_its_change_made_again(records):
    records._apply("ADDED", obj(90, "queued"))
    assert records.overlay("p", state("queued+run"), 100, NOW, (90, run))
    # Another writer, from the object at 90 (its origin says so): its change and the state's.
    records._apply("MODIFIED", obj(150, "queued archived", origin=90))
    assert served(records) == ("queued archived+run", 150, 100)
    # The fold of the state made again lands: the object holds both.
    records._apply("MODIFIED", obj(160, "queued archived+run", origin=100))
    assert served(records) == ("queued archived+run", 160, 0)


def test_a_write_that_saw_the_journal_state_replaces_it(records):
    records._apply("ADDED", obj(90, "queued"))
    records.overlay("p", state("queued+run"), 100, NOW, (90, run))
    records._apply("MODIFIED", obj(150, "queued+run archived", origin=100))
    assert served(records) == ("queued+run archived", 150, 0)


def test_a_journal_state_seen_after_such_a_write_is_made_again_from_it(records):
    records._apply("ADDED", obj(90, "queued"))
    records._apply("MODIFIED", obj(150, "archived", origin=90))  # committed before the batch
    assert records.overlay("p", state("queued+run"), 120, NOW, (90, run))
    assert served(records) == ("archived+run", 150, 120)


def test_a_journal_state_made_from_a_newer_object_than_the_cache_has_is_served_as_is(records):
    records._apply("ADDED", obj(90, "queued"))
    assert records.overlay("p", state("archived+run"), 200, NOW, (150, run))
    records._apply("MODIFIED", obj(150, "archived", origin=90))  # what it was made from
    assert served(records) == ("archived+run", 150, 200)


def test_a_change_that_no_longer_applies_leaves_the_object(records):
    records._apply("ADDED", obj(90, "queued"))
    records.overlay("p", state("queued+run"), 100, NOW, (90, run))
    records._apply("MODIFIED", obj(150, "aborted", origin=90))
    assert served(records) == ("aborted", 150, 0)
    # Seen again (another process's relist of the batch): still not applicable.
    assert not records.overlay("p", state("queued+run"), 100, NOW, (90, run))
    assert served(records) == ("aborted", 150, 0)


def test_a_relist_makes_a_journal_state_again_from_what_it_listed(records):
    records._apply("ADDED", obj(90, "queued"))
    records.overlay("p", state("queued+run"), 100, NOW, (90, run))
    records._replace_all([obj(150, "archived", origin=90)], list_rv=300)
    assert served(records) == ("archived+run", 150, 100)
    records._replace_all([obj(170, "aborted", origin=90)], list_rv=400)
    assert served(records) == ("aborted", 170, 0)


def test_an_edit_that_does_not_say_what_it_was_made_from_holds_no_journal_state(records):
    records.stamps_origin = True  # as for Executions: every writer of ours says it
    records._apply("ADDED", obj(90, "queued"))
    records.overlay("p", state("queued+run"), 100, NOW, (90, run))
    records._apply("MODIFIED", obj(150, "archived"))  # kubectl edit: no origin
    assert served(records) == ("archived+run", 150, 100)
    # Nor does the batch, seen again by a relist, lose to it.
    records._replace_all([obj(150, "archived")], list_rv=300)
    assert served(records) == ("archived+run", 150, 100)


class _Echo:
    """An API server that stores what it is sent, at resourceVersion 300."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def request_sized(self, method: str, path: str, body: dict) -> tuple[dict, int]:
        self.sent.append(body)
        meta = {**body["metadata"], "resourceVersion": "300", "uid": "uid"}
        return {**body, "metadata": {**meta, "creationTimestamp": "2026-01-01T00:00:00Z"}}, 10


@pytest.mark.parametrize("journal_state", [False, True])
def test_an_update_says_which_state_it_was_made_from(records, journal_state):
    records._http = _Echo()  # type: ignore[assignment]
    records.stamps_origin = True
    records._apply("ADDED", obj(90, "queued", origin=40))
    if journal_state:
        records.overlay("p", state("queued+run"), 100, NOW, (90, run))
    current = records.get("p")
    assert current is not None
    asyncio.run(records.update(current, state(current.value.description + " archived")))
    (sent,) = records._http.sent  # type: ignore[attr-defined]
    assert sent["metadata"]["resourceVersion"] == "90"
    assert sent["metadata"]["annotations"][ORIGIN_ANNOTATION] == ("100" if journal_state else "40")
    # It holds the journal state it was made from: that state is not served over it.
    assert served(records) == (current.value.description + " archived", 300, 0)


class _Gone:
    """An API server where every object was deleted."""

    async def request_sized(self, method: str, path: str, body: object = None) -> None:
        raise kube.KubeError(404, "gone")


def test_states_of_retired_batches_are_dropped_once_their_grace_is_over(records):
    """Another process deleted the batches these states came from, and no object holding them
    was seen: after the grace each is read from the API server (here: gone), in the order
    the batches went, and a state served from a newer batch meanwhile is kept."""
    records._http = _Gone()  # type: ignore[assignment]
    batches = Collection(client.ApiClient(), "ns", EventBatchCodec(), http=None)  # type: ignore[arg-type]
    journal = Journal(batches, [records], JournalSettings())
    names = ("a", "b", "c")
    for n, name in enumerate(names):
        assert records.overlay(name, project_pb2.Project(id=name), 100 + n, NOW)
    t0 = 1000.0
    journal._retired.extend((t0 + n, ("Project", name), 100 + n) for n, name in enumerate(names))
    assert records.overlay("b", project_pb2.Project(id="b", name="newer"), 200, NOW)

    asyncio.run(journal._check_retired(t0 + RETIRED_GRACE_SECONDS + 0.5))  # "a" only is due
    assert records.get("a") is None and records.get("c") is not None
    assert [key for _, key, _ in journal._retired] == [("Project", "b"), ("Project", "c")]

    asyncio.run(journal._check_retired(t0 + RETIRED_GRACE_SECONDS + 10))
    assert records.get("c") is None and not journal._retired
    newer = records.get("b")  # its state came from a newer batch: still served
    assert newer is not None and newer.value.name == "newer"
