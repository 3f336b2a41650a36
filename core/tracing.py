"""Optional OpenTelemetry tracing: a server span per RPC (continuing a caller's W3C
``traceparent``), a client span per Kubernetes API call (which passes ``traceparent`` on, so a
kube-apiserver with tracing on joins the trace), exported over OTLP/HTTP.

Off by default (``tracing.enabled``). The spans are written with ``opentelemetry-api`` (a
dependency of google-cloud-storage already); exporting needs the ``tracing`` extra
(``opentelemetry-sdk`` and the OTLP/HTTP exporter). While tracing is off nothing here creates
a span or touches a context: the hot paths get one shared no-op context manager.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from flyteadmin.core.config import ConfigError, TracingSettings
from flyteadmin.core.metrics import kube_labels

_tracer: Any = None  # an opentelemetry Tracer while tracing is on
_provider: Any = None


def configure(settings: TracingSettings, default_service: str) -> None:
    """Turn tracing on for this process when ``settings.enabled`` (else leave it off)."""
    global _tracer, _provider
    if not settings.enabled:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
    except ImportError as exc:
        raise ConfigError(
            "tracing.enabled needs the tracing extra: pip install 'flyteadmin-k8s[tracing]'"
        ) from exc
    if not 0.0 <= settings.sample_ratio <= 1.0:
        raise ConfigError(f"tracing.sample_ratio must be in [0, 1], got {settings.sample_ratio}")
    shutdown()
    _provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name or default_service}),
        sampler=ParentBasedTraceIdRatio(settings.sample_ratio),
    )
    exporter = OTLPSpanExporter(endpoint=settings.endpoint or None)
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    _tracer = _provider.get_tracer("flyteadmin")


def shutdown() -> None:
    """Export what is buffered and turn tracing off."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


# What the span context managers are while tracing is off: one shared, reusable no-op (a
# generator-based context manager per call would cost microseconds on every RPC).
_OFF = nullcontext()


def rpc_span(
    service: str, method: str, transport: str, carrier: Mapping[str, Any]
) -> AbstractContextManager[Any]:
    """A server span for one RPC, child of the caller's ``traceparent`` in ``carrier``
    (gRPC metadata or HTTP headers); it yields None while tracing is off."""
    return _OFF if _tracer is None else _rpc_span(service, method, transport, carrier)


@contextmanager
def _rpc_span(
    service: str, method: str, transport: str, carrier: Mapping[str, Any]
) -> Iterator[Any]:
    from opentelemetry import propagate, trace

    with _tracer.start_as_current_span(
        f"{service}/{method}",
        context=propagate.extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": transport, "rpc.service": service, "rpc.method": method},
    ) as span:
        yield span


def end_rpc(span: Any, code: str, request_id: str, name: str = "") -> None:
    """Record the outcome; ``name`` renames the span (an HTTP call learns its RPC late)."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    if name:
        service, _, method = name.partition("/")
        span.update_name(name)
        span.set_attributes({"rpc.service": service, "rpc.method": method})
    span.set_attribute("rpc.status", code)
    span.set_attribute("flyteadmin.request_id", request_id)
    if code not in ("OK", "NOT_FOUND", "ALREADY_EXISTS", "INVALID_ARGUMENT"):
        span.set_status(Status(StatusCode.ERROR, code))


def kube_span(
    method: str, path: str, headers: MutableMapping[str, str]
) -> AbstractContextManager[Any]:
    """A client span for one Kubernetes API call; its context goes out in ``headers``."""
    return _OFF if _tracer is None else _kube_span(method, path, headers)


@contextmanager
def _kube_span(method: str, path: str, headers: MutableMapping[str, str]) -> Iterator[Any]:
    from opentelemetry import propagate, trace

    verb, resource = kube_labels(method, path)
    with _tracer.start_as_current_span(
        f"kube {verb} {resource}",
        kind=trace.SpanKind.CLIENT,
        attributes={"http.request.method": method, "k8s.verb": verb, "k8s.resource": resource},
    ) as span:
        propagate.inject(headers)
        yield span


def set_status(span: Any, status: int) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", status)
    if status == 0 or status >= 500:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
