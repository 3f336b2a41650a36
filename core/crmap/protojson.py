"""Protobuf <-> the JSON kept in custom resources (proto field names, readable with kubectl)."""

from __future__ import annotations

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


def identifier_from_spec(spec: dict[str, str], resource_type: int) -> identifier_pb2.Identifier:
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
