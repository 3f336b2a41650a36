"""Execution clusters: which data-plane cluster runs an execution (docs/multicluster.md).

flyteadmin's rules (its ``executioncluster`` package and execution manager):

- the label: the execution's own ``execution_cluster_label`` (a child execution inherits its
  parent's), else the EXECUTION_CLUSTER_LABEL attribute (project, domain, workflow, launch
  plan), else ``execution_clusters.default_label``;
- the candidates: the enabled clusters serving that label; when none does, those serving the
  default label; when none does either, every enabled cluster;
- the choice: weighted among the candidates and seeded by the execution name, so the same
  execution always gets the same cluster;
- the cluster pool (``cluster_assignment``): the CLUSTER_ASSIGNMENT attribute of the
  project-domain, else the domain's ``pool_assignments`` entry; a request naming another pool
  is refused. Candidates are then only the pool's clusters.

The choice is made once, at CreateExecution, and stored in
``spec.metadata.system_metadata.execution_cluster``: the operator launches, terminates and
cleans up there, and a retried launch never moves the execution. With no clusters configured
every execution runs in the control plane's own cluster, whose id is "".
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from typing import Any

from flyteidl.admin import execution_pb2
from flyteidl.admin import matchable_resource_pb2 as mr_pb2
from flyteidl.core import identifier_pb2

from flyteadmin.core.attributes import Attributes
from flyteadmin.core.config import ConfigError, ExecutionCluster, ExecutionClusterSettings
from flyteadmin.core.crmap.executions import ExecutionRecord, execution_object_name
from flyteadmin.core.errors import failed_precondition, invalid_argument
from flyteadmin.core.store import Collection

log = logging.getLogger(__name__)
MR = mr_pb2.MatchableResource
HOME = ""
"""The id of the control plane's own cluster (single-cluster mode, and executions created
before clusters were configured)."""
# Its name goes into Event messages, kubectl columns and propeller's `cluster-id`.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# flytepropeller's default `cluster-id`: events carrying it are never checked against a cluster
# (core/events/common.py), so a cluster of that name could not be told apart.
_RESERVED = "propeller"
# Keys of the execution's ``resolved`` configuration. CLUSTER repeats the choice in a field
# kubectl can show (the spec itself is stored packed); system_metadata stays the one the
# operator and the event checks read.
CLUSTER = "cluster"
POOL = "clusterPool"
LABEL = "clusterLabel"


def check_settings(cfg: ExecutionClusterSettings) -> None:
    """Refuse configurations that would misplace executions; raises ConfigError."""
    seen: set[str] = set()
    for index, cluster in enumerate(cfg.clusters):
        where = f"execution_clusters.clusters[{index}]"
        if not _NAME.match(cluster.name) or len(cluster.name) > 63:
            raise ConfigError(
                f"{where}.name: {cluster.name!r} must be lower-case letters, digits, '-' and "
                "'.', at most 63 characters"
            )
        if cluster.name == _RESERVED:
            raise ConfigError(
                f"{where}.name: {_RESERVED!r} is flytepropeller's default cluster-id, which "
                "events never claim an execution with; choose another name"
            )
        if cluster.name in seen:
            raise ConfigError(f"{where}.name: cluster {cluster.name!r} is listed twice")
        seen.add(cluster.name)
        if bool(cluster.kubeconfig) == cluster.in_cluster:
            raise ConfigError(
                f"{where} ({cluster.name}): set exactly one of kubeconfig and in_cluster"
            )
        if cluster.context and not cluster.kubeconfig:
            raise ConfigError(f"{where} ({cluster.name}): context needs a kubeconfig")
        if cluster.weight < 0:
            raise ConfigError(f"{where}.weight: must not be negative, got {cluster.weight}")
    if cfg.default_label and not any(cfg.default_label in c.labels for c in cfg.clusters):
        raise ConfigError(
            f"execution_clusters.default_label: no cluster serves {cfg.default_label!r}"
        )
    if cfg.probe_seconds <= 0:
        raise ConfigError("execution_clusters.probe_seconds: must be positive")


def _fraction(seed: str) -> float:
    """A number in [0, 1) fixed by ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def weighted_choice(candidates: Sequence[ExecutionCluster], seed: str) -> ExecutionCluster:
    """flytestdlib's weighted random list, seeded: clusters in name order, zero weights left
    out unless every weight is zero (then all count equally)."""
    ordered = sorted(candidates, key=lambda c: c.name)
    pool = [c for c in ordered if c.weight > 0] or ordered
    weights = [c.weight or 1.0 for c in pool]  # all zero: equal shares
    point = _fraction(seed) * sum(weights)
    running = 0.0
    for cluster, weight in zip(pool, weights, strict=True):
        running += weight
        if point < running:
            return cluster
    return pool[-1]


class ClusterChooser:
    """Places new executions (``place``); built from the configuration and the attribute
    store, so the API server needs no credentials of the clusters themselves."""

    def __init__(
        self,
        cfg: ExecutionClusterSettings,
        attributes: Attributes,
        executions: Collection[ExecutionRecord],
    ) -> None:
        check_settings(cfg)
        self._cfg = cfg
        self._attributes = attributes
        self._executions = executions

    @property
    def multi(self) -> bool:
        return bool(self._cfg.clusters)

    def place(
        self,
        spec: execution_pb2.ExecutionSpec,
        ident: identifier_pb2.WorkflowExecutionIdentifier,
        workflow: str,
        launch_plan: str,
    ) -> dict[str, Any]:
        """Choose the execution's cluster and write it (and an inherited label) into ``spec``;
        returns what goes into the execution's ``resolved`` configuration. Raises AdminError
        for a request that cannot be placed."""
        self._inherit_label(spec)
        pool = self._pool(spec, ident.project, ident.domain)
        explicit = spec.execution_cluster_label.value
        resolved: dict[str, Any] = {POOL: pool} if pool else {}
        if not self.multi:
            if explicit:
                raise invalid_argument(
                    f"execution cluster label {explicit!r} is not supported: no execution "
                    "clusters are configured"
                )
            spec.metadata.system_metadata.execution_cluster = HOME
            return resolved
        candidates = [c for c in self._cfg.clusters if c.enabled and (not pool or pool in c.pools)]
        if not candidates:
            raise failed_precondition(
                f"cluster pool {pool!r} has no enabled execution cluster"
                if pool
                else "no execution cluster is enabled"
            )
        label = explicit or self._attribute_label(ident, workflow, launch_plan)
        chosen_label, serving = "", candidates
        for wanted in (label, self._cfg.default_label):
            matching = [c for c in candidates if wanted and wanted in c.labels]
            if matching:
                chosen_label, serving = wanted, matching
                break
        if label and chosen_label != label:
            log.info(
                "execution %s: no enabled cluster serves label %r; chosen from %s",
                ident.name,
                label,
                f"label {chosen_label!r}" if chosen_label else "every enabled cluster",
            )
        cluster = weighted_choice(serving, ident.name)
        spec.metadata.system_metadata.execution_cluster = cluster.name
        resolved[CLUSTER] = cluster.name
        if chosen_label:
            resolved[LABEL] = chosen_label
        return resolved

    def _inherit_label(self, spec: execution_pb2.ExecutionSpec) -> None:
        """A child execution (launched by a node of another) runs with its parent's label,
        as flyteadmin does; a parent without one leaves the child's own."""
        if not spec.metadata.HasField("parent_node_execution"):
            return
        parent_id = spec.metadata.parent_node_execution.execution_id
        parent = self._executions.get(execution_object_name(parent_id))
        if parent is None:
            return
        label = parent.value.execution.spec.execution_cluster_label
        if label.value:
            spec.execution_cluster_label.CopyFrom(label)

    def _attribute_label(
        self, ident: identifier_pb2.WorkflowExecutionIdentifier, workflow: str, launch_plan: str
    ) -> str:
        found = self._attributes.effective(
            MR.EXECUTION_CLUSTER_LABEL, ident.project, ident.domain, workflow, launch_plan
        )
        return found.execution_cluster_label.value if found else ""

    def _pool(self, spec: execution_pb2.ExecutionSpec, project: str, domain: str) -> str:
        found = self._attributes.effective(MR.CLUSTER_ASSIGNMENT, project, domain)
        if found is not None and found.cluster_assignment.cluster_pool_name:
            stored = found.cluster_assignment.cluster_pool_name
        else:
            stored = self._cfg.pool_assignments.get(domain, "")
        requested = spec.cluster_assignment.cluster_pool_name
        if requested and stored and requested != stored:
            raise invalid_argument(
                f'execution with project "{project}" and domain "{domain}" cannot run on '
                f'cluster pool "{requested}", because it is configured to run on pool "{stored}"'
            )
        return requested or stored
