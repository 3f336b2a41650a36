"""CreateTaskEvent (§6.3) as a pure transition of one task attempt's record."""

from __future__ import annotations

from typing import Any

from flyteidl.admin import task_execution_pb2
from flyteidl.core import catalog_pb2, identifier_pb2
from flyteidl.core.execution_pb2 import TaskLog
from flyteidl.event import event_pb2
from google.protobuf import json_format, struct_pb2

from flyteadmin.core.crmap.task_executions import TaskExecutionRecord
from flyteadmin.core.errors import invalid_argument
from flyteadmin.core.events.common import (
    INLINE,
    TASK_TERMINAL,
    Offload,
    TaskPhase,
    already_recorded,
    already_terminal,
    require_occurred_at,
    set_duration,
    set_outputs,
    updated_time,
)

Phase = TaskPhase
_PENDING = frozenset({Phase.QUEUED, Phase.INITIALIZING})


def validate(event: event_pb2.TaskExecutionEvent) -> None:
    require_occurred_at(event)
    task = event.task_id
    for field in ("project", "domain", "name", "version"):
        if not getattr(task, field):
            raise invalid_argument(f"missing {field}")
    node = event.parent_node_execution_id
    for field in ("project", "domain", "name"):
        if not getattr(node.execution_id, field):
            raise invalid_argument(f"missing {field}")
    if not node.node_id:
        raise invalid_argument("missing node_id")


def task_execution_id(
    event: event_pb2.TaskExecutionEvent,
) -> identifier_pb2.TaskExecutionIdentifier:
    return identifier_pb2.TaskExecutionIdentifier(
        task_id=event.task_id,
        node_execution_id=event.parent_node_execution_id,
        retry_attempt=event.retry_attempt,
    )


def describe(event: event_pb2.TaskExecutionEvent) -> str:
    node, task = event.parent_node_execution_id, event.task_id
    ex = node.execution_id
    return (
        f"project:{ex.project} domain:{ex.domain} name:{ex.name} node_id:{node.node_id} "
        f"task:{task.name}@{task.version} retry_attempt:{event.retry_attempt}"
    )


def check(current: TaskExecutionRecord | None, event: event_pb2.TaskExecutionEvent) -> None:
    if current is None:
        return
    stored, name = current.phase, Phase.Name
    if stored == event.phase and event.phase_version <= current.phase_version:
        raise already_recorded(
            f"have already recorded task execution phase {name(event.phase)} (version: "
            f"{event.phase_version}) for {describe(event)}"
        )
    if stored in TASK_TERMINAL:
        raise already_terminal(
            f"invalid phase change from {name(stored)} to {name(event.phase)} for task "
            f"execution {describe(event)}",
            name(stored),
        )


def apply(
    current: TaskExecutionRecord | None,
    event: event_pb2.TaskExecutionEvent,
    offload: Offload = INLINE,
) -> TaskExecutionRecord:
    check(current, event)
    task = task_execution_pb2.TaskExecution()
    closure = task.closure
    if current is None:
        task.id.CopyFrom(task_execution_id(event))
        closure.created_at.CopyFrom(event.occurred_at)
        closure.logs.extend(event.logs)
        closure.metadata.CopyFrom(_sorted_metadata(event.metadata))
        if event.HasField("custom_info"):
            closure.custom_info.CopyFrom(event.custom_info)
        closure.event_version = event.event_version
        entering_running = event.phase == Phase.RUNNING
    else:
        task.CopyFrom(current.task)
        entering_running = event.phase == Phase.RUNNING and current.phase != Phase.RUNNING
        merged = merge_logs(list(closure.logs), list(event.logs))
        del closure.logs[:]
        closure.logs.extend(filter_logs(merged, event.phase))
        if event.HasField("custom_info"):
            closure.custom_info.CopyFrom(merge_struct(closure.custom_info, event.custom_info))
        changed = current.phase != event.phase
        _merge_metadata(closure.metadata, event.metadata, phase_changed=changed)
        closure.event_version = max(closure.event_version, event.event_version)
    if not task.input_uri:
        if event.HasField("input_uri"):
            task.input_uri = event.input_uri
        elif event.HasField("input_data"):
            task.input_uri = offload.inputs_uri
    closure.phase = event.phase
    closure.updated_at.CopyFrom(updated_time(event))
    if event.task_type:
        closure.task_type = event.task_type
    _add_reasons(closure, event)
    if entering_running and not closure.HasField("started_at"):
        closure.started_at.CopyFrom(event.occurred_at)
    if event.phase in TASK_TERMINAL:
        set_duration(closure, event.occurred_at)
        set_outputs(closure, event, offload)
    return TaskExecutionRecord(task=task, phase_version=event.phase_version)


def _add_reasons(
    closure: task_execution_pb2.TaskExecutionClosure, event: event_pb2.TaskExecutionEvent
) -> None:
    for reason in event.reasons:
        closure.reasons.add(occurred_at=reason.occurred_at, message=reason.reason)
    if event.reasons:
        closure.reason = event.reasons[-1].reason
    if event.reason and event.reason != closure.reason:
        closure.reasons.add(occurred_at=event.occurred_at, message=event.reason)
        closure.reason = event.reason


def merge_logs(old: list[TaskLog], new: list[TaskLog]) -> list[TaskLog]:
    """The new list, plus old entries whose URI and name both differ from every new entry."""
    uris, names = {log.uri for log in new}, {log.name for log in new}
    return list(new) + [log for log in old if log.uri not in uris and log.name not in names]


def filter_logs(logs: list[TaskLog], phase: int) -> list[TaskLog]:
    if phase in TASK_TERMINAL:
        return [log for log in logs if not log.HideOnceFinished]
    if phase in _PENDING:
        return [log for log in logs if log.ShowWhilePending]
    return logs


def merge_struct(old: struct_pb2.Struct, patch: struct_pb2.Struct) -> struct_pb2.Struct:
    """RFC 7386 JSON merge-patch of ``patch`` onto ``old``."""
    merged = _merge_patch(json_format.MessageToDict(old), json_format.MessageToDict(patch))
    out = struct_pb2.Struct()
    out.update(merged if isinstance(merged, dict) else {})
    return out


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _resource_key(resource: event_pb2.ExternalResourceInfo) -> tuple[int, int]:
    return (resource.index, resource.retry_attempt)


def _sorted_metadata(metadata: event_pb2.TaskExecutionMetadata) -> event_pb2.TaskExecutionMetadata:
    out = event_pb2.TaskExecutionMetadata()
    out.CopyFrom(metadata)
    _sort_resources(out)
    return out


def _merge_metadata(
    stored: event_pb2.TaskExecutionMetadata,
    incoming: event_pb2.TaskExecutionMetadata,
    *,
    phase_changed: bool,
) -> None:
    if incoming.generated_name:
        stored.generated_name = incoming.generated_name
    if incoming.plugin_identifier:
        stored.plugin_identifier = incoming.plugin_identifier
    if incoming.resource_pool_info:
        del stored.resource_pool_info[:]
        stored.resource_pool_info.extend(incoming.resource_pool_info)
    if incoming.instance_class:  # DEFAULT (0) leaves the stored class
        stored.instance_class = incoming.instance_class
    by_key = {_resource_key(r): r for r in stored.external_resources}
    for new in incoming.external_resources:
        old = by_key.get(_resource_key(new))
        if old is None:
            added = stored.external_resources.add()
            added.CopyFrom(new)
            by_key[_resource_key(new)] = added
            continue
        old.phase = new.phase
        if new.external_id:
            old.external_id = new.external_id
        if new.cache_status != catalog_pb2.CACHE_DISABLED:
            old.cache_status = new.cache_status
        logs = merge_logs(list(old.logs), list(new.logs))
        if phase_changed:
            logs = filter_logs(logs, new.phase)
        del old.logs[:]
        old.logs.extend(logs)
        if new.HasField("custom_info"):
            old.custom_info.CopyFrom(new.custom_info)
    _sort_resources(stored)


def _sort_resources(metadata: event_pb2.TaskExecutionMetadata) -> None:
    ordered = sorted(metadata.external_resources, key=_resource_key)
    copies = []
    for resource in ordered:
        copy = type(resource)()
        copy.CopyFrom(resource)
        copies.append(copy)
    del metadata.external_resources[:]
    metadata.external_resources.extend(copies)
