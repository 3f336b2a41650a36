"""IV (flyteadmin-behaviour.md §1.3): each row an identifier and flyteadmin's exact message."""

from __future__ import annotations

import pytest
from flyteidl.admin import common_pb2
from flyteidl.core import identifier_pb2, types_pb2

from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.validation.identifiers import (
    fill_resource_type,
    proto_text,
    validate_identifier,
    validate_named_entity_identifier,
    validate_object_get_request,
)

TASK, WORKFLOW = identifier_pb2.TASK, identifier_pb2.WORKFLOW
LAUNCH_PLAN, UNSPECIFIED = identifier_pb2.LAUNCH_PLAN, identifier_pb2.UNSPECIFIED
FULL = dict(project="p", domain="d", name="n", version="v")


def ident(**fields) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(**fields)


def raised(call) -> tuple[Code, str] | None:
    try:
        call()
    except AdminError as err:
        return err.code, err.message
    return None


def bad(message: str) -> tuple[Code, str]:
    return Code.INVALID_ARGUMENT, message


@pytest.mark.parametrize(
    "identifier, expected, error",
    [
        (ident(resource_type=TASK, **FULL), TASK, None),
        (ident(resource_type=LAUNCH_PLAN, **FULL), LAUNCH_PLAN, None),
        (None, TASK, bad("missing id")),
        (
            ident(resource_type=WORKFLOW, project="project", domain="domain"),
            TASK,
            bad(
                "unexpected resource type workflow for identifier "
                '[resource_type:WORKFLOW project:"project" domain:"domain"], expected task instead'
            ),
        ),
        (
            ident(**FULL),
            LAUNCH_PLAN,
            bad(
                'unexpected resource type unspecified for identifier [project:"p" domain:"d" '
                'name:"n" version:"v"], expected launch_plan instead'
            ),
        ),
        (
            ident(),
            WORKFLOW,
            bad(
                "unexpected resource type unspecified for identifier [], expected workflow instead"
            ),
        ),
        # the type is checked before the fields
        (
            ident(resource_type=TASK),
            WORKFLOW,
            bad(
                "unexpected resource type task for identifier "
                "[resource_type:TASK], expected workflow instead"
            ),
        ),
        (
            ident(resource_type=TASK, domain="d", name="n", version="v"),
            TASK,
            bad("missing project"),
        ),
        (
            ident(resource_type=TASK, project="p", name="n", version="v"),
            TASK,
            bad("missing domain"),
        ),
        (
            ident(resource_type=TASK, project="p", domain="d", version="v"),
            TASK,
            bad("missing name"),
        ),
        (
            ident(resource_type=TASK, project="p", domain="d", name="n"),
            TASK,
            bad("missing version"),
        ),
        # project first when several are missing
        (ident(resource_type=TASK), TASK, bad("missing project")),
    ],
)
def test_validate_identifier(identifier, expected, error):
    assert raised(lambda: validate_identifier(identifier, expected)) == error


@pytest.mark.parametrize(
    "identifier, default, filled",
    [
        (ident(**FULL), TASK, TASK),
        (ident(**FULL), LAUNCH_PLAN, LAUNCH_PLAN),
        (ident(resource_type=WORKFLOW, **FULL), TASK, WORKFLOW),
    ],
)
def test_fill_resource_type_only_fills_unspecified_and_copies(identifier, default, filled):
    before = identifier.SerializeToString()
    result = fill_resource_type(identifier, default)
    assert result == ident(resource_type=filled, **FULL)
    assert identifier.SerializeToString() == before


@pytest.mark.parametrize(
    "request_, default, any_type, error",
    [
        (common_pb2.ObjectGetRequest(id=ident(**FULL)), TASK, False, None),
        (common_pb2.ObjectGetRequest(id=ident(resource_type=TASK, **FULL)), TASK, False, None),
        (common_pb2.ObjectGetRequest(), TASK, False, bad("missing id")),
        (
            common_pb2.ObjectGetRequest(id=ident(resource_type=LAUNCH_PLAN, **FULL)),
            WORKFLOW,
            False,
            bad(
                "unexpected resource type launch_plan for identifier [resource_type:LAUNCH_PLAN "
                'project:"p" domain:"d" name:"n" version:"v"], expected workflow instead'
            ),
        ),
        (
            common_pb2.ObjectGetRequest(id=ident(project="p", domain="d", name="n")),
            TASK,
            False,
            bad("missing version"),
        ),
        # description entities take any type
        (common_pb2.ObjectGetRequest(id=ident(resource_type=WORKFLOW, **FULL)), TASK, True, None),
        (common_pb2.ObjectGetRequest(id=ident(name="n")), TASK, True, bad("missing project")),
    ],
)
def test_validate_object_get_request(request_, default, any_type, error):
    result = raised(lambda: validate_object_get_request(request_, default, any_type=any_type))
    assert result == error


def test_validate_object_get_request_returns_the_filled_id():
    request = common_pb2.ObjectGetRequest(id=ident(**FULL))
    assert validate_object_get_request(request, LAUNCH_PLAN).resource_type == LAUNCH_PLAN
    assert request.id.resource_type == UNSPECIFIED


@pytest.mark.parametrize(
    "identifier, error",
    [
        (common_pb2.NamedEntityIdentifier(project="p", domain="d", name="n"), None),
        (None, bad("missing id")),
        (common_pb2.NamedEntityIdentifier(domain="d", name="n"), bad("missing project")),
        (common_pb2.NamedEntityIdentifier(project="p", name="n"), bad("missing domain")),
        (common_pb2.NamedEntityIdentifier(project="p", domain="d"), bad("missing name")),
    ],
)
def test_validate_named_entity_identifier(identifier, error):
    assert raised(lambda: validate_named_entity_identifier(identifier)) == error


@pytest.mark.parametrize(
    "message, text",
    [
        (types_pb2.LiteralType(simple=types_pb2.INTEGER), "simple:INTEGER"),
        (
            types_pb2.LiteralType(collection_type=types_pb2.LiteralType(simple=types_pb2.STRING)),
            "collection_type:{simple:STRING}",
        ),
        (ident(name='a"b\\c\n'), r'name:"a\"b\\c\n"'),
        (ident(resource_type=7), "resource_type:7"),
        (types_pb2.LiteralType(), ""),
    ],
)
def test_proto_text_is_gos_compact_text(message, text):
    assert proto_text(message) == text
