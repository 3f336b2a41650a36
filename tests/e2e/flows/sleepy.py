"""A workflow that waits an hour at a gate node before its task: an execution that is still
running when the suite terminates it, whether or not a flytepropeller runs it. (This folder has
no __init__.py, so pyflyte packages only it.)"""

from datetime import timedelta

from flytekit import sleep, task, workflow


@task
def after(x: int) -> int:
    return x + 1


@workflow
def wait_then_run(x: int = 1) -> int:
    gate = sleep(timedelta(hours=1))
    result = after(x=x)
    gate >> result
    return result
