"""A realistic flytekit project: several tasks, a sub-workflow, a conditional, a map task, a
dynamic workflow, launch plans with default and fixed inputs, a scheduled launch plan and a
reference task. Registered with `pyflyte register` by
tests/integration/test_registration_flytekit.py."""

from datetime import datetime

from flytekit import (
    CronSchedule,
    LaunchPlan,
    conditional,
    dynamic,
    map_task,
    reference_task,
    task,
    workflow,
)


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def square(x: int) -> int:
    return x * x


@task
def describe(n: int, label: str) -> str:
    return f"{label}: {n}"


@task
def double(x: int) -> int:
    return 2 * x


@reference_task(
    project="flytesnacks",
    domain="development",
    name="myproject.shared.normalize",
    version="ref-v1",
)
def normalize(x: float) -> float: ...


@dynamic
def fan_out(n: int) -> list[int]:
    return [square(x=i) for i in range(n)]


@workflow
def inner(a: int, b: int) -> int:
    return square(x=add(a=a, b=b))


@workflow
def pipeline(a: int = 3, b: int = 4, label: str = "result") -> str:
    total = inner(a=a, b=b)
    big = conditional("size").if_(total > 40).then(double(x=total)).else_().then(square(x=total))
    map_task(double)(x=fan_out(n=3))
    normalize(x=1.5)
    return describe(n=big, label=label)


@workflow
def nightly(kickoff: datetime, a: int = 1) -> int:
    return add(a=a, b=1)


fixed_lp = LaunchPlan.get_or_create(
    pipeline,
    name="myproject.workflows.pipeline_fixed",
    default_inputs={"a": 10},
    fixed_inputs={"label": "fixed"},
)

nightly_lp = LaunchPlan.get_or_create(
    nightly,
    name="myproject.workflows.nightly_schedule",
    schedule=CronSchedule(schedule="0 2 * * *", kickoff_time_input_arg="kickoff"),
)
