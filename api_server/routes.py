"""The HTTP route table, built at import time from flyteidl's ``google.api.http`` annotations.

flyteadmin serves its gRPC services over HTTP through grpc-gateway; the routes are whatever the
annotations say, so we read them from the descriptors instead of writing them down again. Each
binding (a method's rule and each of its ``additional_bindings``) becomes one ``Route``: the one
place holding verb, path template, body rule, gRPC method path and message classes.

Path templates follow google/api/http.proto::

    Template = "/" Segments [ ":" Verb ] ;  Segment = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;

flyteidl only uses literals and ``{field.path}``, but the other forms cost little.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote

from flyteidl.service import admin_pb2, auth_pb2, dataproxy_pb2, identity_pb2, signal_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

# The services flyteadmin exposes over HTTP. The agent services have annotations too, but they
# are served by agents, not by admin.
SERVICES: tuple[ServiceDescriptor, ...] = (
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
    dataproxy_pb2.DESCRIPTOR.services_by_name["DataProxyService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthMetadataService"],
    identity_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    signal_pb2.DESCRIPTOR.services_by_name["SignalService"],
)

# Segment kinds, ordered by precedence: when several templates match a path, the one whose
# segments are more specific from left to right wins (literal beats variable beats "**").
_LITERAL, _ONE, _MANY = 0, 1, 2

if TYPE_CHECKING:
    from google.protobuf.descriptor_pb2 import MethodOptions
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

# The google.api.http method option. protoc's stub types an extension as a plain
# FieldDescriptor; types-protobuf's Extensions[] wants the extension's own type.
_HTTP = cast("_ExtensionFieldDescriptor[MethodOptions, http_pb2.HttpRule]", annotations_pb2.http)


@dataclass(frozen=True)
class Route:
    verb: str  # GET, POST, PUT, DELETE, PATCH, or a custom verb (upper-cased)
    template: str
    body: str  # "" (no body), "*" (the whole request) or a top-level message field
    response_body: str  # "" (the whole response) or a top-level response field
    full_method: str  # "/flyteidl.service.AdminService/ListProjects": the handler registry key
    request_type: type[Message]
    response_type: type[Message]
    variables: tuple[str, ...]  # field paths bound by the path, group i of pattern is "v<i>"
    specificity: tuple[int, ...]
    pattern: re.Pattern[str] = field(repr=False, compare=False)

    @property
    def service(self) -> str:
        return self.full_method.split("/")[1]

    @property
    def method(self) -> str:
        return self.full_method.rsplit("/", 1)[1]

    def bind(self, raw_path: str) -> dict[str, str] | None:
        """The decoded path variables if ``raw_path`` (still percent-encoded) matches."""
        found = self.pattern.fullmatch(raw_path)
        if found is None:
            return None
        # Decode after matching so that an encoded "/" (%2F) stays inside its segment.
        return {name: unquote(found.group(f"v{i}")) for i, name in enumerate(self.variables)}


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside braces: "a/{b=c/*}/d" -> ["a", "{b=c/*}", "d"]."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char == "{") - (char == "}")
        if char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _segment(segment: str, kinds: list[int]) -> str:
    if segment == "**":
        kinds.append(_MANY)
        return r"[^/]+(?:/[^/]+)*"
    if segment == "*":
        kinds.append(_ONE)
        return r"[^/]+"
    if not segment or any(char in segment for char in "{}*=:"):
        raise ValueError(f"bad path segment {segment!r}")
    kinds.append(_LITERAL)
    return re.escape(segment)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...], tuple[int, ...]]:
    """A path template -> (regex over the raw path, variable field paths, specificity)."""
    if not template.startswith("/"):
        raise ValueError(f"path template must start with '/': {template!r}")
    segments = _split_top(template[1:], "/")
    last = _split_top(segments[-1], ":")
    if len(last) > 2:
        raise ValueError(f"bad verb in path template {template!r}")
    segments[-1], verb = last[0], last[1] if len(last) == 2 else ""
    pieces: list[str] = []
    variables: list[str] = []
    kinds: list[int] = []
    for segment in segments:
        if not segment.startswith("{"):
            pieces.append(_segment(segment, kinds))
            continue
        if not segment.endswith("}"):
            raise ValueError(f"bad variable {segment!r} in {template!r}")
        name, _, sub = segment[1:-1].partition("=")
        inner = "/".join(_segment(part, kinds) for part in (sub or "*").split("/"))
        pieces.append(f"(?P<v{len(variables)}>{inner})")
        variables.append(name)
    regex = "/" + "/".join(pieces) + (re.escape(":" + verb) if verb else "")
    return re.compile(regex), tuple(variables), tuple(kinds)


def is_singular_message(fd: FieldDescriptor) -> bool:
    return fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.is_repeated


def descriptor_of(message: Message) -> Descriptor:
    """``message.DESCRIPTOR``: types-protobuf types it as either implementation's descriptor
    (pure Python or upb), which have one interface (and are one class at run time)."""
    return cast(Descriptor, message.DESCRIPTOR)


def resolve_field_path(
    descriptor: Descriptor, dotted: str, *, json_names: bool = False
) -> tuple[FieldDescriptor, ...] | None:
    """``"sort_by.key"`` -> the chain of fields, or None when it names nothing.

    Only singular message fields can be walked through. With ``json_names``, lowerCamelCase
    names are accepted too (grpc-gateway looks up query keys both ways).
    """
    chain: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for part in dotted.split("."):
        if current is None:
            return None
        fd = current.fields_by_name.get(part)
        if fd is None and json_names:
            fd = next((f for f in current.fields if f.json_name == part), None)
        if fd is None:
            return None
        chain.append(fd)
        current = fd.message_type if is_singular_message(fd) else None
    return tuple(chain)


def _route(
    service: ServiceDescriptor, method: MethodDescriptor, binding: http_pb2.HttpRule
) -> Route:
    kind = binding.WhichOneof("pattern")
    if kind is None:
        raise ValueError(f"{method.full_name}: http rule without a pattern")
    if kind == "custom":
        verb, template = binding.custom.kind.upper(), binding.custom.path
    else:
        verb, template = kind.upper(), getattr(binding, kind)
    pattern, variables, specificity = compile_template(template)
    request = method.input_type
    # Fail at start-up, not on the first request, if an annotation names no field.
    for name in variables:
        if resolve_field_path(request, name) is None:
            raise ValueError(f"{method.full_name}: {template} binds unknown field {name}")
    # A body or response_body field must be a message: that is what a marshaler can encode.
    for name, message in ((binding.body, request), (binding.response_body, method.output_type)):
        fd = message.fields_by_name.get(name)
        if name not in ("", "*") and (fd is None or not is_singular_message(fd)):
            raise ValueError(f"{method.full_name}: unsupported body field {name!r}")
    return Route(
        verb=verb,
        template=template,
        body=binding.body,
        response_body=binding.response_body,
        full_method=f"/{service.full_name}/{method.name}",
        request_type=GetMessageClass(request),
        response_type=GetMessageClass(method.output_type),
        variables=variables,
        specificity=specificity,
        pattern=pattern,
    )


def build_routes(services: Iterable[ServiceDescriptor] = SERVICES) -> list[Route]:
    """Every HTTP binding of every method of ``services``, most specific first."""
    routes: list[Route] = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(_HTTP):
                continue  # gRPC only, e.g. SignalService.GetOrCreateSignal
            rule = options.Extensions[_HTTP]
            # additional_bindings cannot nest (http.proto), so one level is all there is.
            for binding in (rule, *rule.additional_bindings):
                routes.append(_route(service, method, binding))
    return sorted(routes, key=lambda route: route.specificity)


class RouteTable:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = sorted(routes, key=lambda route: route.specificity)
        self._by_verb: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_verb.setdefault(route.verb, []).append(route)

    def match(self, verb: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The most specific route for ``verb`` matching the percent-encoded ``raw_path``."""
        for route in self._by_verb.get(verb.upper(), ()):
            params = route.bind(raw_path)
            if params is not None:
                return route, params
        return None

    def allowed_verbs(self, raw_path: str) -> set[str]:
        """Verbs that have a route for this path (tells 405 from 404)."""
        return {route.verb for route in self.routes if route.pattern.fullmatch(raw_path)}


ROUTES: list[Route] = build_routes()
TABLE = RouteTable(ROUTES)


def match(verb: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    return TABLE.match(verb, raw_path)
