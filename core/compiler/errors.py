"""Compile errors, with flytepropeller's codes and wording (``compiler/errors/compiler_errors.go``).

A compile run collects every error instead of stopping at the first. ``Collector`` mirrors
propeller's scoped error sets: a child scope reports its own count (so a step can ask "did
*this* step fail?") and forwards every error to the root. ``CompileErrors`` is what escapes:
the unique errors, sorted by code and then text, printed as propeller prints them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from flyteadmin.core.validation.identifiers import proto_text


class ErrorCode(enum.StrEnum):
    """The codes as propeller spells them (some differ from their Go constant names)."""

    CYCLE_DETECTED = "CycleDetected"
    BRANCH_NODE_ID_NOT_FOUND = "BranchNodeIdNotFound"
    BRANCH_NODE_HAS_NO_CONDITION = "BranchNodeHasNoCondition"
    BRANCH_NODE_HAS_NO_DEFAULT = "BranchNodeHasNoDefault"
    VALUE_REQUIRED = "ValueRequired"
    INVALID_VALUE = "InvalidValue"
    NODE_REFERENCE_NOT_FOUND = "NodeReferenceNotFound"
    TASK_REFERENCE_NOT_FOUND = "TaskReferenceNotFound"
    WORKFLOW_REFERENCE_NOT_FOUND = "WorkflowReferenceNotFound"
    VARIABLE_NAME_NOT_FOUND = "VariableNameNotFound"
    DUPLICATE_ALIAS = "DuplicateAlias"
    DUPLICATE_NODE_ID = "DuplicateId"
    MISMATCHING_TYPES = "MismatchingTypes"
    MISMATCHING_BINDINGS = "MismatchingBindings"
    MISMATCHING_INTERFACES = "MismatchingInterfaces"
    INCONSISTENT_TYPES = "InconsistentTypes"
    PARAMETER_BOUND_MORE_THAN_ONCE = "ParameterBoundMoreThanOnce"
    PARAMETER_NOT_BOUND = "ParameterNotBound"
    NO_ENTRY_NODE_FOUND = "NoEntryNodeFound"
    UNREACHABLE_NODES = "UnreachableNodes"
    UNRECOGNIZED_VALUE = "UnrecognizedValue"
    WORKFLOW_BUILD_ERROR = "WorkflowBuildError"
    VALUE_COLLISION = "ValueCollision"
    SYNTAX_ERROR = "SyntaxError"
    NO_NODES_FOUND = "NoNodesFound"
    ILLEGAL_ENUM_VALUE = "IllegalEnumValue"
    AMBIGUOUS_BINDING_UNION_VALUE = "AmbiguousBindingUnionValue"
    INCOMPATIBLE_BINDING_UNION_VALUE = "IncompatibleBindingUnionValue"
    NO_CONDITION_FOUND = "NoConditionFound"
    FIELD_NOT_FOUND = "FieldNotFound"
    INVALID_LITERAL_TYPE = "InvalidLiteralType"


@dataclass(frozen=True)
class CompileError:
    code: ErrorCode
    node_id: str
    message: str

    def __str__(self) -> str:
        return f"Code: {self.code}, Node Id: {self.node_id}, Description: {self.message}"


class CompileErrors(Exception):
    """Every unique error of one compile run; ``str()`` is propeller's "Collected Errors" text."""

    def __init__(self, errors: Iterable[CompileError]) -> None:
        unique = set(errors)
        self.errors: tuple[CompileError, ...] = tuple(
            sorted(unique, key=lambda e: (str(e.code), str(e)))
        )
        super().__init__(self._text())

    @property
    def codes(self) -> list[str]:
        return [str(e.code) for e in self.errors]

    @classmethod
    def task_not_found(cls, identifier: Message) -> CompileErrors:
        """What the compiler reports for a required task the caller could not load."""
        return cls([task_reference_not_found("start-node", proto_text(identifier))])

    @classmethod
    def launch_plan_not_found(cls, identifier: Message) -> CompileErrors:
        """What the compiler reports for a required launch plan the caller could not load."""
        return cls([workflow_reference_not_found("start-node", proto_text(identifier))])

    def _text(self) -> str:
        lines = [f"Collected Errors: {len(self.errors)}\n"]
        lines += [f"\tError {i}: {error}\n" for i, error in enumerate(self.errors)]
        return "".join(lines)

    def __str__(self) -> str:
        return self._text()


class Collector:
    """A scope of collected errors: counts its own, forwards all to the root."""

    def __init__(self, parent: Collector | None = None) -> None:
        self._parent = parent
        self._errors: list[CompileError] = []
        self.count = 0

    def add(self, error: CompileError) -> None:
        self.count += 1
        if self._parent is not None:
            self._parent.add(error)
        else:
            self._errors.append(error)

    def scope(self) -> Collector:
        return Collector(self)

    @property
    def ok(self) -> bool:
        return self.count == 0

    def raise_if_any(self) -> None:
        if self._parent is not None:
            raise ValueError("only the root scope holds the errors")
        if self._errors:
            raise CompileErrors(self._errors)


# Constructors, one per propeller constructor; the messages are propeller's, word for word.


def _e(code: ErrorCode, node_id: str, message: str) -> CompileError:
    return CompileError(code, node_id, message)


def branch_node_not_specified(node_id: str) -> CompileError:
    return _e(ErrorCode.BRANCH_NODE_ID_NOT_FOUND, node_id, "BranchNode not assigned")


def branch_node_has_no_condition(node_id: str) -> CompileError:
    return _e(
        ErrorCode.BRANCH_NODE_HAS_NO_CONDITION,
        node_id,
        "One of the branches on the node doesn't have a condition.",
    )


def branch_node_has_no_default(node_id: str) -> CompileError:
    return _e(
        ErrorCode.BRANCH_NODE_HAS_NO_DEFAULT,
        node_id,
        "Branch Node must have either the else case set or a default error.",
    )


def value_required(node_id: str, param: str) -> CompileError:
    return _e(ErrorCode.VALUE_REQUIRED, node_id, f"Value required [{param}].")


def invalid_value(node_id: str, param: str) -> CompileError:
    return _e(ErrorCode.INVALID_VALUE, node_id, f"Invalid value [{param}].")


def parameter_not_bound(node_id: str, param: str) -> CompileError:
    return _e(ErrorCode.PARAMETER_NOT_BOUND, node_id, f"Parameter not bound [{param}].")


def node_reference_not_found(node_id: str, reference: str) -> CompileError:
    return _e(
        ErrorCode.NODE_REFERENCE_NOT_FOUND, node_id, f"Referenced node [{reference}] not found."
    )


def workflow_reference_not_found(node_id: str, reference: str) -> CompileError:
    return _e(
        ErrorCode.WORKFLOW_REFERENCE_NOT_FOUND,
        node_id,
        f"Referenced Workflow [{reference}] not found.",
    )


def task_reference_not_found(node_id: str, reference: str) -> CompileError:
    return _e(
        ErrorCode.TASK_REFERENCE_NOT_FOUND, node_id, f"Referenced Task [{reference}] not found."
    )


def variable_name_not_found(node_id: str, reference: str, variable: str) -> CompileError:
    return _e(
        ErrorCode.VARIABLE_NAME_NOT_FOUND,
        node_id,
        f"Variable [{variable}] not found on node [{reference}].",
    )


def parameter_bound_more_than_once(node_id: str, param: str) -> CompileError:
    message = f"Input [{param}] is bound more than once."
    return _e(ErrorCode.PARAMETER_BOUND_MORE_THAN_ONCE, node_id, message)


def duplicate_alias(node_id: str, alias: str) -> CompileError:
    return _e(
        ErrorCode.DUPLICATE_ALIAS,
        node_id,
        f"Duplicate alias [{alias}] found. An output alias can only be used once in the Workflow.",
    )


def duplicate_id(node_id: str) -> CompileError:
    return _e(ErrorCode.DUPLICATE_NODE_ID, node_id, "Trying to insert two nodes with the same id.")


def mismatching_types(node_id: str, variable: str, from_type: str, to_type: str) -> CompileError:
    return _e(
        ErrorCode.MISMATCHING_TYPES,
        node_id,
        f"Variable [{variable}] (type [{from_type}]) doesn't match expected type [{to_type}].",
    )


def mismatching_variables(
    node_id: str, from_var: str, from_type: str, to_var: str, to_type: str
) -> CompileError:
    return _e(
        ErrorCode.MISMATCHING_TYPES,
        node_id,
        f"The output variable '{from_var}' has type [{from_type}], but it's assigned to the input "
        f"variable '{to_var}' which has type type [{to_type}].",
    )


def mismatching_bindings(node_id: str, param: str, expected: str, received: str) -> CompileError:
    return _e(
        ErrorCode.MISMATCHING_BINDINGS,
        node_id,
        f"Input [{param}] on node [{node_id}] expects bindings of type [{expected}].  "
        f"Received [{received}]",
    )


def field_not_found(node_id: str, variable: str, type_text: str, key: str) -> CompileError:
    return _e(
        ErrorCode.FIELD_NOT_FOUND,
        node_id,
        f"Variable [{variable}] (type [{type_text}]) doesn't have field [{key}].",
    )


def illegal_enum_value(
    node_id: str, param: str, received: str, expected: Sequence[str]
) -> CompileError:
    values = "[" + " ".join(expected) + "]"  # Go's %v of a []string
    return _e(
        ErrorCode.ILLEGAL_ENUM_VALUE,
        node_id,
        f"Input [{param}] on node [{node_id}] is an Enum and expects value to be one of "
        f"[{values}].  Received [{received}]",
    )


def cycle_detected(node_id: str, cycle: str) -> CompileError:
    return _e(
        ErrorCode.CYCLE_DETECTED,
        node_id,
        f"A cycle has been detected while traversing the Workflow [{cycle}].",
    )


def unreachable_nodes(node_id: str, nodes: str) -> CompileError:
    return _e(
        ErrorCode.UNREACHABLE_NODES, node_id, f"The Workflow contain unreachable nodes [{nodes}]."
    )


def unrecognized_value(node_id: str, value: str) -> CompileError:
    return _e(ErrorCode.UNRECOGNIZED_VALUE, node_id, f"Unrecognized value [{value}].")


def syntax_error(node_id: str, element: str) -> CompileError:
    return _e(ErrorCode.SYNTAX_ERROR, node_id, f"Failed to parse element [{element}].")


def no_nodes_found(graph_id: str) -> CompileError:
    return _e(ErrorCode.NO_NODES_FOUND, graph_id, f"Can't find any nodes in workflow [{graph_id}].")


def ambiguous_binding_union_value(
    node_id: str, param: str, expected: str, binding: str, match1: str, match2: str
) -> CompileError:
    return _e(
        ErrorCode.AMBIGUOUS_BINDING_UNION_VALUE,
        node_id,
        f"Input [{param}] on node [{node_id}] expects bindings of union type [{expected}].  "
        f"Received [{binding}] which is ambiguous as both variants [{match1}] and [{match2}] "
        "match.",
    )


def incompatible_binding_union_value(
    node_id: str, param: str, expected: str, binding: str
) -> CompileError:
    return _e(
        ErrorCode.INCOMPATIBLE_BINDING_UNION_VALUE,
        node_id,
        f"Input [{param}] on node [{node_id}] expects bindings of union type [{expected}].  "
        f"Received [{binding}] which does not match any of the variants.",
    )


def no_condition_found(node_id: str) -> CompileError:
    return _e(
        ErrorCode.NO_CONDITION_FOUND, node_id, f"Can't find any condition in gate node [{node_id}]."
    )
