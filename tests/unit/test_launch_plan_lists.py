"""A listed launch plan's state comes from its NamedEntity's active-version pointer, not from
the version itself: a kept list entry (core/wire.py) must follow the pointer even when the
version's own object has not changed (e.g. another worker's activation seen first)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from flyteidl.admin import launch_plan_pb2
from flyteidl.core import identifier_pb2
from kubernetes import client

from flyteadmin.core import wire
from flyteadmin.core.crmap.registered import LaunchPlanCodec, Registered
from flyteadmin.core.registration import workflows
from flyteadmin.core.registration.launch_plans import LaunchPlans
from flyteadmin.core.store import Collection, Stored

LIST = wire.ListShape(launch_plan_pb2.LaunchPlanList, "launch_plans")
ACTIVE, INACTIVE = launch_plan_pb2.ACTIVE, launch_plan_pb2.INACTIVE


def _version(version: str) -> Stored[Registered[launch_plan_pb2.LaunchPlan]]:
    lp = launch_plan_pb2.LaunchPlan(
        id=identifier_pb2.Identifier(
            resource_type=identifier_pb2.LAUNCH_PLAN,
            project="p",
            domain="d",
            name="lp",
            version=version,
        )
    )
    return Stored(version, 1, "", dt.datetime.now(dt.UTC), Registered(lp, "digest"))


def test_a_kept_entry_follows_the_active_version() -> None:
    pointer = SimpleNamespace(active_version="v1")
    named = SimpleNamespace(meta=lambda *_: pointer)
    launch_plans = LaunchPlans(
        Collection(client.ApiClient(), "ns", LaunchPlanCodec(), http=None),  # type: ignore[arg-type]
        projects=None,  # type: ignore[arg-type]
        workflows=SimpleNamespace(schema=workflows.SCHEMA),  # type: ignore[arg-type]
        named=lambda: named,  # type: ignore[arg-type,return-value]
    )
    v1, v2 = _version("v1"), _version("v2")

    def states() -> list[int]:
        page = LIST.page([launch_plans.listed_entry(LIST, r) for r in (v1, v2)])
        return [lp.closure.state for lp in page.message().launch_plans]

    assert states() == [ACTIVE, INACTIVE]
    pointer.active_version = "v2"  # the versions' own objects are unchanged
    assert states() == [INACTIVE, ACTIVE]
    pointer.active_version = ""
    assert states() == [INACTIVE, INACTIVE]
