"""Launch-plan inputs (§4.1 steps 7-9): every rule with flyteadmin's message, and the expected
inputs that replace ``spec.default_inputs``."""

from __future__ import annotations

import pytest
from flyteidl.admin import launch_plan_pb2
from flyteidl.core import artifact_id_pb2, interface_pb2, literals_pb2, types_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.validation.launch_plans import (
    check_launch_plan_inputs,
    expected_inputs,
    validate_datetime,
)

INT = types_pb2.LiteralType(simple=types_pb2.INTEGER)
STR = types_pb2.LiteralType(simple=types_pb2.STRING)
DATETIME = types_pb2.LiteralType(simple=types_pb2.DATETIME)
OPTIONAL_INT = types_pb2.LiteralType(
    union_type=types_pb2.UnionType(variants=[INT, types_pb2.LiteralType(simple=types_pb2.NONE)])
)
UNKNOWN_TYPE = (
    "got unknown literal type: [<nil>].\nSuggested solution: Please update all your Flyte "
    "deployment images to the latest version and try again"
)


def integer(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def text(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value))
    )


def moment(seconds: int, nanos: int = 0) -> literals_pb2.Literal:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(datetime=stamp))
    )


def param(
    literal_type: types_pb2.LiteralType | None = INT,
    default: literals_pb2.Literal | None = None,
    required: bool = False,
    description: str = "",
) -> interface_pb2.Parameter:
    result = interface_pb2.Parameter()
    if literal_type is not None:
        result.var.type.CopyFrom(literal_type)
        result.var.description = description
    if default is not None:
        result.default.CopyFrom(default)
    if required:
        result.required = True
    return result


def workflow_interface(**inputs: types_pb2.LiteralType) -> interface_pb2.TypedInterface:
    return interface_pb2.TypedInterface(
        inputs=interface_pb2.VariableMap(
            variables={
                name: interface_pb2.Variable(type=t, description=f"{name} doc")
                for name, t in inputs.items()
            }
        ),
        outputs=interface_pb2.VariableMap(variables={"o0": interface_pb2.Variable(type=INT)}),
    )


def request(
    defaults: dict[str, interface_pb2.Parameter] | None = None,
    fixed: dict[str, literals_pb2.Literal] | None = None,
) -> launch_plan_pb2.LaunchPlanCreateRequest:
    spec = launch_plan_pb2.LaunchPlanSpec(
        default_inputs=interface_pb2.ParameterMap(parameters=defaults or {}),
        fixed_inputs=literals_pb2.LiteralMap(literals=fixed or {}),
    )
    return launch_plan_pb2.LaunchPlanCreateRequest(spec=spec)


WF = workflow_interface(a=INT, b=STR, when=DATETIME, maybe=OPTIONAL_INT)
QUERY = param(INT)
QUERY.artifact_query.CopyFrom(artifact_id_pb2.ArtifactQuery(uri="flyte://a"))
NO_VAR = interface_pb2.Parameter(default=integer(1))
UNSET_DEFAULT = param(INT, default=literals_pb2.Literal())

FAILURES = [
    # step 7: fixed inputs
    ("fixed: empty key", request(fixed={"": integer(1)}), WF, "missing key in fixed_inputs"),
    (
        "fixed: no value",
        request(fixed={"a": literals_pb2.Literal()}),
        WF,
        "missing valid literal in fixed_inputs a",
    ),
    (
        "fixed: datetime before year 1",
        request(fixed={"when": moment(-62135596801)}),
        WF,
        "proto: timestamp (seconds:-62135596801) before 0001-01-01",
    ),
    (
        "fixed: datetime after 9999",
        request(fixed={"when": moment(253402300800)}),
        WF,
        "proto: timestamp (seconds:253402300800) after 9999-12-31",
    ),
    (
        "fixed: datetime nanos",
        request(fixed={"when": moment(0, -1)}),
        WF,
        "proto: timestamp (nanos:-1) has out-of-range nanos",
    ),
    # step 8: default inputs
    (
        "default: empty key",
        request({"": param(INT, required=True)}),
        WF,
        "missing key in default_inputs",
    ),
    (
        "default: no var",
        request({"a": NO_VAR}),
        WF,
        "The Variable component of the Parameter a in default_inputs either is missing, or has a "
        "missing Type",
    ),
    (
        "default: var without type",
        request({"a": param(None, default=integer(1))}),
        WF,
        "The Variable component of the Parameter a in default_inputs either is missing, or has a "
        "missing Type",
    ),
    (
        "default: neither default nor required",
        request({"a": param(INT)}),
        WF,
        "Invalid variable a in default_inputs - variable has neither default, nor is required. "
        "One must be specified",
    ),
    (
        "default: artifact query without the feature gate",
        request({"a": QUERY}),
        WF,
        "artifact mode not enabled but query found default_inputs a",
    ),
    (
        "default: unknown literal type",
        request({"a": UNSET_DEFAULT}),
        WF,
        f"Failed to validate literal type for [a] with err: {UNKNOWN_TYPE}",
    ),
    (
        "default: not castable",
        request({"a": param(INT, default=text("x"))}),
        WF,
        "Type mismatch for Parameter a in default_inputs has type simple:INTEGER, expected "
        "simple:STRING",
    ),
    (
        "default: invalid datetime",
        request({"when": param(DATETIME, default=moment(0, 1_000_000_000))}),
        WF,
        "proto: timestamp (nanos:1000000000) has out-of-range nanos",
    ),
    # step 9: against the workflow interface
    (
        "workflow without inputs: defaults",
        request({"a": param(INT, required=True)}),
        workflow_interface(),
        "invalid launch plan default inputs, expected none but found 1",
    ),
    (
        "workflow without inputs: fixed",
        request(fixed={"a": integer(1), "b": integer(2)}),
        workflow_interface(),
        "invalid launch plan fixed inputs, expected none but found 2",
    ),
    (
        "unexpected default",
        request({"zz": param(INT, required=True)}),
        WF,
        "unexpected default_input zz",
    ),
    (
        "default of the wrong type",
        request({"b": param(INT, default=integer(1))}),
        WF,
        "invalid default_input wrong type b, expected simple:INTEGER, got simple:STRING instead",
    ),
    ("unexpected fixed", request(fixed={"zz": integer(1)}), WF, "unexpected fixed_input zz"),
    (
        "fixed of the wrong type",
        request(fixed={"b": integer(1)}),
        WF,
        "invalid fixed_input wrong type b, expected simple:STRING, got simple:INTEGER instead",
    ),
    (
        "fixed of unknown type",
        request(
            fixed={
                "a": literals_pb2.Literal(
                    scalar=literals_pb2.Scalar(blob=literals_pb2.Blob(uri="s3://x"))
                )
            }
        ),
        WF,
        f"Failed to validate literal type for [a] with err: {UNKNOWN_TYPE}",
    ),
]


@pytest.mark.parametrize(
    ("req", "interface", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
def test_rejected(
    req: launch_plan_pb2.LaunchPlanCreateRequest,
    interface: interface_pb2.TypedInterface,
    message: str,
) -> None:
    with pytest.raises(AdminError) as caught:
        check_launch_plan_inputs(req, interface)
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert caught.value.message == message


def test_missing_spec() -> None:
    with pytest.raises(AdminError, match="^missing spec$"):
        check_launch_plan_inputs(launch_plan_pb2.LaunchPlanCreateRequest(), WF)


def test_artifact_query_allowed_behind_the_feature_gate() -> None:
    expected = check_launch_plan_inputs(request({"a": QUERY}), WF, enable_artifacts=True)
    assert expected.parameters["a"] == QUERY


def required(literal_type: types_pb2.LiteralType, description: str) -> interface_pb2.Parameter:
    return param(literal_type, required=True, description=description)


EXPECTED = [
    (
        "nothing given: every input required, with its type and description",
        request(),
        WF,
        {
            "a": required(INT, "a doc"),
            "b": required(STR, "b doc"),
            "when": required(DATETIME, "when doc"),
            "maybe": required(OPTIONAL_INT, "maybe doc"),
        },
    ),
    (
        "defaults kept as given, fixed inputs left out",
        request(
            {
                "a": param(INT, default=integer(3), description="mine"),
                "b": param(STR, required=True),
            },
            fixed={"when": moment(5), "maybe": integer(1)},
        ),
        WF,
        {"a": param(INT, default=integer(3), description="mine"), "b": param(STR, required=True)},
    ),
    ("no inputs at all", request(), workflow_interface(), {}),
    (
        "valid datetimes and castable values pass",
        request(
            {"when": param(DATETIME, default=moment(0))},
            fixed={"maybe": integer(2), "a": integer(1), "b": text("x")},
        ),
        WF,
        {"when": param(DATETIME, default=moment(0))},
    ),
]


@pytest.mark.parametrize(
    ("req", "interface", "expected"), [e[1:] for e in EXPECTED], ids=[e[0] for e in EXPECTED]
)
def test_expected_inputs(
    req: launch_plan_pb2.LaunchPlanCreateRequest,
    interface: interface_pb2.TypedInterface,
    expected: dict[str, interface_pb2.Parameter],
) -> None:
    result = check_launch_plan_inputs(req, interface)
    assert dict(result.parameters) == expected
    assert expected_inputs(req.spec, interface) == result


def test_expected_inputs_do_not_alias_the_request() -> None:
    req = request({"a": param(INT, default=integer(3))})
    result = expected_inputs(req.spec, WF)
    result.parameters["a"].default.scalar.primitive.integer = 9
    assert req.spec.default_inputs.parameters["a"].default.scalar.primitive.integer == 3


def test_validate_datetime_of_a_non_datetime() -> None:
    with pytest.raises(AdminError, match="^proto: invalid nil Timestamp$"):
        validate_datetime(integer(1))
