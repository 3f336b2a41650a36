"""The ``flyte.lyft.com/v1alpha1`` FlyteWorkflow object that stock flytepropeller runs (§5.3).

``build_flyteworkflow`` reproduces propeller's k8s transformer plus flyteadmin's additions, JSON
shape included; ``crd`` holds the CustomResourceDefinition it is stored under.
"""

from flyteadmin.core.flyteworkflow.build import (
    FlyteWorkflowBuildError,
    FlyteWorkflowOptions,
    build_flyteworkflow,
)
from flyteadmin.core.flyteworkflow.resources import adjust_or_default_resource

__all__ = [
    "FlyteWorkflowBuildError",
    "FlyteWorkflowOptions",
    "adjust_or_default_resource",
    "build_flyteworkflow",
]
