"""Tasks, a sub-workflow, a launch plan and helpers shared by the hand-built compiler tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flyteidl.core import (
    compiler_pb2,
    condition_pb2,
    interface_pb2,
    tasks_pb2,
    types_pb2,
    workflow_pb2,
)

from flyteadmin.core.compiler import (
    LaunchPlanInterface,
    compile_workflow,
    id_key,
)
from tests.unit.compiler.builders import (
    INT,
    STR,
    STRUCT,
    enum_of,
    int_value,
    list_of,
    lpid,
    map_of,
    optional,
    promise,
    tagged,
    task,
    task_node,
    union,
    variables,
    workflow,
)

GT = condition_pb2.ComparisonExpression.GT
POINT = types_pb2.LiteralType(simple=types_pb2.STRUCT)
POINT.structure.dataclass_type["x"].CopyFrom(INT)

TASKS = [
    task("inc", {"x": INT}, {"o": INT}),
    task("to_str", {"x": INT}, {"o": STR}),
    task("concat", {"a": STR, "b": optional(STR)}, {"o": STR}),
    task("sum_list", {"xs": list_of(INT)}, {"o": INT}),
    task("sum_map", {"m": map_of(INT)}, {"o": INT}),
    task("produce", {}, {"o": INT}),
    task("noop"),
    task("paint", {"c": enum_of("red", "green")}),
    task("either", {"u": union(tagged(list_of(INT), "l"), tagged(map_of(INT), "m"))}),
    task("ambiguous", {"u": union(tagged(list_of(INT), "a"), tagged(list_of(INT), "b"))}),
    task("point", {}, {"p": POINT}),
    task("struct_in", {"s": STRUCT}),
    task("mapped", {"x": list_of(INT)}, {"o": list_of(INT)}),
]
SUB = workflow(
    "sub",
    [task_node("s0", "inc", {"x": promise("", "x")})],
    {"x": INT},
    {"y": INT},
    {"y": promise("s0", "o")},
)
LP = LaunchPlanInterface(
    expected_inputs=interface_pb2.ParameterMap(
        parameters={
            "x": interface_pb2.Parameter(var=interface_pb2.Variable(type=INT), required=True),
            "d": interface_pb2.Parameter(
                var=interface_pb2.Variable(type=INT), default=int_value(1)
            ),
        }
    ),
    expected_outputs=variables({"y": INT}),
)


def compile_(
    template: workflow_pb2.WorkflowTemplate,
    subs: Sequence[workflow_pb2.WorkflowTemplate] = (),
    launch_plans: Mapping | None = None,
    tasks: Sequence[tasks_pb2.TaskTemplate] = TASKS,
) -> compiler_pb2.CompiledWorkflowClosure:
    lps = {id_key(lpid("lp")): LP} if launch_plans is None else launch_plans
    return compile_workflow(template, subs, tasks, lps)


def ids(id_list: compiler_pb2.ConnectionSet.IdList) -> list[str]:
    return list(id_list.ids)


def connections(compiled: compiler_pb2.CompiledWorkflow) -> tuple[dict, dict]:
    c = compiled.connections
    return (
        {k: ids(v) for k, v in c.upstream.items()},
        {k: ids(v) for k, v in c.downstream.items()},
    )


def by_id(compiled: compiler_pb2.CompiledWorkflow) -> dict[str, workflow_pb2.Node]:
    return {n.id: n for n in compiled.template.nodes}
