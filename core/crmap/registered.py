"""Registered entities (task, workflow and launch-plan versions, description entities) <->
custom resources. Each object holds the entity's full id, the digest of its definition (for
the identical-re-registration check) and the admin message's parts as base64 protobuf binary
(``closureProto``, ``specProto``; objects written before hold protobuf JSON, still read)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flyteidl.admin import description_entity_pb2, launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import identifier_pb2
from google.protobuf.message import Message

from flyteadmin.core import crds
from flyteadmin.core.crmap.labels import identity_labels
from flyteadmin.core.crmap.protojson import (
    from_b64,
    id_key,
    identifier_from_spec,
    identifier_to_spec,
    proto_field,
    to_b64,
    to_json,
)
from flyteadmin.core.names import object_name
from flyteadmin.core.store import Body
from flyteadmin.core.timestamps import parse_time, time_text

M = TypeVar("M", bound=Message)
RT = identifier_pb2.ResourceType


@dataclass(frozen=True)
class Registered(Generic[M]):
    """One registered version: the admin message as served, and its definition's digest."""

    message: M
    digest: str
    payload_ref: str = ""
    """Blob-store URI of the full payload when it was too large to keep in the object; then
    ``message`` holds only the light form (core/registration/payloads.py)."""
    created: dt.datetime | None = None
    """Creation time of a kind whose message has none (description entities)."""
    description: description_entity_pb2.DescriptionEntity | None = None
    """A task or workflow version's description entity, kept in the version's object
    (core/registration/descriptions.py)."""

    key: tuple[str, str, str, str] = field(init=False, compare=False)
    """(project, domain, name, version), computed once: lists filter and sort on it for every
    record, and protobuf field reads cost far more than a tuple index."""
    created_at: dt.datetime | None = field(init=False, compare=False)
    """When the version was registered, to the microsecond: the closure's created_at (tasks,
    workflows, launch plans) or ``created``; None for objects written before either existed
    (lists then fall back to the object's creationTimestamp)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", id_key(self.message.id))  # type: ignore[attr-defined]
        closure = getattr(self.message, "closure", None)
        created = self.created
        if closure is not None and closure.HasField("created_at"):
            created = closure.created_at.ToDatetime(tzinfo=dt.UTC)
        object.__setattr__(self, "created_at", created)

    @property
    def id(self) -> identifier_pb2.Identifier:
        ident: identifier_pb2.Identifier = self.message.id  # type: ignore[attr-defined]
        return ident


def registered_name(kind_tag: str, identifier: identifier_pb2.Identifier) -> str:
    p, d, n, v = id_key(identifier)
    return object_name([n, v], kind_tag, p, d, n, v)


def _metadata(identifier: identifier_pb2.Identifier) -> dict[str, Any]:
    return {
        "labels": identity_labels(
            project=identifier.project,
            domain=identifier.domain,
            name=identifier.name,
            version=identifier.version,
        )
    }


def _put_extras(spec: dict[str, Any], value: Registered[Any]) -> None:
    """A task's or workflow's closure reference and description, when it has them."""
    if value.payload_ref:
        spec["closureRef"] = value.payload_ref
    if value.description is not None:
        spec["descriptionProto"] = to_b64(value.description)


def _registered(message: M, spec: dict[str, Any]) -> Registered[M]:
    packed = spec.get("descriptionProto")
    return Registered(
        message,
        spec.get("digest", ""),
        spec.get("closureRef", ""),
        description=(
            None if packed is None else from_b64(description_entity_pb2.DescriptionEntity, packed)
        ),
    )


class TaskCodec:
    """The compiled task is inline, or, when large, in the blob store (``closureRef``) with only
    the light form inline (core/registration/tasks.py)."""

    kind = crds.TASK

    def name(self, value: Registered[task_pb2.Task]) -> str:
        return self.name_of_id(value.id)

    def name_of_id(self, identifier: identifier_pb2.Identifier) -> str:
        return registered_name("task", identifier)

    def encode(self, value: Registered[task_pb2.Task]) -> Body:
        task = value.message
        spec: dict[str, Any] = {
            "id": identifier_to_spec(task.id),
            "digest": value.digest,
            "type": task.closure.compiled_task.template.type,
            "shortDescription": task.short_description,
            "closureProto": to_b64(task.closure),
        }
        _put_extras(spec, value)
        return {"metadata": _metadata(task.id), "spec": spec}

    def decode(self, body: Body) -> Registered[task_pb2.Task]:
        spec = body["spec"]
        task = task_pb2.Task(
            id=identifier_from_spec(spec["id"], RT.TASK),
            closure=proto_field(task_pb2.TaskClosure, spec, "closure"),
            short_description=spec.get("shortDescription", ""),
        )
        return _registered(task, spec)


class WorkflowCodec:
    """The compiled closure is inline, or, when large, in the blob store (``closureRef``) with
    only the light form (interface, created_at) inline."""

    kind = crds.WORKFLOW

    def name(self, value: Registered[workflow_pb2.Workflow]) -> str:
        return self.name_of_id(value.id)

    def name_of_id(self, identifier: identifier_pb2.Identifier) -> str:
        return registered_name("workflow", identifier)

    def encode(self, value: Registered[workflow_pb2.Workflow]) -> Body:
        wf = value.message
        primary = wf.closure.compiled_workflow.primary.template
        spec: dict[str, Any] = {
            "id": identifier_to_spec(wf.id),
            "digest": value.digest,
            "shortDescription": wf.short_description,
            "interface": to_json(primary.interface),  # readable with kubectl
            "closureProto": to_b64(wf.closure),
        }
        _put_extras(spec, value)
        return {"metadata": _metadata(wf.id), "spec": spec}

    def decode(self, body: Body) -> Registered[workflow_pb2.Workflow]:
        spec = body["spec"]
        wf = workflow_pb2.Workflow(
            id=identifier_from_spec(spec["id"], RT.WORKFLOW),
            closure=proto_field(workflow_pb2.WorkflowClosure, spec, "closure"),
            short_description=spec.get("shortDescription", ""),
        )
        return _registered(wf, spec)


SCHEDULE_TYPES = ("NONE", "CRON", "RATE")


def schedule_type(spec: launch_plan_pb2.LaunchPlanSpec) -> str:
    schedule = spec.entity_metadata.schedule
    if schedule.cron_expression or schedule.HasField("cron_schedule"):
        return "CRON"
    if schedule.HasField("rate"):
        return "RATE"
    return "NONE"


class LaunchPlanCodec:
    """``spec.state`` mirrors the activation pointer for kubectl; the truth is the pointer
    (core/registration/launch_plans.py)."""

    kind = crds.LAUNCH_PLAN

    def name(self, value: Registered[launch_plan_pb2.LaunchPlan]) -> str:
        return self.name_of_id(value.id)

    def name_of_id(self, identifier: identifier_pb2.Identifier) -> str:
        return registered_name("launchplan", identifier)

    def encode(self, value: Registered[launch_plan_pb2.LaunchPlan]) -> Body:
        lp = value.message
        return {
            "metadata": _metadata(lp.id),
            "spec": {
                "id": identifier_to_spec(lp.id),
                "digest": value.digest,
                "workflowId": identifier_to_spec(lp.spec.workflow_id),
                "state": launch_plan_pb2.LaunchPlanState.Name(lp.closure.state),
                "scheduleType": schedule_type(lp.spec),
                "specProto": to_b64(lp.spec),
                "closureProto": to_b64(lp.closure),
            },
        }

    def decode(self, body: Body) -> Registered[launch_plan_pb2.LaunchPlan]:
        spec = body["spec"]
        lp = launch_plan_pb2.LaunchPlan(
            id=identifier_from_spec(spec["id"], RT.LAUNCH_PLAN),
            spec=proto_field(launch_plan_pb2.LaunchPlanSpec, spec, "spec"),
            closure=proto_field(launch_plan_pb2.LaunchPlanClosure, spec, "closure"),
        )
        lp.closure.state = launch_plan_pb2.LaunchPlanState.Value(spec.get("state", "INACTIVE"))
        return Registered(lp, spec.get("digest", ""))


class DescriptionCodec:
    kind = crds.DESCRIPTION_ENTITY

    def name(self, value: Registered[description_entity_pb2.DescriptionEntity]) -> str:
        return self.name_of_id(value.id)

    def name_of_id(self, ident: identifier_pb2.Identifier) -> str:
        kind = RT.Name(ident.resource_type)
        return object_name([ident.name, ident.version], "description", kind, *id_key(ident))

    def encode(self, value: Registered[description_entity_pb2.DescriptionEntity]) -> Body:
        entity = value.message
        return {
            "metadata": _metadata(entity.id),
            "spec": {
                "id": identifier_to_spec(entity.id),
                "resourceType": RT.Name(entity.id.resource_type),
                "shortDescription": entity.short_description,
                "entityProto": to_b64(entity),
                **({"createdAt": time_text(value.created)} if value.created else {}),
            },
        }

    def decode(self, body: Body) -> Registered[description_entity_pb2.DescriptionEntity]:
        spec = body["spec"]
        entity = proto_field(description_entity_pb2.DescriptionEntity, spec, "entity")
        entity.id.CopyFrom(identifier_from_spec(spec["id"], RT.Value(spec["resourceType"])))
        return Registered(entity, "", created=parse_time(spec.get("createdAt")))
