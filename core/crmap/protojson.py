"""Protobuf <-> what custom resources keep of it.

Two forms. Rarely written kinds keep proto JSON (proto field names, readable with kubectl). The
kinds written on every event (executions, node and task executions) keep their proto payloads as
``<field>Proto``: protobuf binary in base64, one opaque string. kube-apiserver then neither walks
nor field-tracks the payload's inside: measured with ``bench/apiserver_writes.py``, a node
execution costs it ~40% less CPU per write and half the stored bytes (docs/storage.md), and
encoding is several times cheaper here. Readers accept both forms (objects written before).
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar

from flyteidl.core import identifier_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


def to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def from_json(cls: type[M], data: dict[str, Any] | None) -> M:
    message = cls()
    if data:
        json_format.ParseDict(data, message, ignore_unknown_fields=True)
    return message


def to_b64(message: Message) -> str:
    """Protobuf binary in base64 (deterministic, so equal messages give equal text)."""
    return base64.b64encode(message.SerializeToString(deterministic=True)).decode("ascii")


def from_b64(cls: type[M], text: str) -> M:
    return cls.FromString(base64.b64decode(text))


def proto_field(cls: type[M], container: dict[str, Any], field: str) -> M:
    """``container[field + "Proto"]`` (binary), else the older JSON form ``container[field]``."""
    packed = container.get(field + "Proto")
    if packed is not None:
        return from_b64(cls, packed)
    return from_json(cls, container.get(field))


def identifier_to_spec(identifier: identifier_pb2.Identifier) -> dict[str, str]:
    spec = {
        "project": identifier.project,
        "domain": identifier.domain,
        "name": identifier.name,
        "version": identifier.version,
    }
    if identifier.org:
        spec["org"] = identifier.org
    return spec


def identifier_from_spec(
    spec: dict[str, str], resource_type: identifier_pb2.ResourceType
) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=resource_type,
        project=spec.get("project", ""),
        domain=spec.get("domain", ""),
        name=spec.get("name", ""),
        version=spec.get("version", ""),
        org=spec.get("org", ""),
    )


def id_key(identifier: identifier_pb2.Identifier) -> tuple[str, str, str, str]:
    return (identifier.project, identifier.domain, identifier.name, identifier.version)
