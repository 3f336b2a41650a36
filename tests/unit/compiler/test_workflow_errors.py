"""compile_workflow on hand-built templates: every error code the compiler raises, with the node
id it names, and propeller's wording."""

from __future__ import annotations

import pytest
from flyteidl.core import (
    condition_pb2,
    literals_pb2,
    tasks_pb2,
    workflow_pb2,
)

from flyteadmin.core.compiler import (
    CompileErrors,
    LaunchPlanInterface,
    id_key,
)
from tests.unit.compiler.builders import (
    INT,
    STR,
    bindings,
    collection,
    comparison,
    int_value,
    lpid,
    mapping,
    node,
    promise,
    scalar,
    str_value,
    task,
    task_node,
    variables,
    wid,
    workflow,
)
from tests.unit.compiler.catalog import GT, SUB, TASKS, compile_


def errors_of(compile_call) -> list[tuple[str, str]]:
    with pytest.raises(CompileErrors) as caught:
        compile_call()
    return [(str(e.code), e.node_id) for e in caught.value.errors]


def wf(*nodes: workflow_pb2.Node, **kwargs) -> workflow_pb2.WorkflowTemplate:
    return workflow("wf", nodes, **kwargs)


def bad_branch(**if_else: object) -> workflow_pb2.Node:
    return node(
        "b",
        {".a": promise("", "a")},
        branch_node=workflow_pb2.BranchNode(if_else=workflow_pb2.IfElseBlock(**if_else)),
    )  # type: ignore[arg-type]


DEFAULT_CONDITION = comparison(".a", GT, 1)


def case(
    then: workflow_pb2.Node | None,
    condition: condition_pb2.BooleanExpression | None = DEFAULT_CONDITION,
) -> workflow_pb2.IfBlock:
    block = workflow_pb2.IfBlock(condition=condition)
    if then is not None:
        block.then_node.CopyFrom(then)
    return block


UNTYPED = task("untyped", {"x": INT})
UNTYPED.interface.inputs.variables["x"].ClearField("type")
BLOB_NO_META = literals_pb2.Literal(
    scalar=literals_pb2.Scalar(blob=literals_pb2.Blob(uri="s3://x"))
)
SIGNAL_NO_TYPE = workflow_pb2.GateNode(
    signal=workflow_pb2.SignalCondition(output_variable_name="o")
)
SIGNAL_NO_NAME = workflow_pb2.GateNode(signal=workflow_pb2.SignalCondition(type=STR))
ALIASED = task_node("n0", "produce")
ALIASED.output_aliases.add(var="o", alias="x")
ALIASED.output_aliases.add(var="o", alias="y")
DANGLING_ALIAS = task_node("n0", "produce")
DANGLING_ALIAS.output_aliases.add(var="nope", alias="z")
A = {"a": INT}
# A branch whose interface fails gets no execution edges (only the upstream ones of its own
# bindings), so it is unreachable too, and its condition's variable is unknown.
BROKEN_BRANCH = [("UnreachableNodes", "start-node"), ("ValueRequired", "b")]
CYCLE = workflow(
    "wf",
    [
        task_node("n0", "produce"),
        task_node("n1", "inc", {"x": promise("n0", "o")}, upstream=["n2"]),
        task_node("n2", "inc", {"x": promise("n1", "o")}),
    ],
)

ERRORS = [
    (
        "no nodes",
        lambda: compile_(wf()),
        [("NoNodesFound", 'resource_type:WORKFLOW project:"p" domain:"d" name:"wf" version:"v1"')],
    ),
    (
        "duplicate node id",
        lambda: compile_(wf(task_node("n0", "noop"), task_node("n0", "produce"))),
        [("DuplicateId", "n0")],
    ),
    (
        "node named start-node",
        lambda: compile_(wf(task_node("start-node", "noop"))),
        [("DuplicateId", "start-node")],
    ),
    (
        "duplicate sub-workflow",
        lambda: compile_(wf(task_node("n0", "noop")), [SUB, SUB]),
        [("DuplicateId", 'resource_type:WORKFLOW project:"p" domain:"d" name:"sub" version:"v1"')],
    ),
    (
        "sub-workflow without id",
        lambda: compile_(wf(task_node("n0", "noop")), [workflow_pb2.WorkflowTemplate()]),
        [("ValueRequired", "<sub_workflow>")],
    ),
    (
        "task without id",
        lambda: compile_(wf(task_node("n0", "noop")), tasks=[tasks_pb2.TaskTemplate()]),
        [("ValueRequired", "task")],
    ),
    (
        "missing task",
        lambda: compile_(wf(task_node("n0", "nope"))),
        [("TaskReferenceNotFound", "start-node")],
    ),
    (
        "missing launch plan",
        lambda: compile_(
            wf(node("n0", workflow_node=workflow_pb2.WorkflowNode(launchplan_ref=lpid("nope"))))
        ),
        [("WorkflowReferenceNotFound", "start-node")],
    ),
    (
        "missing sub-workflow",
        lambda: compile_(
            wf(node("n0", workflow_node=workflow_pb2.WorkflowNode(sub_workflow_ref=wid("nope"))))
        ),
        [("WorkflowReferenceNotFound", "n0")],
    ),
    (
        "workflow node without ref",
        lambda: compile_(wf(node("n0", workflow_node=workflow_pb2.WorkflowNode()))),
        [("WorkflowReferenceNotFound", "n0")],
    ),
    (
        "task node without ref",
        lambda: compile_(wf(node("n0", task_node=workflow_pb2.TaskNode()))),
        [("ValueRequired", "n0")],
    ),
    ("node without target", lambda: compile_(wf(node("n0"))), [("ValueRequired", "n0")]),
    ("node without id", lambda: compile_(wf(task_node("", "noop"))), [("ValueRequired", "<node>")]),
    (
        "variable without type",
        lambda: compile_(
            wf(task_node("n0", "untyped", {"x": scalar(int_value(1))})), tasks=[*TASKS, UNTYPED]
        ),
        [("ValueRequired", "n0")],
    ),
    (
        "launch plan without expected inputs",
        lambda: compile_(
            wf(node("n0", workflow_node=workflow_pb2.WorkflowNode(launchplan_ref=lpid("lp")))),
            launch_plans={id_key(lpid("lp")): LaunchPlanInterface(None, variables({}))},
        ),
        [("ValueRequired", "n0")],
    ),
    (
        "array node without sub-node",
        lambda: compile_(wf(node("n0", array_node=workflow_pb2.ArrayNode()))),
        [("ValueRequired", "n0")],
    ),
    (
        "binding without value",
        lambda: compile_(wf(_unset_binding())),
        [("ParameterNotBound", "n0"), ("ValueRequired", "n0")],
    ),
    (
        "unknown input",
        lambda: compile_(
            wf(task_node("n0", "inc", {"x": scalar(int_value(1)), "zz": scalar(int_value(1))}))
        ),
        [("VariableNameNotFound", "n0")],
    ),
    (
        "unknown upstream output",
        lambda: compile_(
            wf(task_node("n0", "produce"), task_node("n1", "inc", {"x": promise("n0", "nope")}))
        ),
        [("ParameterNotBound", "n1"), ("VariableNameNotFound", "n0")],
    ),
    (
        "unknown upstream node",
        lambda: compile_(wf(task_node("n1", "inc", {"x": promise("ghost", "o")}))),
        [("NodeReferenceNotFound", "ghost"), ("ParameterNotBound", "n1")],
    ),
    (
        "input not bound",
        lambda: compile_(wf(task_node("n0", "inc"))),
        [("ParameterNotBound", "n0")],
    ),
    (
        "workflow output not bound",
        lambda: compile_(wf(task_node("n0", "noop"), outputs={"o": INT})),
        [("ParameterNotBound", "end-node")],
    ),
    (
        "workflow output of wrong type",
        lambda: compile_(
            wf(
                task_node("n0", "to_str", {"x": scalar(int_value(1))}),
                outputs={"o": INT},
                output_bindings={"o": promise("n0", "o")},
            )
        ),
        [("MismatchingTypes", "end-node")],
    ),
    ("bound twice", lambda: compile_(wf(_bound_twice())), [("ParameterBoundMoreThanOnce", "n0")]),
    (
        "promise type mismatch",
        lambda: compile_(
            wf(
                task_node("n0", "to_str", {"x": scalar(int_value(1))}),
                task_node("n1", "inc", {"x": promise("n0", "o")}),
            )
        ),
        [("MismatchingTypes", "n1")],
    ),
    (
        "scalar type mismatch",
        lambda: compile_(wf(task_node("n0", "inc", {"x": scalar(str_value("1"))}))),
        [("MismatchingTypes", "n0")],
    ),
    (
        "collection into scalar",
        lambda: compile_(wf(task_node("n0", "inc", {"x": collection(scalar(int_value(1)))}))),
        [("MismatchingBindings", "n0")],
    ),
    (
        "map into list",
        lambda: compile_(
            wf(task_node("n0", "sum_list", {"xs": mapping({"a": scalar(int_value(1))})}))
        ),
        [("MismatchingBindings", "n0")],
    ),
    (
        "enum value not allowed",
        lambda: compile_(wf(task_node("n0", "paint", {"c": scalar(str_value("blue"))}))),
        [("IllegalEnumValue", "n0")],
    ),
    (
        "ambiguous union binding",
        lambda: compile_(wf(task_node("n0", "ambiguous", {"u": collection(scalar(int_value(1)))}))),
        [("AmbiguousBindingUnionValue", "n0")],
    ),
    (
        "incompatible union binding",
        lambda: compile_(wf(task_node("n0", "either", {"u": collection(scalar(str_value("x")))}))),
        [("IncompatibleBindingUnionValue", "n0")],
    ),
    (
        "promise variable syntax",
        lambda: compile_(
            wf(task_node("n0", "produce"), task_node("n1", "inc", {"x": promise("n0", "o.p")}))
        ),
        [("SyntaxError", "n1")],
    ),
    (
        "dataclass field missing",
        lambda: compile_(
            wf(task_node("n0", "point"), task_node("n1", "inc", {"x": promise("n0", "p", "nope")}))
        ),
        [("FieldNotFound", "n1")],
    ),
    (
        "blob without metadata",
        lambda: compile_(wf(task_node("n0", "struct_in", {"s": scalar(BLOB_NO_META)}))),
        [("UnrecognizedValue", "n0")],
    ),
    ("cycle", lambda: compile_(CYCLE), [("CycleDetected", "start-node")]),
    (
        "cycle out of reach",
        lambda: compile_(
            wf(
                task_node("n1", "inc", {"x": promise("n2", "o")}),
                task_node("n2", "inc", {"x": promise("n1", "o")}),
            )
        ),
        [("UnreachableNodes", "start-node")],
    ),
    (
        "unreachable",
        lambda: compile_(wf(task_node("n0", "noop", upstream=["ghost"]))),
        [("UnreachableNodes", "start-node")],
    ),
    (
        "branch without case",
        lambda: compile_(wf(bad_branch(else_node=task_node("e", "noop")), inputs=A)),
        [("BranchNodeHasNoCondition", "b"), ("ValueRequired", "b")],
    ),
    (
        "branch case without condition",
        lambda: compile_(
            wf(
                bad_branch(
                    case=case(task_node("c", "noop"), condition=None),
                    else_node=task_node("e", "noop"),
                ),
                inputs=A,
            )
        ),
        [("BranchNodeHasNoCondition", "b")],
    ),
    (
        "branch without default",
        lambda: compile_(wf(bad_branch(case=case(task_node("c", "noop"))), inputs=A)),
        [("BranchNodeHasNoDefault", "b")],
    ),
    (
        "branch other case without node",
        lambda: compile_(
            wf(
                bad_branch(
                    case=case(task_node("c", "noop")),
                    other=[case(None)],
                    else_node=task_node("e", "noop"),
                ),
                inputs=A,
            )
        ),
        [("BranchNodeIdNotFound", "b"), *BROKEN_BRANCH, ("ValueRequired", "b")],
    ),
    (
        "branch outputs differ",
        lambda: compile_(
            wf(
                bad_branch(
                    case=case(task_node("c", "produce")),
                    else_node=task_node("e", "to_str", {"x": scalar(int_value(1))}),
                ),
                inputs=A,
            )
        ),
        [("MismatchingTypes", "b-e"), *BROKEN_BRANCH],
    ),
    (
        "condition types differ",
        lambda: compile_(
            wf(
                bad_branch(
                    case=case(task_node("c", "noop"), condition=_str_comparison()),
                    else_node=task_node("e", "noop"),
                ),
                inputs=A,
            )
        ),
        [("MismatchingTypes", "b")],
    ),
    (
        "condition on unbound variable",
        lambda: compile_(
            wf(
                bad_branch(
                    case=case(task_node("c", "noop"), condition=comparison(".zz", GT, 1)),
                    else_node=task_node("e", "noop"),
                ),
                inputs=A,
            )
        ),
        [("VariableNameNotFound", "b")],
    ),
    (
        "gate without condition",
        lambda: compile_(wf(node("n0", gate_node=workflow_pb2.GateNode()))),
        [("NoConditionFound", "n0")],
    ),
    (
        "signal without type",
        lambda: compile_(wf(node("n0", gate_node=SIGNAL_NO_TYPE))),
        [("ValueRequired", "n0")],
    ),
    (
        "signal without output name",
        lambda: compile_(wf(node("n0", gate_node=SIGNAL_NO_NAME))),
        [("ValueRequired", "n0")],
    ),
    ("duplicate alias", lambda: compile_(wf(ALIASED)), [("DuplicateAlias", "n0")]),
    (
        "alias of a missing output",
        lambda: compile_(wf(DANGLING_ALIAS)),
        [("ParameterNotBound", "n0")],
    ),
    (
        "sub-workflow errors surface",
        lambda: compile_(
            wf(
                node(
                    "n0",
                    {"x": scalar(int_value(1))},
                    workflow_node=workflow_pb2.WorkflowNode(sub_workflow_ref=wid("bad")),
                )
            ),
            [workflow("bad", [task_node("b0", "inc")], {"x": INT}, {})],
        ),
        [("ParameterNotBound", "b0")],
    ),
    (
        "sub-workflow running itself",
        lambda: compile_(
            wf(node("n0", workflow_node=workflow_pb2.WorkflowNode(sub_workflow_ref=wid("loop")))),
            [
                workflow(
                    "loop",
                    [
                        node(
                            "l0",
                            workflow_node=workflow_pb2.WorkflowNode(sub_workflow_ref=wid("loop")),
                        )
                    ],
                )
            ],
        ),
        [("CycleDetected", "l0")],
    ),
]


def _unset_binding() -> workflow_pb2.Node:
    result = task_node("n0", "inc")
    result.inputs.add(var="x")
    return result


def _bound_twice() -> workflow_pb2.Node:
    result = task_node("n0", "inc", {"x": scalar(int_value(1))})
    result.inputs.extend(bindings({"x": scalar(int_value(2))}))
    return result


def _str_comparison() -> condition_pb2.BooleanExpression:
    expression = comparison(".a", GT, 0)
    expression.comparison.right_value.primitive.string_value = "0"
    return expression


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_compile_errors(call, expected: list[tuple[str, str]]) -> None:
    assert errors_of(call) == expected


def test_every_error_is_collected_and_printed_like_propeller() -> None:
    template = wf(
        task_node("n0", "inc"),
        task_node("n1", "inc", {"x": scalar(str_value("1"))}),
        outputs={"o": INT},
    )
    with pytest.raises(CompileErrors) as caught:
        compile_(template)
    assert str(caught.value) == (
        "Collected Errors: 3\n"
        "\tError 0: Code: MismatchingTypes, Node Id: n1, Description: Variable [x] (type "
        "[simple:STRING]) doesn't match expected type [simple:INTEGER].\n"
        "\tError 1: Code: ParameterNotBound, Node Id: end-node, Description: Parameter not bound "
        "[o].\n"
        "\tError 2: Code: ParameterNotBound, Node Id: n0, Description: Parameter not bound [x].\n"
    )


MESSAGES = [
    (
        "promise mismatch names both variables",
        wf(
            task_node("n0", "to_str", {"x": scalar(int_value(1))}),
            task_node("n1", "inc", {"x": promise("n0", "o")}),
        ),
        "The output variable 'n0.o' has type [simple:STRING], but it's assigned to the input "
        "variable 'n1.x' which has type type [simple:INTEGER].",
    ),
    (
        "missing task",
        wf(task_node("n0", "nope")),
        'Referenced Task [resource_type:TASK project:"p" domain:"d" name:"nope" version:"v1"] '
        "not found.",
    ),
    (
        "cycle path",
        CYCLE,
        "A cycle has been detected while traversing the Workflow [start-node>n0>n1>n2>n1].",
    ),
    (
        "unreachable",
        wf(task_node("n1", "noop", upstream=["ghost"]), task_node("n0", "noop", upstream=["n1"])),
        "The Workflow contain unreachable nodes [n0,n1].",
    ),
    (
        "enum",
        wf(task_node("n0", "paint", {"c": scalar(str_value("blue"))})),
        "Input [c] on node [n0] is an Enum and expects value to be one of [[red green]].  "
        "Received [blue]",
    ),
]


@pytest.mark.parametrize(
    ("template", "message"), [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES]
)
def test_error_messages(template: workflow_pb2.WorkflowTemplate, message: str) -> None:
    with pytest.raises(CompileErrors) as caught:
        compile_(template)
    assert [e.message for e in caught.value.errors] == [message]
