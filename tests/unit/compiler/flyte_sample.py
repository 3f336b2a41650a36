"""Flytekit workflows covering every node kind, serialized in-process by the compiler tests.

Never run: only serialized (``flytekit.tools.translator.get_serializable``), so the task bodies
are trivial. Changing this module changes the golden closures (refresh with UPDATE_GOLDEN=1).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from flytekit import (
    LaunchPlan,
    approve,
    conditional,
    dynamic,
    map_task,
    sleep,
    task,
    wait_for_input,
    workflow,
)
from flytekit.types.error import FlyteError
from flytekit.types.file import FlyteFile


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    x: int
    y: int


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def square(x: int) -> int:
    return x * x


@task
def to_str(x: int) -> str:
    return str(x)


@task
def noop() -> None:
    pass


@task
def greet(name: str, greeting: str | None = None) -> str:
    return f"{greeting or 'hello'} {name}"


@task
def make_point(x: int) -> Point:
    return Point(x=x, y=x)


@task
def paint(color: Color, values: list[int], tags: dict[str, str]) -> FlyteFile:
    return FlyteFile(path="/tmp/painted")


@task
def cleanup(a: int, color: Color, name: str, err: FlyteError | None = None) -> None:
    pass


@workflow
def sub_wf(x: int) -> int:
    return square(x=x)


@dynamic
def fan_out(n: int) -> list[int]:
    return [square(x=i) for i in range(n)]


sub_lp = LaunchPlan.get_or_create(sub_wf, name="sub_lp", default_inputs={"x": 3})


@workflow
def main_wf(a: int = 1, b: int = 2) -> tuple[int, str, list[int]]:
    s = add(a=a, b=b)
    t = sub_wf(x=s)
    u = (
        conditional("test")
        .if_(a > 0)
        .then(square(x=t))
        .elif_(a < -10)
        .then(add(a=t, b=2))
        .else_()
        .then(add(a=t, b=1))
    )
    m = map_task(square)(x=[1, 2, 3])
    v = sub_lp(x=u)
    approved = approve(v, "approve-v", timeout=timedelta(hours=1))
    wait_for_input("name", timeout=timedelta(hours=1), expected_type=str)
    pause = sleep(timedelta(seconds=1))
    done = noop()
    pause >> done
    fan_out(n=approved)
    return approved, to_str(x=s), m


@workflow(on_failure=cleanup)
def data_wf(a: int, color: Color = Color.RED, name: str = "x") -> tuple[int, FlyteFile]:
    p = make_point(x=a)
    total = add(a=p.x, b=p.y)
    greeting = greet(name=name)
    f = paint(color=color, values=[a, total, 3], tags={"name": greeting, "fixed": "v"})
    return total, f


@workflow
def nested_branch_wf(a: int) -> int:
    return (
        conditional("outer")
        .if_(a > 5)
        .then(
            conditional("inner")
            .if_((a > 10) & (a < 100))
            .then(square(x=a))
            .else_()
            .then(add(a=a, b=1))
        )
        .else_()
        .fail("a is too small")
    )


WORKFLOWS = {"main_wf": main_wf, "data_wf": data_wf, "nested_branch_wf": nested_branch_wf}
