"""Execution inputs (§5.1 step 10): user inputs merged with the launch plan's defaults and
fixed inputs, each checked against the expected type."""

from __future__ import annotations

from flyteidl.core import interface_pb2, literals_pb2

from flyteadmin.core.compiler import castable, literal_type_of, literal_type_text
from flyteadmin.core.errors import invalid_argument


def merge_inputs(
    user: literals_pb2.LiteralMap,
    expected: interface_pb2.ParameterMap,
    fixed: literals_pb2.LiteralMap,
) -> literals_pb2.LiteralMap:
    merged = literals_pb2.LiteralMap()
    for name in sorted(user.literals):
        if name in fixed.literals:
            # flyteadmin reported "invalid input" here, because fixed inputs are not expected
            # (§15 #9); the real reason is clearer.
            raise invalid_argument(f"fixed_inputs {name} cannot be overridden")
        if name not in expected.parameters:
            raise invalid_argument(f"invalid input {name}")
    for name in sorted(expected.parameters):
        parameter = expected.parameters[name]
        if name in user.literals:
            literal = user.literals[name]
            actual = literal_type_of(literal)
            if actual is None or not castable(actual, parameter.var.type):
                raise invalid_argument(
                    f"invalid {name} input wrong type. Expected "
                    f"{literal_type_text(parameter.var.type)}, but got "
                    f"{literal_type_text(actual) if actual is not None else 'an unknown type'}"
                )
            merged.literals[name].CopyFrom(literal)
        elif parameter.required:
            raise invalid_argument(f"expected_inputs {name} missing")
        elif parameter.HasField("default"):
            merged.literals[name].CopyFrom(parameter.default)
    for name in sorted(fixed.literals):
        merged.literals[name].CopyFrom(fixed.literals[name])
    return merged
