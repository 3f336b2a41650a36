"""Kubernetes label syntax, as flyteadmin checks it for project and execution labels."""

from __future__ import annotations

import re
from collections.abc import Mapping

from flyteadmin.core.errors import invalid_argument

MAX_LABELS = 16
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _PREFIX.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_NAME.match(name))


def validate_labels(labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise invalid_argument(f"labels cannot have more than {MAX_LABELS} entries")
    for key, value in labels.items():
        if not _key_ok(key):
            raise invalid_argument(
                f"invalid label key [{key}]: a qualified name must consist of alphanumeric "
                "characters, '-', '_' or '.', start and end with an alphanumeric character, "
                "be at most 63 characters, with an optional DNS subdomain prefix and '/'"
            )
        if len(value) > 63 or not _VALUE.match(value):
            raise invalid_argument(
                f"invalid label value [{value}] for key [{key}]: a valid label must be an "
                "empty string or consist of alphanumeric characters, '-', '_' or '.', start "
                "and end with an alphanumeric character, and be at most 63 characters"
            )
