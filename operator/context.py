"""What the operator's handlers share: settings and the Kubernetes client of the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from flyteadmin.core.config import Settings


@dataclass(frozen=True)
class OperatorContext:
    settings: Settings
    api: client.ApiClient
    backend: Any = None
    """The core's Backend (caches, services), started before Kopf."""
    targets: Any = None
    """The clusters it writes to (core.cluster_targets.Targets)."""
    shared: dict[str, Any] = field(default_factory=dict, compare=False)
    """Objects the handlers and loops share (e.g. the one execution Launcher)."""
