"""A task registered on its own first, then used as a reference task by the workflows."""

from flytekit import task


@task
def normalize(x: float) -> float:
    return x / 100.0
