"""Labels that let `kubectl get -l` find objects by their Flyte identity.

Label values are limited to 63 characters of ``[A-Za-z0-9._-]`` (starting and ending
alphanumeric); Flyte names and versions are not. A value that does not fit is left out — the
real id is always in the spec, and the control plane's own lookups use its in-memory indexes.
"""

from __future__ import annotations

import re

from flyteadmin.core.crds import LABEL_PREFIX

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

MANAGED_BY = "app.kubernetes.io/managed-by"


def label_value_ok(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def identity_labels(**parts: str) -> dict[str, str]:
    labels = {MANAGED_BY: "flyteadmin"}
    for key, value in parts.items():
        if value and label_value_ok(value):
            labels[LABEL_PREFIX + key.replace("_", "-")] = value
    return labels
