"""The whole FlyteWorkflow object for one execution: propeller's ``BuildFlyteWorkflow`` followed
by flyteadmin's ``PrepareFlyteWorkflow`` and executor additions (§5.3). Pure: no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flyteidl.admin import matchable_resource_pb2
from flyteidl.core import compiler_pb2, interface_pb2, literals_pb2

from flyteadmin.core.compiler.types import castable, literal_type_of
from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.crmap.protojson import from_json
from flyteadmin.core.flyteworkflow.errors import FlyteWorkflowBuildError
from flyteadmin.core.flyteworkflow.goformat import (
    fnv32a,
    go_struct_json,
    identifier_key,
    jsonpb,
    metav1_time,
    sanitize_label_value,
)
from flyteadmin.core.flyteworkflow.resources import (
    complete_container_resources,
    platform_set,
    task_resource_spec,
)
from flyteadmin.core.flyteworkflow.workflow import build_workflow_spec, check_entry, strip_interface

API_VERSION = "flyte.lyft.com/v1alpha1"
# client-go's codec writes the scheme's kind (the Go type name), not v1alpha1.FlyteWorkflowKind
KIND = "FlyteWorkflow"
FINALIZER = "flyte.org/finalizer"
SHARD_KEYSPACE = 32
CHILD_QUEUE_KEY = "child_queue"

__all__ = ["FlyteWorkflowBuildError", "FlyteWorkflowOptions", "build_flyteworkflow"]


@dataclass(frozen=True)
class FlyteWorkflowOptions:
    """Admin configuration the object depends on (flyteadmin's top-level config)."""

    event_version: int = 2
    role_name_key: str = ""  # annotation key for the IAM role; "" leaves it out
    dynamic_queue: str = ""  # the execution queue's ``dynamic`` entry, if any
    use_offloaded_inputs: bool = False  # set: the inputs are named (record.inputs_uri)
    workflow_closure_reference: str = ""  # set: spec/tasks/subWorkflows are offloaded there
    console_url: str = ""


def build_flyteworkflow(
    record: ExecutionRecord,
    closure: compiler_pb2.CompiledWorkflowClosure,
    inputs: literals_pb2.LiteralMap | None,
    *,
    accepted_at: dt.datetime,
    options: FlyteWorkflowOptions = FlyteWorkflowOptions(),
) -> dict[str, Any]:
    """Raises ``FlyteWorkflowBuildError``. ``closure`` and ``inputs`` are not modified.
    ``inputs`` None: not read (``options.use_offloaded_inputs``; CreateExecution checked them
    against the launch plan, and propeller reads them by name)."""
    closure = prepare_closure(closure, record.resolved, options.dynamic_queue)
    if inputs is not None:
        check_inputs(closure.primary.template.interface, inputs)
    elif not options.use_offloaded_inputs:
        raise ValueError("inputs are needed unless they are offloaded")
    tasks = {identifier_key(t.template.id): t.template for t in closure.tasks}
    for task in tasks.values():
        strip_interface(task.interface)
    spec = build_workflow_spec(closure.primary, tasks)
    check_entry(spec)
    sub_workflows = {
        identifier_key(sub.template.id): build_workflow_spec(sub, tasks)
        for sub in closure.sub_workflows
    }
    ex = record.execution
    ident = ex.id
    body: dict[str, Any] = {
        "kind": KIND,
        "apiVersion": API_VERSION,
        "metadata": _metadata(record, spec["id"], options.role_name_key),
        "spec": spec,
        "workflowMeta": {"eventVersion": options.event_version} if options.event_version else {},
        "inputs": jsonpb(inputs) if inputs is not None else None,
        "executionId": go_struct_json(ident),
        # Offloaded: propeller builds them from the closure it reads, so not converted here.
        "tasks": None
        if options.workflow_closure_reference
        else {key: jsonpb(t) for key, t in tasks.items()},
    }
    if sub_workflows:
        body["subWorkflows"] = sub_workflows
    interruptible = closure.primary.template.metadata_defaults.interruptible
    body["node-defaults"] = {"interruptible": True} if interruptible else {}
    body["acceptedAt"] = metav1_time(accepted_at)
    run_as = ex.spec.security_context.run_as
    if ex.spec.security_context.HasField("run_as") and run_as.k8s_service_account:
        body["serviceAccountName"] = run_as.k8s_service_account
    body["securityContext"] = (
        go_struct_json(ex.spec.security_context)
        if ex.spec.security_context.HasField("run_as")
        else {}
    )
    body["status"] = {"phase": 0}
    prefix = ex.spec.raw_output_data_config.output_location_prefix
    body["rawOutputDataConfig"] = {"output_location_prefix": prefix} if prefix else {}
    body["executionConfig"] = execution_config(record)
    _offload(body, record, options)
    return body


def prepare_closure(
    closure: compiler_pb2.CompiledWorkflowClosure, resolved: dict[str, Any], dynamic_queue: str
) -> compiler_pb2.CompiledWorkflowClosure:
    """A copy whose container tasks carry the child queue and completed resources (§5.2): what
    the object's tasks are built from, and what an offloaded closure holds. It depends on the
    closure, ``resolved["taskResources"]`` and ``dynamic_queue`` only."""
    out = compiler_pb2.CompiledWorkflowClosure()
    out.CopyFrom(closure)
    platform = resolved.get("taskResources") or {}
    defaults = platform_set(platform.get("defaults") or {})
    limits = platform_set(platform.get("limits") or {})
    for task in out.tasks:
        if dynamic_queue and task.template.HasField("container"):
            task.template.container.config.add(key=CHILD_QUEUE_KEY, value=dynamic_queue)
        complete_container_resources(task.template, defaults, limits)
    return out


def check_inputs(iface: interface_pb2.TypedInterface, inputs: literals_pb2.LiteralMap) -> None:
    """``validateInputs``: every interface input bound, nothing unknown, types castable."""
    variables = iface.inputs.variables
    problems = []
    for name, literal in inputs.literals.items():
        if name not in variables:
            problems.append(f"variable {name} not found")
            continue
        found = literal_type_of(literal)
        if found is not None and not castable(found, variables[name].type):
            problems.append(f"variable {name}: mismatching types")
    problems += [f"parameter {n} not bound" for n in variables if n not in inputs.literals]
    if problems:
        raise FlyteWorkflowBuildError("invalid inputs: " + "; ".join(sorted(problems)))


def labels(record: ExecutionRecord, workflow_id: str) -> dict[str, str]:
    """Propeller's identity labels, then the execution's labels, which win on a clash."""
    ident = record.execution.id
    out = {
        "execution-id": ident.name,
        "project": ident.project,
        "domain": ident.domain,
        "workflow-name": sanitize_label_value(workflow_id.split(":")[-1]),
        "shard-key": str(shard_key(ident.name)),
    }
    out.update(record.execution.spec.labels.values)
    return out


def shard_key(execution_name: str) -> int:
    return fnv32a(execution_name.encode()) % SHARD_KEYSPACE


def pod_annotations(record: ExecutionRecord, role_name_key: str) -> dict[str, str]:
    out = {}
    role = record.execution.spec.security_context.run_as.iam_role
    if role and role_name_key:
        out[role_name_key] = role
    out.update(record.execution.spec.annotations.values)
    return out


def _metadata(record: ExecutionRecord, workflow_id: str, role_name_key: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": record.execution.id.name,
        "namespace": record.resolved.get("namespace", ""),
        "labels": labels(record, workflow_id),
    }
    notes = pod_annotations(record, role_name_key)
    if notes:
        meta["annotations"] = notes
    meta["finalizers"] = [FINALIZER]
    return meta


def execution_config(record: ExecutionRecord) -> dict[str, Any]:
    """``v1alpha1.ExecutionConfig`` (no json tags: Go field names; nil pointers/maps -> null)."""
    spec = record.execution.spec
    resolved = record.resolved
    overrides = from_json(
        matchable_resource_pb2.PluginOverrides, resolved.get("pluginOverrides") or {}
    )
    platform = resolved.get("taskResources") or {}
    envs = {kv.key: kv.value for kv in spec.envs.values}
    return {
        "TaskPluginImpls": {
            o.task_type: {
                "PluginIDs": list(o.plugin_id) or None,
                "MissingPluginBehavior": o.missing_plugin_behavior,
            }
            for o in overrides.overrides
        },
        "MaxParallelism": spec.max_parallelism,
        "RecoveryExecution": {
            k: v for k, v in (resolved.get("recoveryExecution") or {}).items() if v
        },
        "TaskResources": {
            "Requests": task_resource_spec(platform_set(platform.get("defaults") or {})),
            "Limits": task_resource_spec(platform_set(platform.get("limits") or {})),
        },
        "Interruptible": spec.interruptible.value if spec.HasField("interruptible") else None,
        "OverwriteCache": spec.overwrite_cache,
        "EnvironmentVariables": envs or None,
    }


def _offload(body: dict[str, Any], record: ExecutionRecord, options: FlyteWorkflowOptions) -> None:
    """The executor's switches: closure and/or inputs by reference, and the console URL."""
    if options.workflow_closure_reference:
        body["workflowClosureReference"] = options.workflow_closure_reference
        body["spec"] = None
        body["tasks"] = None
        body.pop("subWorkflows", None)
    if options.use_offloaded_inputs:
        body.pop("inputs", None)
        if record.inputs_uri:  # none: propeller starts with no inputs, as from an empty map
            body["offloadedInputs"] = record.inputs_uri
    if options.console_url:
        body["consoleUrl"] = options.console_url
