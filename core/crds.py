"""The custom resources of the control plane: the one source of truth for their CRDs.

``crds/`` and ``charts/flyteadmin/crds/`` hold manifests generated from ``KINDS``
(``python -m flyteadmin.core.crds write``); a test fails when they drift. Schemas are
structural: the fields the control plane indexes, filters and prints are typed; proto payloads
(closures, specs) are base64 protobuf binary (``...Proto`` fields): one opaque string that
kube-apiserver neither walks nor prunes, smaller than the JSON form and decoded in microseconds
where protobuf's JSON parser takes a fifth of a millisecond, in every process that watches the
kind. Objects written before hold the JSON form under fields marked
``x-kubernetes-preserve-unknown-fields``, and are still read.
The mapping of every Flyte entity onto these kinds is described in docs/storage.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

GROUP = "flyteadmin.io"
VERSION = "v1alpha1"
CATEGORY = "flyteadmin"
LABEL_PREFIX = "flyteadmin.io/"

Schema = dict[str, Any]
_ATOMIC: Schema = {"x-kubernetes-map-type": "atomic"}


def _string(description: str = "", enum: list[str] | None = None) -> Schema:
    s: Schema = {"type": "string"}
    if description:
        s["description"] = description
    if enum:
        s["enum"] = enum
    return s


def _int(description: str = "") -> Schema:
    s: Schema = {"type": "integer", "format": "int64"}
    if description:
        s["description"] = description
    return s


def _time(description: str = "") -> Schema:
    return {"type": "string", "format": "date-time", "description": description}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    s: Schema = {"type": "object", "properties": properties}
    if required:
        s["required"] = required
    return s


def _proto(description: str) -> Schema:
    """A protobuf message stored as its JSON form (proto field names)."""
    return {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "description": description,
    }


def _packed(description: str) -> Schema:
    """A protobuf message as base64 protobuf binary: one opaque string that kube-apiserver
    neither walks nor field-tracks (core/crmap/protojson.py)."""
    return _string(f"{description} Protobuf binary, base64.")


def _string_map(description: str) -> Schema:
    return {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": description,
    }


def _ref(description: str) -> Schema:
    return _string(f"Blob-store URI of {description}, when it is too large to keep inline.")


_EMBEDDED_DESCRIPTION = (
    "admin.DescriptionEntity of this version, when it has one that fits (a larger one is a "
    "DescriptionEntity object)."
)

# Flyte identifiers: the real ids live in the object; object names are derived (core/names.py).
_PDN = {"project": _string(), "domain": _string(), "name": _string()}
IDENTIFIER = _object(
    {**_PDN, "version": _string(), "org": _string()}, ["project", "domain", "name"]
)
EXECUTION_ID = _object({**_PDN, "org": _string()}, ["project", "domain", "name"])

PROJECT_STATES = ["ACTIVE", "ARCHIVED", "SYSTEM_GENERATED", "SYSTEM_ARCHIVED"]
# Lists sort created_at on it: creationTimestamp has whole seconds only.
_CREATED_AT = _time("Creation time to the microsecond (the created_at of lists).")
RESOURCE_TYPES = ["UNSPECIFIED", "TASK", "WORKFLOW", "LAUNCH_PLAN", "DATASET"]


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.priority:
            out["priority"] = self.priority
        if self.description:
            out["description"] = self.description
        return out


AGE = Column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: Schema
    columns: tuple[Column, ...]
    status: Schema | None = None
    # A status subresource makes the apiserver drop status on create and spec on status
    # writes: a create with status then costs two calls, and an update of both costs two.
    # The kinds written on every event have none (one call per write; docs/storage.md).
    status_subresource: bool = True
    # Objects that running executions create (node/task executions, signals), and history
    # segments (archiving is what frees etcd): their writes are progress, admitted while new
    # work is already refused (core/budget.py).
    progress: bool = False
    description: str = ""
    namespaced: bool = True
    group: str = GROUP
    version: str = VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def separate_status(self) -> bool:
        """Whether status is written through its own subresource."""
        return self.status is not None and self.status_subresource

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def manifest(self) -> dict[str, Any]:
        # Atomic: kube-apiserver's field manager records a create's spec and status as two
        # fields instead of one per leaf (nothing of ours applies server-side, which is what
        # the per-leaf record is for), so every create is cheaper to store, watch and decode.
        properties: dict[str, Schema] = {"spec": {**self.spec, **_ATOMIC}}
        if self.status is not None:
            properties["status"] = {**self.status, **_ATOMIC}
        version: dict[str, Any] = {
            "name": self.version,
            "served": True,
            "storage": True,
            "schema": {
                "openAPIV3Schema": {
                    "type": "object",
                    "description": self.description,
                    "properties": properties,
                    "required": ["spec"],
                }
            },
            "additionalPrinterColumns": [c.manifest() for c in (*self.columns, AGE)],
        }
        if self.separate_status:
            version["subresources"] = {"status": {}}
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": self.crd_name,
                "labels": {"app.kubernetes.io/part-of": "flyteadmin"},
            },
            "spec": {
                "group": self.group,
                "scope": "Namespaced" if self.namespaced else "Cluster",
                "names": {
                    "kind": self.kind,
                    "listKind": f"{self.kind}List",
                    "plural": self.plural,
                    "singular": self.singular,
                    "shortNames": list(self.short_names),
                    "categories": [CATEGORY],
                },
                "versions": [version],
            },
        }


PROJECT = Kind(
    kind="Project",
    plural="projects",
    short_names=("fproj",),
    description="A Flyte project (admin.Project). The object name is the project id.",
    spec=_object(
        {
            "id": _string("Project id (a DNS-1123 label)."),
            "name": _string("Display name."),
            "description": _string(),
            "labels": _string_map("admin.Labels of the project."),
            "state": _string("admin.Project.ProjectState.", PROJECT_STATES),
            "org": _string(),
            "createdAt": _CREATED_AT,
        },
        ["id", "state"],
    ),
    columns=(
        Column("Project", ".spec.id"),
        Column("Name", ".spec.name"),
        Column("State", ".spec.state"),
        Column("Description", ".spec.description", priority=1),
    ),
)

_REGISTERED = {
    "id": IDENTIFIER,
    "digest": _string("Digest of the registered definition: identical re-registration check."),
}

TASK = Kind(
    kind="Task",
    plural="tasks",
    short_names=("ftask",),
    description="A registered task version (admin.Task).",
    spec=_object(
        {
            **_REGISTERED,
            "type": _string("Task type, e.g. python-task."),
            "shortDescription": _string(),
            "closureProto": _packed("admin.TaskClosure (compiled task and created_at)."),
            "closure": _proto("admin.TaskClosure as JSON (objects written before closureProto)."),
            "closureRef": _ref("the admin.TaskClosure"),
            "descriptionProto": _packed(_EMBEDDED_DESCRIPTION),
        },
        ["id"],
    ),
    columns=(
        Column("Project", ".spec.id.project"),
        Column("Domain", ".spec.id.domain"),
        Column("Task", ".spec.id.name"),
        Column("Version", ".spec.id.version"),
        Column("Type", ".spec.type"),
    ),
)

WORKFLOW = Kind(
    kind="Workflow",
    plural="workflows",
    short_names=("fwf",),
    description="A registered workflow version (admin.Workflow) with its compiled closure.",
    spec=_object(
        {
            **_REGISTERED,
            "shortDescription": _string(),
            "interface": _proto("core.TypedInterface of the workflow."),
            "closureProto": _packed("admin.WorkflowClosure (compiled workflow, created_at)."),
            "closure": _proto(
                "admin.WorkflowClosure as JSON (objects written before closureProto)."
            ),
            "closureRef": _ref("the admin.WorkflowClosure"),
            "descriptionProto": _packed(_EMBEDDED_DESCRIPTION),
        },
        ["id"],
    ),
    columns=(
        Column("Project", ".spec.id.project"),
        Column("Domain", ".spec.id.domain"),
        Column("Workflow", ".spec.id.name"),
        Column("Version", ".spec.id.version"),
        Column("Closure", ".spec.closureRef", priority=1),
    ),
)

LAUNCH_PLAN = Kind(
    kind="LaunchPlan",
    plural="launchplans",
    short_names=("flp",),
    description="A registered launch plan version (admin.LaunchPlan).",
    spec=_object(
        {
            **_REGISTERED,
            "workflowId": IDENTIFIER,
            "state": _string("ACTIVE or INACTIVE.", ["INACTIVE", "ACTIVE"]),
            "scheduleType": _string("", ["NONE", "CRON", "RATE"]),
            "specProto": _packed("admin.LaunchPlanSpec."),
            "closureProto": _packed("admin.LaunchPlanClosure (expected inputs/outputs, times)."),
            "spec": _proto("admin.LaunchPlanSpec as JSON (objects written before specProto)."),
            "closure": _proto(
                "admin.LaunchPlanClosure as JSON (objects written before closureProto)."
            ),
        },
        ["id", "state"],
    ),
    columns=(
        Column("Project", ".spec.id.project"),
        Column("Domain", ".spec.id.domain"),
        Column("Launch Plan", ".spec.id.name"),
        Column("Version", ".spec.id.version"),
        Column("State", ".spec.state"),
        Column("Schedule", ".spec.scheduleType"),
    ),
)

_PHASE_STATUS = {
    "phase": _string("Current phase name."),
    "startedAt": _time(),
    "updatedAt": _time(),
    "duration": _string("Duration as seconds with an `s` suffix (protobuf Duration JSON)."),
    "message": _string("The error, shortened (for kubectl; the closure holds all of it)."),
    "closureProto": _packed("The admin closure (phase details, outputs, errors, ...)."),
    "closure": _proto("The admin closure, as JSON (objects written before closureProto)."),
    "closureRef": _ref("the closure"),
}

EXECUTION = Kind(
    kind="Execution",
    plural="executions",
    short_names=("fexec",),
    description="A workflow execution (admin.Execution): request in spec, progress in status.",
    status_subresource=False,
    spec=_object(
        {
            "id": EXECUTION_ID,
            "launchPlanId": IDENTIFIER,
            "workflowId": IDENTIFIER,
            "taskId": IDENTIFIER,
            "specProto": _packed("admin.ExecutionSpec with the resolved configuration."),
            "spec": _proto("admin.ExecutionSpec as JSON (objects written before specProto)."),
            "inputsUri": _string(),
            "userInputsUri": _string(),
            "parentNodeExecution": _proto("core.NodeExecutionIdentifier of the launching node."),
            "sourceExecution": EXECUTION_ID,
            "state": _string("ACTIVE or ARCHIVED.", ["EXECUTION_ACTIVE", "EXECUTION_ARCHIVED"]),
            "createdAt": _time(),
            "requestDigest": _string("Digest of the create request: a retried create is found."),
            "resolved": _proto(
                "Configuration resolved at creation for the operator (task "
                "resources, namespace, plugin overrides; the execution cluster chosen, its label "
                "and pool); `waiting`: why the operator cannot reach that cluster yet."
            ),
        },
        ["id"],
    ),
    status=_object(
        {
            **_PHASE_STATUS,
            "abort": _proto("Abort cause and principal."),
            "archivedIn": {
                "type": "array",
                "description": "History files that hold this execution and its node and task "
                "executions: set by the archiver just before it deletes the objects.",
                "items": _string(),
            },
            "notified": {
                "type": "array",
                "description": "Phase notifications the operator has delivered or given up on "
                "(one entry per closure notification index, phase and sender): never resent.",
                "items": _object(
                    {
                        "index": _int("Position in closure.notifications."),
                        "phase": _string(),
                        "sender": _string("smtp or webhook."),
                        "outcome": _string("", ["Delivered", "Failed"]),
                        "attempts": _int(),
                        "at": _time(),
                        "error": _string("Last error when Failed."),
                    },
                    ["index", "phase", "sender", "outcome"],
                ),
            },
        }
    ),
    columns=(
        Column("Project", ".spec.id.project"),
        Column("Domain", ".spec.id.domain"),
        Column("Execution", ".spec.id.name"),
        Column("Launch Plan", ".spec.launchPlanId.name"),
        Column("Phase", ".status.phase"),
        Column(
            "Cluster",
            ".spec.resolved.cluster",
            description="The execution cluster chosen at creation (empty: the control plane's).",
        ),
        Column("Started", ".status.startedAt", "date"),
        Column("Duration", ".status.duration"),
        Column(
            "Waiting",
            ".spec.resolved.waiting",
            priority=1,
            description="Why the operator cannot reach the execution's cluster yet.",
        ),
    ),
)

NODE_EXECUTION = Kind(
    kind="NodeExecution",
    plural="nodeexecutions",
    short_names=("fnexec",),
    description="A node execution of a workflow execution (admin.NodeExecution).",
    status_subresource=False,
    progress=True,
    spec=_object(
        {
            "executionId": EXECUTION_ID,
            "nodeId": _string(),
            "parentId": _string("Node id of the parent node execution, for child nodes."),
            "parentTaskExecutionProto": _packed(
                "core.TaskExecutionIdentifier of a dynamic parent."
            ),
            "parentTaskExecution": _proto("The same as JSON (objects written before)."),
            "inputUri": _string(),
            "metadataProto": _packed("admin.NodeExecutionMetaData."),
            "metadata": _proto("admin.NodeExecutionMetaData as JSON (objects written before)."),
        },
        ["executionId", "nodeId"],
    ),
    status=_object(
        {**_PHASE_STATUS, "dynamicWorkflowRef": _ref("a dynamic node's compiled workflow")}
    ),
    columns=(
        Column("Execution", ".spec.executionId.name"),
        Column("Node", ".spec.nodeId"),
        Column("Phase", ".status.phase"),
        Column("Started", ".status.startedAt", "date"),
        Column("Duration", ".status.duration"),
    ),
)

TASK_EXECUTION = Kind(
    kind="TaskExecution",
    plural="taskexecutions",
    short_names=("ftexec",),
    description="One attempt of a task in a node execution (admin.TaskExecution).",
    status_subresource=False,
    progress=True,
    spec=_object(
        {
            "executionId": EXECUTION_ID,
            "nodeId": _string(),
            "taskId": IDENTIFIER,
            "retryAttempt": _int(),
            "inputUri": _string(),
        },
        ["executionId", "nodeId", "taskId"],
    ),
    status=_object({**_PHASE_STATUS, "phaseVersion": _int()}),
    columns=(
        Column("Execution", ".spec.executionId.name"),
        Column("Node", ".spec.nodeId"),
        Column("Task", ".spec.taskId.name"),
        Column("Attempt", ".spec.retryAttempt", "integer"),
        Column("Phase", ".status.phase"),
        Column("Duration", ".status.duration"),
    ),
)

NAMED_ENTITY = Kind(
    kind="NamedEntity",
    plural="namedentities",
    short_names=("fne",),
    description="User metadata of a named entity (admin.NamedEntityMetadata).",
    spec=_object(
        {
            "resourceType": _string("", RESOURCE_TYPES),
            **_PDN,
            "description": _string(),
            "state": _string(
                "",
                ["NAMED_ENTITY_ACTIVE", "NAMED_ENTITY_ARCHIVED", "SYSTEM_GENERATED"],
            ),
            "activeVersion": _string(
                "For launch plans: the one ACTIVE version of this name (empty: none). The single "
                "place of truth, so activations serialize on this object's resourceVersion."
            ),
        },
        ["resourceType", "project", "domain", "name"],
    ),
    # Written only by the operator's scheduler (operator/scheduler.py), through the status
    # subresource, so spec writes (descriptions, activations) never touch it.
    status=_object(
        {
            "schedule": _object(
                {
                    "version": _string("The active version these times belong to."),
                    "since": _time("When the scheduler first saw that version active."),
                    "firedUpTo": _time("The latest schedule time fired (or skipped)."),
                }
            )
        }
    ),
    columns=(
        Column("Type", ".spec.resourceType"),
        Column("Project", ".spec.project"),
        Column("Domain", ".spec.domain"),
        Column("Name", ".spec.name"),
        Column("State", ".spec.state"),
        Column("Active Version", ".spec.activeVersion"),
    ),
)

MATCHABLE_ATTRIBUTES = Kind(
    kind="MatchableAttributes",
    plural="matchableattributes",
    short_names=("fattr",),
    description="Project, project-domain or workflow attributes of one resource type.",
    spec=_object(
        {
            "resourceType": _string("admin.MatchableResource name."),
            "project": _string(),
            "domain": _string(),
            "workflow": _string(),
            "launchPlan": _string(),
            "attributes": _proto("admin.MatchingAttributes."),
        },
        ["resourceType", "project"],
    ),
    columns=(
        Column("Resource", ".spec.resourceType"),
        Column("Project", ".spec.project"),
        Column("Domain", ".spec.domain"),
        Column("Workflow", ".spec.workflow"),
    ),
)

DESCRIPTION_ENTITY = Kind(
    kind="DescriptionEntity",
    plural="descriptionentities",
    short_names=("fdesc",),
    description="Documentation of a task or workflow version (admin.DescriptionEntity).",
    spec=_object(
        {
            "id": IDENTIFIER,
            "resourceType": _string("", RESOURCE_TYPES),
            "shortDescription": _string(),
            "entityProto": _packed("admin.DescriptionEntity."),
            "entity": _proto(
                "admin.DescriptionEntity as JSON (objects written before entityProto)."
            ),
            "entityRef": _ref("the admin.DescriptionEntity"),
            "createdAt": _CREATED_AT,
        },
        ["id", "resourceType"],
    ),
    columns=(
        Column("Type", ".spec.resourceType"),
        Column("Project", ".spec.id.project"),
        Column("Domain", ".spec.id.domain"),
        Column("Name", ".spec.id.name"),
        Column("Version", ".spec.id.version"),
    ),
)

SIGNAL = Kind(
    kind="Signal",
    plural="signals",
    short_names=("fsig",),
    description="A gate-node signal of an execution (admin.Signal).",
    progress=True,
    spec=_object(
        {
            "executionId": EXECUTION_ID,
            "signalId": _string(),
            "type": _proto("core.LiteralType the value must match."),
            "createdAt": _CREATED_AT,
        },
        ["executionId", "signalId"],
    ),
    status=_object({"value": _proto("core.Literal once set."), "setAt": _time()}),
    columns=(
        Column("Execution", ".spec.executionId.name"),
        Column("Signal", ".spec.signalId"),
        Column("Set", ".status.setAt", "date"),
    ),
)

HISTORY_SEGMENT = Kind(
    kind="HistorySegment",
    plural="historysegments",
    short_names=("fhist",),
    description="One Parquet file of archived execution history in the blob store "
    "(docs/storage.md, History). The object name is derived from the file URI.",
    status_subresource=False,
    progress=True,
    spec=_object(
        {
            "uri": _string("gs:// URI of the file."),
            "table": _string("", ["executions", "node_executions", "task_executions", "signals"]),
            "project": _string(),
            "domain": _string(),
            "month": _string("Month (YYYY-MM, UTC) of the executions' creation, or none."),
            "rows": _int(),
            "bytes": _int(),
            "sha256": _string("Hex digest of the file's bytes."),
            "minCreatedAt": _time("Earliest created_at of its rows."),
            "maxCreatedAt": _time("Latest created_at of its rows."),
            "replaces": {
                "type": "array",
                "items": _string(),
                "description": "Segments this one replaces (compaction output): queries "
                "switch from them to this file at once.",
            },
        },
        ["uri", "table", "project", "domain", "month", "sha256"],
    ),
    status=_object(
        {
            "phase": _string(
                "Committed: the file is verified and registered, but the archived objects may "
                "still exist; Done: they are deleted.",
                ["Committed", "Done"],
            ),
            "executions": {
                "type": "array",
                "items": _string(),
                "description": "Names of the executions in the file, while not Done.",
            },
        }
    ),
    columns=(
        Column("Table", ".spec.table"),
        Column("Project", ".spec.project"),
        Column("Domain", ".spec.domain"),
        Column("Month", ".spec.month"),
        Column("Rows", ".spec.rows", "integer"),
        Column("Phase", ".status.phase"),
        Column("URI", ".spec.uri", priority=1),
    ),
)

EVENT_BATCH = Kind(
    kind="EventBatch",
    plural="eventbatches",
    short_names=("fevb",),
    description="The event journal (docs/event-journal.md): node and task execution states "
    "accepted from events, written together by one API-server worker and folded into their "
    "objects shortly after; the batch is deleted once they are.",
    status_subresource=False,
    progress=True,
    spec=_object(
        {
            "writer": _string("The API-server process that wrote the batch."),
            "count": _int("How many records."),
            "records": {
                "type": "array",
                "items": _string(),
                "description": "Each the JSON body its NodeExecution or TaskExecution object "
                "gets (one string: kube-apiserver does not walk it).",
            },
        },
        ["writer", "records"],
    ),
    columns=(
        Column("Writer", ".spec.writer"),
        Column("Records", ".spec.count", "integer"),
    ),
)

KINDS: tuple[Kind, ...] = (
    PROJECT,
    TASK,
    WORKFLOW,
    LAUNCH_PLAN,
    EXECUTION,
    NODE_EXECUTION,
    TASK_EXECUTION,
    NAMED_ENTITY,
    MATCHABLE_ATTRIBUTES,
    DESCRIPTION_ENTITY,
    SIGNAL,
    HISTORY_SEGMENT,
    EVENT_BATCH,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_DIRS = (REPO_ROOT / "crds", REPO_ROOT / "charts" / "flyteadmin" / "crds")
_HEADER = "# Generated by `python -m flyteadmin.core.crds write` from core/crds.py. Do not edit.\n"


def render(kind: Kind) -> str:
    return _HEADER + yaml.safe_dump(kind.manifest(), sort_keys=False)


def rendered_files() -> dict[str, str]:
    """File name -> content of every generated manifest."""
    return {f"{k.crd_name}.yaml": render(k) for k in KINDS}


def write_manifests() -> None:
    for folder in MANIFEST_DIRS:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"*.{GROUP}.yaml"):
            stale.unlink()
        for name, text in rendered_files().items():
            (folder / name).write_text(text)


if __name__ == "__main__":
    if sys.argv[1:] == ["write"]:
        write_manifests()
    else:
        sys.stdout.write("---\n".join(rendered_files().values()))
