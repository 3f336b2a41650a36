"""Checks of RegisterProject and UpdateProject (flyteadmin-behaviour.md §7), pure."""

from __future__ import annotations

import re

from flyteidl.admin import project_pb2

from flyteadmin.core.errors import invalid_argument, missing
from flyteadmin.core.validation.labels import validate_labels

MAX_NAME_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 300
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def dns1123_label_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        errors.append(_DNS1123_MESSAGE)
    return errors


def _max_length(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise invalid_argument(f"{field} cannot exceed {limit} characters")


def validate_project(project: project_pb2.Project) -> None:
    """What both register and update require of the project message."""
    if not project.id:
        raise missing("project_id")
    validate_labels(project.labels.values)
    errors = dns1123_label_errors(project.id)
    if errors:
        raise invalid_argument(f"invalid project id [{project.id}]: [{'; '.join(errors)}]")
    _max_length(project.name, "project_name", MAX_NAME_LENGTH)
    _max_length(project.description, "project_description", MAX_DESCRIPTION_LENGTH)
    if len(project.domains) > 0:
        raise invalid_argument(
            "Domains are currently only set system wide. Please retry without domains "
            "included in your request."
        )


def validate_register(request: project_pb2.ProjectRegisterRequest) -> None:
    if not request.HasField("project"):
        raise missing("project")
    if not request.project.name:
        raise missing("project_name")
    validate_project(request.project)
