"""The schedule loop on the real apiserver, with a hand-driven clock: active launch plans fire
exactly their due times (with the kickoff input), two schedulers at once make no duplicates, a
restart catches up within the limit without refiring, deactivation stops a schedule."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flyteidl.admin import common_pb2, execution_pb2, launch_plan_pb2, project_pb2, schedule_pb2
from flyteidl.core import interface_pb2, literals_pb2, types_pb2
from kubernetes import client

from flyteadmin.core import crds
from flyteadmin.core.backend import Backend
from flyteadmin.core.config import ScheduleSettings, Settings
from flyteadmin.core.crmap.named_entities import named_entity_object_name
from flyteadmin.core.errors import AdminError
from flyteadmin.core.schedules import execution_name
from flyteadmin.operator.runner import OperatorThread
from flyteadmin.operator.scheduler import Scheduler
from tests.integration.conftest import run
from tests.integration.registration_helpers import (
    PROJECT,
    RT,
    chain_workflow,
    ident,
    launch_plan_request,
    task_request,
)

LPState = launch_plan_pb2.LaunchPlanState
T0 = datetime(2030, 1, 1, 10, 2, 30, tzinfo=UTC)


class FakeClock:
    """Time moves only when a test says so (or, in ``sleep``, by the amount slept)."""

    def __init__(self, now: datetime, stop_after: int = 0) -> None:
        self.current = now
        self.slept: list[float] = []
        self.stop_after = stop_after

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.stop_after and len(self.slept) >= self.stop_after:
            raise _Stop
        self.current += timedelta(seconds=seconds)
        await asyncio.sleep(0)


class _Stop(Exception):
    pass


def minutes(*offsets: int) -> list[datetime]:
    base = T0.replace(minute=0, second=0)
    return [base + timedelta(minutes=m) for m in offsets]


def cron(text: str, kickoff: str = "") -> schedule_pb2.Schedule:
    return schedule_pb2.Schedule(
        cron_schedule=schedule_pb2.CronSchedule(schedule=text), kickoff_time_input_arg=kickoff
    )


def rate(value: int, kickoff: str = "") -> schedule_pb2.Schedule:
    return schedule_pb2.Schedule(
        rate=schedule_pb2.FixedRate(value=value, unit=schedule_pb2.MINUTE),
        kickoff_time_input_arg=kickoff,
    )


async def until(check: Callable[[], object], timeout: float = 30.0) -> None:
    """Wait for a watch to deliver a write made through another cache."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the watch did not deliver in time"
        await asyncio.sleep(0.02)


async def started(settings: Settings) -> Backend:
    backend = Backend(settings)
    await backend.start()
    return backend


async def register(backend: Backend, plans: dict[str, schedule_pb2.Schedule | None]) -> None:
    """Project, task ``t``, workflow ``wf`` (inputs x: int, kickoff: datetime) and one launch
    plan per entry (x=5; ``kickoff`` left free, for the schedule)."""
    await backend.projects.register(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="f"))
    )
    await backend.tasks.create(task_request("t"))
    workflow = chain_workflow("wf", "t")
    workflow.spec.template.interface.inputs.variables["kickoff"].CopyFrom(
        interface_pb2.Variable(type=types_pb2.LiteralType(simple=types_pb2.DATETIME))
    )
    await backend.workflows.create(workflow)
    for name, schedule in plans.items():
        request = launch_plan_request(name, "wf", x=5)
        if schedule is not None:
            request.spec.entity_metadata.schedule.CopyFrom(schedule)
        await backend.launch_plans.create(request)


async def set_state(backend: Backend, name: str, state: int, version: str = "v1") -> None:
    await backend.launch_plans.update(
        launch_plan_pb2.LaunchPlanUpdateRequest(
            id=ident(RT.LAUNCH_PLAN, name, version), state=state
        )
    )


def pointer_seen(scheduler: Scheduler, name: str, version: str) -> Callable[[], bool]:
    object_name = named_entity_object_name(RT.LAUNCH_PLAN, PROJECT, "development", name)

    def check() -> bool:
        stored = scheduler.states.get(object_name)
        return stored is not None and stored.value.active_version == version

    return check


def fired(backend: Backend, name: str) -> dict[datetime, execution_pb2.Execution]:
    """Scheduled executions of launch plan ``name`` by scheduled time (one each, or it fails)."""
    out: dict[datetime, execution_pb2.Execution] = {}
    for stored in backend.execution_records.values():
        execution = stored.value.execution
        if execution.spec.launch_plan.name != name:
            continue
        moment = execution.spec.metadata.scheduled_at.ToDatetime(UTC)
        assert moment not in out, f"two executions for {moment}"
        out[moment] = execution
    return out


def count_outcomes(backend: Backend) -> list[tuple[datetime, str]]:
    """Record what each CreateExecution of ``backend`` answered, by scheduled time."""
    outcomes: list[tuple[datetime, str]] = []
    create = backend.executions.create

    async def counted(request, **kwargs):
        moment = request.spec.metadata.scheduled_at.ToDatetime(UTC)
        try:
            result = await create(request, **kwargs)
        except AdminError as err:
            outcomes.append((moment, err.code.name))
            raise
        outcomes.append((moment, "OK"))
        return result

    backend.executions.create = counted  # type: ignore[method-assign]
    return outcomes


def named_entity_body(kube_api, namespace: str, name: str) -> dict:
    return client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        crds.GROUP,
        crds.VERSION,
        namespace,
        crds.NAMED_ENTITY.plural,
        named_entity_object_name(RT.LAUNCH_PLAN, PROJECT, "development", name),
    )


def schedule_status(kube_api, namespace: str, name: str) -> dict:
    body = named_entity_body(kube_api, namespace, name)
    return (body.get("status") or {}).get("schedule") or {}


def test_an_active_cron_launch_plan_fires_exactly_its_due_times(settings, kube_api, namespace):
    async def main() -> None:
        backend = await started(settings)
        clock = FakeClock(T0)
        scheduler = Scheduler(backend, ScheduleSettings(max_catch_up=10), clock)
        await scheduler.start()
        try:
            plans = {
                "every5": cron("*/5 * * * *", kickoff="kickoff"),
                "rate7": rate(7, kickoff="kickoff"),
                "plain": None,
                "inactive": cron("* * * * *", kickoff="kickoff"),
            }
            await register(backend, plans)
            for name in ("every5", "rate7", "plain"):
                await set_state(backend, name, LPState.ACTIVE)
            for name in ("every5", "rate7", "plain"):
                await until(pointer_seen(scheduler, name, "v1"))

            wake = await scheduler.tick()  # first sight: scheduled from now on, nothing yet
            assert wake == minutes(5)[0]
            assert backend.execution_records.values() == []
            status = schedule_status(kube_api, namespace, "every5")
            assert status == {"version": "v1", "since": "2030-01-01T10:02:30Z"}

            clock.advance(minutes=14)  # 10:16:30
            wake = await scheduler.tick()
            assert wake == minutes(20)[0]
            every5 = fired(backend, "every5")
            assert sorted(every5) == minutes(5, 10, 15)
            rate_times = [T0 + timedelta(minutes=7), T0 + timedelta(minutes=14)]
            assert sorted(fired(backend, "rate7")) == rate_times
            assert fired(backend, "plain") == {} and fired(backend, "inactive") == {}
            for moment, execution in every5.items():
                assert execution.id.name == execution_name(ident(RT.LAUNCH_PLAN, "every5"), moment)
                assert execution.spec.launch_plan == ident(RT.LAUNCH_PLAN, "every5")
                assert execution.spec.metadata.mode == execution_pb2.ExecutionMetadata.SCHEDULED
                assert execution.spec.metadata.principal == "flyte-scheduler"
                record = backend.executions.find(execution.id).value
                inputs = literals_pb2.LiteralMap.FromString(
                    await backend.blobs.get(record.inputs_uri)
                )
                kickoff = inputs.literals["kickoff"].scalar.primitive.datetime.ToDatetime(UTC)
                assert kickoff == moment
                assert inputs.literals["x"].scalar.primitive.integer == 5  # the LP default
            status = schedule_status(kube_api, namespace, "every5")
            assert status["firedUpTo"] == "2030-01-01T10:15:00Z"

            await scheduler.tick()  # the same moment again: nothing new
            clock.advance(minutes=3, seconds=29)  # 10:19:59
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5, 10, 15)
            clock.advance(seconds=1)  # 10:20:00 exactly: due
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5, 10, 15, 20)
            assert len(fired(backend, "rate7")) == 2

            # The API server's spec writes and the scheduler's status writes leave each other be.
            await backend.named_entities.update(
                common_pb2.NamedEntityUpdateRequest(
                    resource_type=RT.LAUNCH_PLAN,
                    id=common_pb2.NamedEntityIdentifier(
                        project=PROJECT, domain="development", name="every5"
                    ),
                    metadata=common_pb2.NamedEntityMetadata(description="every five minutes"),
                )
            )
            status = schedule_status(kube_api, namespace, "every5")
            assert status["firedUpTo"] == "2030-01-01T10:20:00Z"
            clock.advance(minutes=5)
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5, 10, 15, 20, 25)
            body = named_entity_body(kube_api, namespace, "every5")
            assert body["spec"]["description"] == "every five minutes"
            assert body["spec"]["activeVersion"] == "v1"
            assert body["status"]["schedule"]["firedUpTo"] == "2030-01-01T10:25:00Z"
        finally:
            scheduler.stop()
            await backend.stop()

    run(main())


def test_two_schedulers_at_once_create_no_duplicates(settings, kube_api, namespace):
    async def main() -> None:
        # Two backends: two replicas with their own caches, racing on the same times.
        first, second = await started(settings), await started(settings)
        clock = FakeClock(T0)
        schedulers = [Scheduler(b, ScheduleSettings(), clock) for b in (first, second)]
        outcomes = [count_outcomes(b) for b in (first, second)]
        for scheduler in schedulers:
            await scheduler.start()
        try:
            await register(first, {"every1": cron("* * * * *", kickoff="kickoff")})
            await set_state(first, "every1", LPState.ACTIVE)
            for scheduler in schedulers:
                await until(pointer_seen(scheduler, "every1", "v1"))
            await asyncio.gather(*(s.tick() for s in schedulers))
            for _ in range(4):
                clock.advance(minutes=2)
                await asyncio.gather(*(s.tick() for s in schedulers))
            expected = minutes(*range(3, 11))  # 10:03 .. 10:10
            for backend in (first, second):
                await until(lambda b=backend: len(b.execution_records) == len(expected))
            assert sorted(fired(first, "every1")) == expected
            assert sorted(fired(second, "every1")) == expected
            listed = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
                crds.GROUP, crds.VERSION, namespace, crds.EXECUTION.plural
            )["items"]
            assert len(listed) == len(expected)
            # Each scheduler tried each time once: one created it, the other was told it
            # exists and took that as fired (a retry would show up as a third attempt).
            attempts = outcomes[0] + outcomes[1]
            assert sorted(moment for moment, _ in attempts) == sorted(expected * 2)
            assert sorted(moment for moment, code in attempts if code == "OK") == expected
            status = schedule_status(kube_api, namespace, "every1")
            assert status["firedUpTo"] == "2030-01-01T10:10:00Z"
        finally:
            for scheduler in schedulers:
                scheduler.stop()
            await first.stop()
            await second.stop()

    run(main())


def test_a_restart_catches_up_within_the_limit_and_does_not_refire(settings, kube_api, namespace):
    async def main() -> None:
        clock = FakeClock(T0)
        limited = ScheduleSettings(max_catch_up=3)
        backend = await started(settings)
        scheduler = Scheduler(backend, limited, clock)
        await scheduler.start()
        try:
            await register(backend, {"every5": cron("*/5 * * * *", kickoff="kickoff")})
            await set_state(backend, "every5", LPState.ACTIVE)
            await until(pointer_seen(scheduler, "every5", "v1"))
            await scheduler.tick()
            clock.advance(minutes=10)  # 10:12:30
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5, 10)
        finally:
            scheduler.stop()
            await backend.stop()

        clock.advance(hours=1)  # down until 11:12:30: 12 times missed, 3 are caught up
        backend = await started(settings)
        scheduler = Scheduler(backend, limited, clock)
        await scheduler.start()
        try:
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5, 10, 60, 65, 70)
            await scheduler.tick()
            assert len(fired(backend, "every5")) == 5

            # A crash between a create and the watermark write: the watermark is behind.
            lost = {"status": {"schedule": {"firedUpTo": "2030-01-01T11:00:00Z"}}}
            client.CustomObjectsApi(kube_api).patch_namespaced_custom_object_status(
                crds.GROUP,
                crds.VERSION,
                namespace,
                crds.NAMED_ENTITY.plural,
                named_entity_object_name(RT.LAUNCH_PLAN, PROJECT, "development", "every5"),
                lost,
            )
            object_name = named_entity_object_name(RT.LAUNCH_PLAN, PROJECT, "development", "every5")
            await until(
                lambda: scheduler.states.get(object_name).value.fired_up_to == minutes(60)[0]
            )
            clock.advance(minutes=5)  # 11:17:30
            await scheduler.tick()  # 11:05, 11:10 again (already there), 11:15 new
            assert sorted(fired(backend, "every5")) == minutes(5, 10, 60, 65, 70, 75)
            status = schedule_status(kube_api, namespace, "every5")
            assert status["firedUpTo"] == "2030-01-01T11:15:00Z"
        finally:
            scheduler.stop()
            await backend.stop()

    run(main())


def test_deactivation_stops_firing_and_activation_starts_from_then(settings, kube_api, namespace):
    async def main() -> None:
        backend = await started(settings)
        clock = FakeClock(T0)
        scheduler = Scheduler(backend, ScheduleSettings(max_catch_up=100), clock)
        await scheduler.start()
        try:
            await register(backend, {"every5": cron("*/5 * * * *", kickoff="kickoff")})
            await set_state(backend, "every5", LPState.ACTIVE)
            await until(pointer_seen(scheduler, "every5", "v1"))
            await scheduler.tick()
            clock.advance(minutes=5)  # 10:07:30
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5)

            await set_state(backend, "every5", LPState.INACTIVE)
            await until(pointer_seen(scheduler, "every5", ""))
            clock.advance(minutes=30)  # 10:37:30
            assert await scheduler.tick() is None
            assert sorted(fired(backend, "every5")) == minutes(5)
            assert schedule_status(kube_api, namespace, "every5") == {"version": ""}

            clock.advance(minutes=30)  # 11:07:30: activated again, scheduled from here
            await set_state(backend, "every5", LPState.ACTIVE)
            await until(pointer_seen(scheduler, "every5", "v1"))
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5)
            clock.advance(minutes=5)
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5, 70)
        finally:
            scheduler.stop()
            await backend.stop()

    run(main())


def test_the_loop_wakes_at_the_fire_times(settings, namespace):
    async def main() -> None:
        backend = await started(settings)
        clock = FakeClock(T0, stop_after=6)
        scheduler = Scheduler(backend, ScheduleSettings(tick_seconds=600), clock)
        await scheduler.start()
        try:
            await register(backend, {"every5": cron("*/5 * * * *", kickoff="kickoff")})
            await set_state(backend, "every5", LPState.ACTIVE)
            await until(pointer_seen(scheduler, "every5", "v1"))
            try:
                await scheduler.run()
            except _Stop:
                pass
            # 10:02:30 -> 10:05 -> 10:10 -> ...: it sleeps until each time, then fires it
            assert clock.slept == [150.0, 300.0, 300.0, 300.0, 300.0, 300.0]
            assert sorted(fired(backend, "every5")) == minutes(5, 10, 15, 20, 25)
        finally:
            scheduler.stop()
            await backend.stop()

    run(main())


def test_a_later_version_takes_over_from_its_activation(settings, kube_api, namespace):
    async def main() -> None:
        backend = await started(settings)
        clock = FakeClock(T0)
        scheduler = Scheduler(backend, ScheduleSettings(), clock)
        await scheduler.start()
        try:
            await register(backend, {"every5": cron("*/5 * * * *", kickoff="kickoff")})
            v2 = launch_plan_request("every5", "wf", version="v1", x=6)
            v2.id.version = "v2"
            v2.spec.entity_metadata.schedule.CopyFrom(cron("*/5 * * * *", kickoff="kickoff"))
            await backend.launch_plans.create(v2)
            await set_state(backend, "every5", LPState.ACTIVE)
            await until(pointer_seen(scheduler, "every5", "v1"))
            await scheduler.tick()
            clock.advance(minutes=5)  # 10:07:30
            await scheduler.tick()
            await set_state(backend, "every5", LPState.ACTIVE, version="v2")
            await until(pointer_seen(scheduler, "every5", "v2"))
            clock.advance(minutes=1)  # 10:08:30
            await scheduler.tick()
            clock.advance(minutes=2)  # 10:10:30
            await scheduler.tick()
            by_time = fired(backend, "every5")
            assert sorted(by_time) == minutes(5, 10)
            assert [by_time[t].spec.launch_plan.version for t in sorted(by_time)] == ["v1", "v2"]

            # A version without a schedule takes over: nothing fires, the record is dropped...
            v3 = launch_plan_request("every5", "wf", version="v1", x=7)
            v3.id.version = "v3"
            v3.spec.default_inputs.parameters["kickoff"].var.type.simple = types_pb2.DATETIME
            v3.spec.default_inputs.parameters["kickoff"].default.CopyFrom(
                literals_pb2.Literal(
                    scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(datetime={}))
                )
            )
            await backend.launch_plans.create(v3)
            await set_state(backend, "every5", LPState.ACTIVE, version="v3")
            await until(pointer_seen(scheduler, "every5", "v3"))
            clock.advance(minutes=20)  # 10:30:30
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5, 10)
            assert schedule_status(kube_api, namespace, "every5") == {"version": ""}
            # ... so v2 activated again starts from then, without the times v3 was active.
            await set_state(backend, "every5", LPState.ACTIVE, version="v2")
            await until(pointer_seen(scheduler, "every5", "v2"))
            await scheduler.tick()
            clock.advance(minutes=5)  # 10:35:30
            await scheduler.tick()
            assert sorted(fired(backend, "every5")) == minutes(5, 10, 35)
        finally:
            scheduler.stop()
            await backend.stop()

    run(main())


def test_the_operator_runs_the_schedule_loop(settings, unique, kube_api, namespace):
    """Wiring only (real clock): the operator's loop picks up an activation at its first tick."""
    settings = dataclasses.replace(
        settings,
        operator=dataclasses.replace(
            settings.operator, namespace_template=f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"
        ),
        schedules=ScheduleSettings(tick_seconds=0.2),
    )

    async def setup() -> None:
        backend = await started(settings)
        try:
            await register(backend, {"daily": cron("@daily", kickoff="kickoff")})
            await set_state(backend, "daily", LPState.ACTIVE)
        finally:
            await backend.stop()

    run(setup())
    operator = OperatorThread(settings)
    operator.start()
    try:
        deadline = time.monotonic() + 30
        while schedule_status(kube_api, namespace, "daily").get("version") != "v1":
            assert operator.running and time.monotonic() < deadline, "no tick of the operator"
            time.sleep(0.1)
        assert "since" in schedule_status(kube_api, namespace, "daily")
    finally:
        operator.stop()
