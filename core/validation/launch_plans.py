"""Launch-plan inputs (flyteadmin-behaviour.md §4.1 steps 7-9), pure, with flyteadmin's messages
(``manager/impl/validation/launch_plan_validator.go`` and ``validation.go``).

``check_launch_plan_inputs`` runs the three steps and returns the launch plan's *expected inputs*,
which replace ``spec.default_inputs`` in what is stored and hashed and feed the schedule checks.
flyteadmin walks Go maps in random order and so reports one of several problems at random; we
walk keys in sorted order, and (unlike flyteadmin, which stops checking a map at its first
datetime) we check every entry.
"""

from __future__ import annotations

from collections.abc import Mapping

from flyteidl.admin import launch_plan_pb2
from flyteidl.core import interface_pb2, literals_pb2, types_pb2
from google.protobuf import timestamp_pb2

from flyteadmin.core.compiler.types import castable, literal_type_of
from flyteadmin.core.errors import AdminError, invalid_argument, missing
from flyteadmin.core.validation.identifiers import proto_text

FIXED_INPUTS = "fixed_inputs"
DEFAULT_INPUTS = "default_inputs"
_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
_UNKNOWN_TYPE = (
    "got unknown literal type: [<nil>].\n"
    "Suggested solution: Please update all your Flyte deployment images to the latest version "
    "and try again"
)


def check_launch_plan_inputs(
    request: launch_plan_pb2.LaunchPlanCreateRequest,
    workflow_interface: interface_pb2.TypedInterface,
    *,
    enable_artifacts: bool = False,
) -> interface_pb2.ParameterMap:
    """Steps 7-9: fixed inputs, default inputs, both against the workflow's interface. Returns
    the expected inputs. Raises ``AdminError`` (InvalidArgument)."""
    if not request.HasField("spec"):
        raise missing("spec")
    validate_fixed_inputs(request.spec.fixed_inputs)
    validate_default_inputs(request.spec.default_inputs, enable_artifacts=enable_artifacts)
    return expected_inputs(request.spec, workflow_interface)


def validate_fixed_inputs(fixed_inputs: literals_pb2.LiteralMap) -> None:
    """Step 7: every key named, every literal holding a value, datetimes valid."""
    for name in sorted(fixed_inputs.literals):
        literal = fixed_inputs.literals[name]
        if not name:
            raise invalid_argument(f"missing key in {FIXED_INPUTS}")
        if literal.WhichOneof("value") is None:
            raise invalid_argument(f"missing valid literal in {FIXED_INPUTS} {name}")
        if _datetime_of(literal) is not None:
            validate_datetime(literal)


def validate_default_inputs(
    default_inputs: interface_pb2.ParameterMap, *, enable_artifacts: bool = False
) -> None:
    """Step 8: each parameter named, typed, with a default or required (or, with the artifacts
    feature gate on, an artifact query), its default castable to its type."""
    field = DEFAULT_INPUTS
    parameters = default_inputs.parameters
    if not enable_artifacts:
        for name in sorted(parameters):
            if parameters[name].HasField("artifact_query"):
                raise invalid_argument(f"artifact mode not enabled but query found {field} {name}")
    for name in sorted(parameters):
        parameter = parameters[name]
        if not name:
            raise invalid_argument(f"missing key in {field}")
        if not parameter.HasField("var") or not parameter.var.HasField("type"):
            raise invalid_argument(
                f"The Variable component of the Parameter {name} in {field} either is missing, "
                "or has a missing Type"
            )
        behavior = parameter.WhichOneof("behavior")
        if behavior not in ("default", "artifact_query") and not parameter.required:
            raise invalid_argument(
                f"Invalid variable {name} in {field} - variable has neither default, nor is "
                "required. One must be specified"
            )
        if behavior == "default":
            _check_default(name, parameter)


def _check_default(name: str, parameter: interface_pb2.Parameter) -> None:
    found = literal_type_of(parameter.default)
    if found is None:
        raise invalid_literal_type(name)
    declared = parameter.var.type
    if not castable(found, declared):
        raise invalid_argument(
            f"Type mismatch for Parameter {name} in {DEFAULT_INPUTS} has type "
            f"{proto_text(declared)}, expected {proto_text(found)}"
        )
    if declared.WhichOneof("type") == "simple" and declared.simple == types_pb2.DATETIME:
        validate_datetime(parameter.default)


def expected_inputs(
    spec: launch_plan_pb2.LaunchPlanSpec, workflow_interface: interface_pb2.TypedInterface
) -> interface_pb2.ParameterMap:
    """Step 9: the launch plan's inputs checked against the workflow's, and the expected inputs:
    a workflow input with a launch-plan default keeps that parameter; one neither defaulted nor
    fixed becomes a required parameter (its type and description); fixed inputs are left out."""
    variables = workflow_interface.inputs.variables
    defaults = spec.default_inputs.parameters
    fixed = spec.fixed_inputs.literals
    if not variables:
        if defaults:
            raise invalid_argument(
                f"invalid launch plan default inputs, expected none but found {len(defaults)}"
            )
        if fixed:
            raise invalid_argument(
                f"invalid launch plan fixed inputs, expected none but found {len(fixed)}"
            )
        return interface_pb2.ParameterMap()
    for name in sorted(defaults):
        _check_against_workflow(name, defaults[name].var.type, variables, "default_input")
    for name in sorted(fixed):
        found = literal_type_of(fixed[name]) if name in variables else None
        if name in variables and found is None:
            raise invalid_literal_type(name)
        _check_against_workflow(name, found, variables, "fixed_input")

    result = interface_pb2.ParameterMap()
    for name in sorted(variables):
        if name in defaults:
            result.parameters[name].CopyFrom(defaults[name])
        elif name not in fixed:
            parameter = result.parameters[name]
            parameter.var.type.CopyFrom(variables[name].type)
            parameter.var.description = variables[name].description
            parameter.required = True
    return result


def _check_against_workflow(
    name: str,
    found: types_pb2.LiteralType | None,
    variables: Mapping[str, interface_pb2.Variable],
    kind: str,
) -> None:
    if name not in variables or found is None:
        raise invalid_argument(f"unexpected {kind} {name}")
    declared = variables[name].type
    if not castable(found, declared):
        # flyteadmin prints the two types in opposite orders for the two kinds; so do we.
        first, second = (found, declared) if kind == "default_input" else (declared, found)
        raise invalid_argument(
            f"invalid {kind} wrong type {name}, expected {proto_text(first)}, "
            f"got {proto_text(second)} instead"
        )


def invalid_literal_type(name: str) -> AdminError:
    return invalid_argument(
        f"Failed to validate literal type for [{name}] with err: {_UNKNOWN_TYPE}"
    )


def _datetime_of(literal: literals_pb2.Literal) -> timestamp_pb2.Timestamp | None:
    if literal.WhichOneof("value") != "scalar":
        return None
    scalar = literal.scalar
    if scalar.WhichOneof("value") != "primitive" or scalar.primitive.WhichOneof("value") != (
        "datetime"
    ):
        return None
    return scalar.primitive.datetime


def validate_datetime(literal: literals_pb2.Literal) -> None:
    """Go's ``Timestamp.CheckValid``, with its messages."""
    timestamp = _datetime_of(literal)
    if timestamp is None:
        raise invalid_argument("proto: invalid nil Timestamp")
    text = proto_text(timestamp)
    if timestamp.seconds < _MIN_SECONDS:
        raise invalid_argument(f"proto: timestamp ({text}) before 0001-01-01")
    if timestamp.seconds > _MAX_SECONDS:
        raise invalid_argument(f"proto: timestamp ({text}) after 9999-12-31")
    if not 0 <= timestamp.nanos < 1_000_000_000:
        raise invalid_argument(f"proto: timestamp ({text}) has out-of-range nanos")
