"""What both doors record about every RPC: a request id, metrics, an access log line, a trace.

- ``grpc_telemetry`` (gRPC, the outermost decoration of each method) and
  ``telemetry_middleware`` (HTTP, before authentication) give each call a request id (the
  caller's ``x-request-id``, else a new one), return it (gRPC trailing metadata, HTTP header
  ``X-Request-Id``), put a ``core.logs.RequestContext`` in place for the call's log lines,
  count and time the call (core/metrics.py), write one access log line, and open a span when
  tracing is on.
- ``observe`` wraps every handler of the registry, which both doors call: it fills in the RPC,
  project, domain and execution of the context from the request (and the response, e.g.
  CreateExecution's new id), and records the status code a handler fails with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from typing import Any

import grpc
from aiohttp import web
from flyteidl.core import identifier_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from flyteadmin.api_server.auth.authorization import DOMAIN, PROJECT, RULES, locate
from flyteadmin.api_server.context import (
    REQUEST_ID_HEADER,
    REQUEST_ID_KEY,
    CallContext,
    Handler,
    Response,
    metadata_of,
    new_request_id,
)
from flyteadmin.api_server.gateway import HTTP_STATUS
from flyteadmin.api_server.routes import TABLE, descriptor_of
from flyteadmin.api_server.unary import (
    AioContext,
    MethodHandler,
    behaviour_of,
    rebuilt,
)
from flyteadmin.core import metrics, tracing
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.logs import ACCESS_LOGGER, REQUEST, RequestContext

GRPC, HTTP = "grpc", "http"
access_log = logging.getLogger(ACCESS_LOGGER)

# HTTP status -> the gRPC code name it most likely stands for, for responses that no handler
# produced (routing errors, authentication): grpc-gateway's table read backwards.
_CODE_OF_STATUS: dict[int, str] = {405: "UNIMPLEMENTED", 413: "RESOURCE_EXHAUSTED"}
for _code, _status in HTTP_STATUS.items():
    if _code not in (Code.UNKNOWN, Code.DATA_LOSS, Code.FAILED_PRECONDITION, Code.ABORTED):
        _CODE_OF_STATUS.setdefault(_status, _code.name)


MAX_REQUEST_ID = 128  # a caller's id goes into every log line: keep it bounded


def request_id(given: str | None) -> str:
    """The caller's request id (trimmed), else a new one in flyteadmin's format."""
    return (given or "").strip()[:MAX_REQUEST_ID] or new_request_id()


def code_of_status(status: int) -> str:
    return _CODE_OF_STATUS.get(status) or ("OK" if status < 400 else "UNKNOWN")


def _split(full_method: str) -> tuple[str, str]:
    """``/flyteidl.service.AdminService/GetTask`` -> ``("flyteidl.service.AdminService",
    "GetTask")``."""
    service, _, method = full_method.lstrip("/").partition("/")
    return service, method


def _finish(
    context: RequestContext,
    meter: metrics.RpcMeter,
    transport: str,
    code: str,
    started: float,
    span: Any,
) -> None:
    seconds = time.monotonic() - started
    meter.finished(code, seconds)
    if span is not None:
        tracing.end_rpc(span, code, context.request_id, context.rpc)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "%s %s %s %.1fms",
            transport,
            context.rpc,
            code,
            seconds * 1000,
            extra={"transport": transport, "code": code, "duration_ms": round(seconds * 1000, 3)},
        )


# ---------------------------------------------------------------------------- gRPC


_NO_CARRIER: dict[str, str] = {}


def _given_request_id(metadata: Any) -> str | None:
    """The caller's ``x-request-id`` (grpc gives keys in lower case), without a dict of all."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str):
            return value
    return None


def grpc_telemetry(full_method: str, handler: MethodHandler) -> MethodHandler:
    """The decoration (api_server/unary.py) that gives every unary RPC, flyteidl's and health's,
    its request id, metrics, access log line and span; reflection streams are left alone.
    Everything a call needs is resolved here, once per method: driven directly, a call spends
    about 5 µs in it (bench/README.md, "The cost of telemetry")."""
    inner = behaviour_of(handler)
    if inner is None:
        return handler
    service, method = _split(full_method)
    rpc = full_method[1:]
    meter = metrics.rpc_meter(service, method, GRPC)
    in_flight = meter.in_flight
    deserialize, serialize = handler.request_deserializer, handler.response_serializer

    # Sizes come from the bytes grpc reads and writes, so nothing is serialized twice.
    def read(data: bytes) -> Any:
        meter.request_bytes(len(data))
        return deserialize(data) if deserialize else data

    def write(message: Any) -> bytes:
        data = serialize(message) if serialize else message
        meter.response_bytes(len(data))
        return data

    async def behaviour(request: Any, context: AioContext) -> Any:
        metadata = context.invocation_metadata()
        call = RequestContext(request_id(_given_request_id(metadata)), rpc=rpc)
        token = REQUEST.set(call)
        in_flight.add(1)
        started, code = time.monotonic(), "OK"
        carrier = metadata_of(metadata) if tracing.enabled() else _NO_CARRIER
        with tracing.rpc_span(service, method, GRPC, carrier) as span:
            try:
                # In the trailers: they cost no extra write (initial metadata would). A
                # failed call's status carries it too (grpc_server.status_of).
                context.set_trailing_metadata(((REQUEST_ID_KEY, call.request_id),))
                return await inner(request, context)
            except asyncio.CancelledError:
                code = "CANCELLED"  # the caller went away
                raise
            except BaseException:
                code = "INTERNAL"  # unless the call was aborted with a status (below)
                raise
            finally:
                aborted = context.code()  # None unless aborted (every error is an abort)
                if isinstance(aborted, grpc.StatusCode):
                    code = aborted.name
                _finish(call, meter, GRPC, code, started, span)
                REQUEST.reset(token)

    return rebuilt(handler, behaviour, deserializer=read, serializer=write)


# ---------------------------------------------------------------------------- HTTP


def _http_rpc(request: web.Request) -> str:
    """The RPC an HTTP request is routed to (``service/method``), else ``http/<route>``:
    a bounded label either way (the catch-all that matched no gateway route is ``http/-``)."""
    found = TABLE.match(request.method, request.rel_url.raw_path)
    if found is not None:
        return found[0].full_method.lstrip("/")
    info = request.match_info.route.resource
    canonical = info.canonical if info is not None else ""
    if not canonical or "{tail" in canonical:
        return "http/-"
    return "http" + canonical


def _body_size(response: web.StreamResponse) -> int | None:
    body = getattr(response, "body", None)
    return len(body) if isinstance(body, bytes | bytearray) else None


@web.middleware
async def telemetry_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    call = RequestContext(request_id(request.headers.get(REQUEST_ID_HEADER)))
    token = REQUEST.set(call)
    metrics.rpc_started(HTTP)
    started, status, response = time.monotonic(), 500, None
    with tracing.rpc_span("http", "-", HTTP, request.headers) as span:
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:  # (a streamed response has sent its headers)
                response.headers[REQUEST_ID_HEADER] = call.request_id
            return response
        except web.HTTPException as exc:  # aiohttp's own answers (404/405 of extra routes)
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = call.request_id
            raise
        finally:
            if not call.rpc:
                call.rpc = _http_rpc(request)
            meter = metrics.rpc_meter(*_split(call.rpc), HTTP)
            if request.content_length is not None:
                meter.request_bytes(request.content_length)
            if response is not None and (size := _body_size(response)) is not None:
                meter.response_bytes(size)
            code = call.code if call.code and status >= 400 else code_of_status(status)
            _finish(call, meter, HTTP, code, started, span)
            REQUEST.reset(token)


# ---------------------------------------------------------------------------- handlers

_EXECUTION_ID = "flyteidl.core.WorkflowExecutionIdentifier"


@cache
def _execution_paths(descriptor: Descriptor, depth: int = 4) -> tuple[tuple[str, ...], ...]:
    """Field paths (shortest first) from a message type to a WorkflowExecutionIdentifier,
    through singular message fields only; computed once per type."""
    found: list[tuple[str, ...]] = []

    def walk(d: Descriptor, prefix: tuple[str, ...], left: int) -> None:
        for fd in d.fields:
            if fd.message_type is None or fd.is_repeated:
                continue
            path = (*prefix, fd.name)
            if fd.message_type.full_name == _EXECUTION_ID:
                found.append(path)
            elif left > 1:
                walk(fd.message_type, path, left - 1)

    walk(descriptor, (), depth)
    return tuple(sorted(found, key=len))


def execution_of(message: Message) -> identifier_pb2.WorkflowExecutionIdentifier | None:
    """The first WorkflowExecutionIdentifier with a name that ``message`` holds, if any."""
    for path in _execution_paths(descriptor_of(message)):
        holder = message
        for name in path[:-1]:
            if not holder.HasField(name):
                break
            holder = getattr(holder, name)
        else:
            ident: identifier_pb2.WorkflowExecutionIdentifier = getattr(holder, path[-1])
            if holder.HasField(path[-1]) and ident.name:
                return ident
    return None


def _describe(call: RequestContext, full_method: str, message: Message) -> None:
    rule = RULES.get(full_method)
    if rule is not None and rule.scope in (DOMAIN, PROJECT) and not call.project:
        try:
            call.project, call.domain = locate(rule, message)
        except (AttributeError, ValueError):
            pass  # a malformed request: validation reports it
    if not call.execution and (ident := execution_of(message)) is not None:
        call.execution = ident.name
        call.project = call.project or ident.project
        call.domain = call.domain or ident.domain


def observe(registry: Mapping[str, Handler]) -> dict[str, Handler]:
    """Every handler of ``registry`` wrapped to describe its call in the current context."""
    return {method: _observed(method, handler) for method, handler in registry.items()}


def _observed(full_method: str, handler: Handler) -> Handler:
    rpc = full_method.lstrip("/")

    async def run(request: Message, ctx: CallContext) -> Response:
        call = REQUEST.get()
        if call is None:  # called directly (tests, tools): nothing to describe
            return await handler(request, ctx)
        call.rpc = rpc
        # Read from the messages only if a log line asks (core/logs.py RequestContext).
        call.describe_later(lambda c: _describe(c, full_method, request))
        try:
            response = await handler(request, ctx)
        except AdminError as error:
            call.code = error.code.name
            raise
        except Exception:
            call.code = Code.INTERNAL.name
            raise
        if isinstance(response, Message):  # not a list (core/wire.py)

            def from_response(c: RequestContext) -> None:
                if not c.execution:  # e.g. CreateExecution's new id
                    _describe(c, full_method, response)

            call.describe_later(from_response)
        return response

    return run
