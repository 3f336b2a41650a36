"""The compiler's working state: one ``Graph`` per workflow being compiled, sharing a ``Context``
(the loaded tasks, launch-plan interfaces and sub-workflows of the whole compile run)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flyteidl.admin import launch_plan_pb2
from flyteidl.core import compiler_pb2, interface_pb2, tasks_pb2, workflow_pb2

from flyteadmin.core.compiler.errors import Collector
from flyteadmin.core.compiler.requirements import IdKey

START_NODE_ID = "start-node"
END_NODE_ID = "end-node"


class EdgeDirection(enum.Enum):
    BIDIRECTIONAL = 0
    DOWNSTREAM = 1
    UPSTREAM = 2


@dataclass(frozen=True)
class LaunchPlanInterface:
    """What a launch-plan node sees of its launch plan: the closure's expected inputs and outputs
    (``None`` when the closure lacks them, which the compiler reports)."""

    expected_inputs: interface_pb2.ParameterMap | None
    expected_outputs: interface_pb2.VariableMap | None


# Either form: a LaunchPlanInterface, or a stored launch plan's admin.LaunchPlanClosure.
LaunchPlanLike = LaunchPlanInterface | launch_plan_pb2.LaunchPlanClosure


def launch_plan_sides(
    launch_plan: LaunchPlanLike,
) -> tuple[interface_pb2.ParameterMap | None, interface_pb2.VariableMap | None]:
    if isinstance(launch_plan, LaunchPlanInterface):
        return launch_plan.expected_inputs, launch_plan.expected_outputs
    closure = launch_plan
    inputs = closure.expected_inputs if closure.HasField("expected_inputs") else None
    outputs = closure.expected_outputs if closure.HasField("expected_outputs") else None
    return inputs, outputs


@dataclass(eq=False)
class NodeInfo:
    """A node of the template (a live reference into the proto being compiled) plus what the
    compiler learns about it. Built once per proto node, like propeller's node builders."""

    proto: workflow_pb2.Node
    interface: interface_pb2.TypedInterface | None = None
    branch_children: list[NodeInfo] | None = None
    array_child: NodeInfo | None = None
    renamed: bool = False  # a branch case gets its "<branch>-" prefix once

    @property
    def id(self) -> str:
        return self.proto.id


@dataclass(eq=False)
class Context:
    tasks: Mapping[IdKey, tasks_pb2.TaskTemplate]
    launch_plans: Mapping[IdKey, LaunchPlanLike]
    sub_workflows: Mapping[IdKey, compiler_pb2.CompiledWorkflow]
    # Compiles a sub-workflow (once per run) and says whether it compiled cleanly.
    compile_sub_workflow: Callable[[IdKey, workflow_pb2.Node, Collector], None]


@dataclass(eq=False)
class Graph:
    ctx: Context
    template: workflow_pb2.WorkflowTemplate
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    upstream: dict[str, set[str]] = field(default_factory=dict)
    downstream: dict[str, set[str]] = field(default_factory=dict)

    def add_upstream_edge(self, provider: str, dependent: str) -> None:
        self.upstream.setdefault(dependent, set()).add(provider or START_NODE_ID)

    def add_downstream_edge(self, provider: str, dependent: str) -> None:
        self.downstream.setdefault(provider or START_NODE_ID, set()).add(dependent)

    def add_execution_edge(self, provider: str, dependent: str) -> None:
        self.add_downstream_edge(provider, dependent)
        self.add_upstream_edge(provider, dependent)

    def add_edge(self, provider: str, dependent: str, direction: EdgeDirection) -> None:
        if direction is EdgeDirection.BIDIRECTIONAL:
            self.add_execution_edge(provider, dependent)
        elif direction is EdgeDirection.DOWNSTREAM:
            self.add_downstream_edge(provider, dependent)
        else:
            self.add_upstream_edge(provider, dependent)
