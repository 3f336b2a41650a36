"""The HTTP/JSON front door: flyteadmin's grpc-gateway routes, served in-process.

One generic endpoint serves every route of ``api_server.routes``: it builds the request message
from the body, the path and the query string the way grpc-gateway v2 does, calls the same
transport-neutral handler the gRPC server calls, and encodes the response or the error
(a ``google.rpc.Status``) with the marshaler grpc-gateway would have picked.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from multidict import CIMultiDict, CIMultiDictProxy, MultiMapping

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.api_server.protojson import to_json
from flyteadmin.api_server.routes import (
    TABLE,
    Route,
    RouteTable,
    descriptor_of,
    resolve_field_path,
)
from flyteadmin.core.errors import AdminError, Code, invalid_argument, quoted
from flyteadmin.core.wire import message_of

log = logging.getLogger(__name__)

# grpc-gateway's runtime.HTTPStatusFromCode. The console turns 404 into "not found" and 401
# into "not authorized", so these numbers are part of the contract.
HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# grpc-gateway sets no limit; aiohttp's default (1 MiB) is too small for workflow closures.
# The API server passes server.max_message_bytes.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024

CORS_METHODS = ("GET", "POST", "DELETE", "HEAD", "PUT", "PATCH")
CORS_HEADERS = ("Content-Type", "flyte-authorization", "authorization")


@dataclass(frozen=True)
class Marshaler:
    content_type: str
    binary: bool
    proto_names: bool  # JSON keys: proto field names (snake_case) or lowerCamelCase JSON names
    discard_unknown: bool  # JSON input: drop unknown fields instead of failing

    def encode(self, message: Message) -> bytes:
        if self.binary:
            return message.SerializeToString()
        return to_json(message, proto_names=self.proto_names)

    def decode(self, data: bytes, target: Message) -> None:
        try:
            if self.binary:
                target.MergeFromString(data)
            else:
                json_format.Parse(data.decode(), target, ignore_unknown_fields=self.discard_unknown)
        except (DecodeError, json_format.ParseError, ValueError, TypeError) as exc:
            raise invalid_argument(f"cannot decode the request body: {quoted(str(exc))}") from None


# flyteadmin registers these two MIME types; everything else gets grpc-gateway's default
# wildcard marshaler (lowerCamelCase, unknown input fields discarded).
JSON = Marshaler("application/json", binary=False, proto_names=True, discard_unknown=False)
PROTO = Marshaler("application/octet-stream", binary=True, proto_names=True, discard_unknown=False)
WILDCARD = Marshaler("application/json", binary=False, proto_names=False, discard_unknown=True)
_BY_MIME = {JSON.content_type: JSON, PROTO.content_type: PROTO}


def select_marshalers(headers: CIMultiDictProxy[str]) -> tuple[Marshaler, Marshaler]:
    """(inbound, outbound) exactly as grpc-gateway's MarshalerForRequest picks them.

    Inbound: the media type of Content-Type, else the wildcard. Outbound: an Accept header
    value that *exactly* equals a registered type, else the inbound one. So "Accept:
    application/json" gives snake_case, but a browser's "application/json, text/plain, */*"
    on a GET gives the wildcard's camelCase; the console's non-entity calls rely on this.
    """
    inbound = WILDCARD
    for value in headers.getall("Content-Type", ()):
        mime = value.split(";", 1)[0].strip().lower()
        if mime in _BY_MIME:
            inbound = _BY_MIME[mime]
            break
    accepted = (_BY_MIME[value] for value in headers.getall("Accept", ()) if value in _BY_MIME)
    return inbound, next(accepted, inbound)


# ---- Request building: body, then path, then query (grpc-gateway's order) -----------------

_INT = re.compile(r"[+-]?[0-9]+")
_T = FieldDescriptor
_INT_RANGE = {
    **dict.fromkeys((_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32), (-(2**31), 2**31 - 1)),
    **dict.fromkeys((_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64), (-(2**63), 2**63 - 1)),
    **dict.fromkeys((_T.TYPE_UINT32, _T.TYPE_FIXED32), (0, 2**32 - 1)),
    **dict.fromkeys((_T.TYPE_UINT64, _T.TYPE_FIXED64), (0, 2**64 - 1)),
}
_BOOL = {
    **dict.fromkeys(("1", "t", "T", "true", "TRUE", "True"), True),  # Go's strconv.ParseBool
    **dict.fromkeys(("0", "f", "F", "false", "FALSE", "False"), False),
}
_WRAPPERS = {
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
}
_JSON_STRING_TYPES = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
}


def _scalar(fd: FieldDescriptor, text: str) -> object:
    """A path or query string as a value of the field's type; ValueError if it is not one."""
    kind = fd.type
    if kind == _T.TYPE_STRING:
        return text
    if kind in _INT_RANGE:
        low, high = _INT_RANGE[kind]
        if _INT.fullmatch(text) and low <= int(text) <= high:
            return int(text)
        raise ValueError(f"expected an integer in [{low}, {high}]")
    if kind in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        return float(text)
    if kind == _T.TYPE_BOOL:
        if text not in _BOOL:
            raise ValueError("expected true or false")
        return _BOOL[text]
    if kind == _T.TYPE_ENUM:  # by name or by number, as grpc-gateway accepts both
        enum = fd.enum_type
        assert enum is not None  # an enum field has its enum's descriptor
        value = enum.values_by_name.get(text)
        if value is None and _INT.fullmatch(text):
            value = enum.values_by_number.get(int(text))
        if value is None:
            raise ValueError(f"not a value of {enum.full_name}")
        return value.number
    if kind == _T.TYPE_BYTES:  # standard base64, else URL-safe
        padded = text + "=" * (-len(text) % 4)
        try:
            return base64.b64decode(padded, validate=True)
        except ValueError:
            return base64.urlsafe_b64decode(padded)
    raise ValueError("this field type cannot be set from a string")


def _set_message(target: Message, text: str) -> None:
    """Well-known types that have a one-string form; other messages cannot come from a string."""
    descriptor = descriptor_of(target)
    name = descriptor.full_name
    if name in _WRAPPERS:  # one field, `value`; the wrapper's class is not known statically
        setattr(target, "value", _scalar(descriptor.fields_by_name["value"], text))  # noqa: B010
    elif name in _JSON_STRING_TYPES:
        try:
            json_format.Parse(json.dumps(text), target)
        except json_format.ParseError as exc:
            raise ValueError(str(exc)) from None
    else:
        raise ValueError(f"a {name} cannot be set from a string")


def _assign(
    message: Message, chain: Sequence[FieldDescriptor], values: list[str], key: str
) -> None:
    """Set the field at the end of ``chain`` (creating parents) from one or more strings."""
    for fd in chain[:-1]:
        message = getattr(message, fd.name)
    leaf = chain[-1]
    try:
        if leaf.is_repeated:
            if leaf.message_type is not None and leaf.message_type.GetOptions().map_entry:
                raise ValueError("map fields are not supported here")
            container = getattr(message, leaf.name)
            for text in values:
                if leaf.type == _T.TYPE_MESSAGE:
                    _set_message(container.add(), text)
                else:
                    container.append(_scalar(leaf, text))
            return
        if len(values) > 1:
            raise ValueError("too many values for a singular field")
        oneof = leaf.containing_oneof
        if oneof is not None and message.WhichOneof(oneof.name) not in (None, leaf.name):
            raise ValueError(f"another field of oneof {oneof.name} is already set")
        if leaf.type == _T.TYPE_MESSAGE:
            _set_message(getattr(message, leaf.name), values[0])
        else:
            setattr(message, leaf.name, _scalar(leaf, values[0]))
    except ValueError as exc:
        shown = quoted(values[0] if len(values) == 1 else ";".join(values))
        raise invalid_argument(
            f"invalid value {shown!r} for field {quoted(key)}: {quoted(str(exc))}"
        ) from None


def _apply_query(route: Route, message: Message, query: MultiMapping[str]) -> None:
    descriptor = descriptor_of(message)
    # Like grpc-gateway's filter: a key under a field bound by the path or the body is skipped.
    bound = [resolve_field_path(descriptor, name) for name in route.variables]
    if route.body:
        bound.append((descriptor.fields_by_name[route.body],))
    for key in dict.fromkeys(query.keys()):
        chain = resolve_field_path(descriptor, key, json_names=True)
        if chain is None:
            # Unknown parameters are ignored, as grpc-gateway v2 does: cache busters and
            # proxy-added parameters must not break requests.
            continue
        if any(chain[: len(prefix)] == prefix for prefix in bound if prefix):
            continue
        _assign(message, chain, query.getall(key), key)


async def build_request(
    route: Route, params: Mapping[str, str], request: web.Request, inbound: Marshaler
) -> Message:
    message = route.request_type()
    if route.body:
        data = await request.read()
        if data:  # an empty body is an empty message (grpc-gateway tolerates EOF)
            target = message if route.body == "*" else getattr(message, route.body)
            inbound.decode(data, target)
    for name, text in params.items():
        chain = resolve_field_path(descriptor_of(message), name)
        assert chain is not None  # route variables are checked when the routes are built
        _assign(message, chain, [text], name)
    if route.body != "*":  # with body "*" grpc-gateway reads no query parameters at all
        _apply_query(route, message, request.rel_url.query)
    return message


# ---- Responses ---------------------------------------------------------------------------


def status_response(
    marshaler: Marshaler,
    code: Code,
    message: str,
    details: Sequence[Message] = (),
    http_status: int | None = None,
) -> web.Response:
    """A ``google.rpc.Status`` body, like grpc-gateway's DefaultHTTPErrorHandler."""
    status = status_pb2.Status(code=int(code), message=message)
    for detail in details:
        status.details.add().Pack(detail)
    try:
        body = marshaler.encode(status)
    except (json_format.Error, TypeError, ValueError):  # a detail JSON cannot resolve: drop them
        del status.details[:]
        body = marshaler.encode(status)
    return web.Response(
        status=http_status or HTTP_STATUS.get(code, 500),
        body=body,
        content_type=marshaler.content_type,
    )


def _unimplemented(route: Route, handlers: Mapping[str, Handler]) -> AdminError:
    # grpc-go's wording, so HTTP and gRPC callers see the same thing.
    if any(key.startswith(f"/{route.service}/") for key in handlers):
        return AdminError(
            Code.UNIMPLEMENTED, f"unknown method {route.method} for service {route.service}"
        )
    return AdminError(Code.UNIMPLEMENTED, f"unknown service {route.service}")


def _endpoint(
    table: RouteTable, handlers: Mapping[str, Handler]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        inbound, outbound = select_marshalers(request.headers)
        raw_path = request.rel_url.raw_path
        found = table.match(request.method, raw_path)
        if found is None:  # grpc-gateway's routing errors
            if table.allowed_verbs(raw_path):
                return status_response(outbound, Code.UNIMPLEMENTED, "Method Not Allowed", (), 405)
            return status_response(outbound, Code.NOT_FOUND, "Not Found", (), 404)
        route, params = found
        try:
            message = await build_request(route, params, request, inbound)
            handler = handlers.get(route.full_method)
            if handler is None:
                raise _unimplemented(route, handlers)
            response = message_of(
                await handler(message, CallContext.from_metadata(request.headers))
            )
            if route.response_body:
                response = getattr(response, route.response_body)
            return web.Response(body=outbound.encode(response), content_type=outbound.content_type)
        except AdminError as exc:
            return status_response(outbound, exc.code, exc.message, exc.details)
        except web.HTTPRequestEntityTooLarge as exc:
            return status_response(
                outbound, Code.RESOURCE_EXHAUSTED, exc.text or "too large", (), 413
            )
        except Exception:
            # A bug, not a client error. Never UNKNOWN: flytekit reads that as an expired token.
            log.exception("%s %s (%s) failed", request.method, raw_path, route.full_method)
            return status_response(outbound, Code.INTERNAL, "internal error")

    return serve


# ---- CORS and the application ---------------------------------------------------------------


def _allow_origin(headers: CIMultiDict[str], origin: str) -> None:
    # The exact origin, never "*": the console sends cookies, and "*" forbids credentials.
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Credentials"] = "true"
    headers.add("Vary", "Origin")


def _cors_middleware(origins: Sequence[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    any_origin, allowed = "*" in origins, frozenset(origins)

    @web.middleware
    async def cors(
        request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        ok = origin is not None and (any_origin or origin in allowed)
        if (
            origin
            and request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
        ):
            if not ok:
                return web.Response(status=403)
            asked = request.headers.get("Access-Control-Request-Headers", "").split(",")
            names = dict.fromkeys([*CORS_HEADERS, *(h.strip() for h in asked if h.strip())])
            response: web.StreamResponse = web.Response(
                headers={
                    "Access-Control-Allow-Methods": ", ".join(CORS_METHODS),
                    "Access-Control-Allow-Headers": ", ".join(names),
                }
            )
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # aiohttp's own 404/405 on extra routes
                if ok and origin is not None:
                    _allow_origin(exc.headers, origin)
                raise
        if ok and origin is not None and not response.prepared:
            _allow_origin(response.headers, origin)
        return response

    return cors


async def _healthcheck(request: web.Request) -> web.Response:
    return web.Response()


def build_http_app(
    handlers: Mapping[str, Handler],
    *,
    cors_origins: Sequence[str] = ("*",),
    extra_routes: Iterable[web.AbstractRouteDef] = (),
    table: RouteTable = TABLE,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    middlewares: Sequence[Callable[..., Awaitable[web.StreamResponse]]] = (),
) -> web.Application:
    """The HTTP app: /healthcheck, ``extra_routes``, then every gateway route of ``table``.

    ``handlers`` maps a gRPC method path ("/flyteidl.service.AdminService/GetTask") to its
    handler; it is read per request, so it may be filled after the app is built. A route
    without a handler answers UNIMPLEMENTED (501).
    """
    # CORS first, so that preflights and rejections (``middlewares``, e.g. auth) carry its headers.
    app = web.Application(
        middlewares=[_cors_middleware(cors_origins), *middlewares], client_max_size=max_body_bytes
    )
    app.router.add_get("/healthcheck", _healthcheck)
    app.add_routes(list(extra_routes))
    # Specific resources win over this catch-all in aiohttp's router.
    app.router.add_route("*", "/{tail:.*}", _endpoint(table, handlers))
    return app
