"""Logging: the process's log setup (text or JSON lines) and the fields of the RPC in progress.

The door that receives an RPC (api_server/telemetry.py) puts a ``RequestContext`` in
``REQUEST`` for the duration of the call; every log record made meanwhile, by any logger, carries
its fields (request id, RPC, project, domain, execution), because a filter on the handler copies
them onto the record. contextvars follow the call through ``await`` and ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from flyteadmin.core.config import ConfigError, LoggingSettings

ACCESS_LOGGER = "flyteadmin.access"
FIELDS = ("request_id", "rpc", "project", "domain", "execution")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Described:
    """A field of ``RequestContext`` that its describers fill in: reading it runs them first."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}"

    def __get__(self, context: RequestContext | None, owner: type | None = None) -> Any:
        if context is None:  # on the class
            return self
        return getattr(context._described(), self._slot)

    def __set__(self, context: RequestContext, value: str) -> None:
        setattr(context, self._slot, value)


class RequestContext:
    """What the log lines of one RPC carry; filled in as the call learns it.

    ``rpc``: ``<service>/<method>`` (``AdminService/GetExecution``), or the HTTP route template.
    ``execution``: the execution's name, when the RPC names one. ``code``: the status code name
    a handler failed with (set by the handler wrapper). Project, domain and execution are read
    from the call's messages by the describers given to ``describe_later``, when something
    first asks for them: most calls write no log line, and reading them costs microseconds."""

    __slots__ = ("request_id", "rpc", "code", "_project", "_domain", "_execution", "_later")

    def __init__(
        self,
        request_id: str,
        rpc: str = "",
        project: str = "",
        domain: str = "",
        execution: str = "",
        code: str = "",
    ) -> None:
        self.request_id, self.rpc, self.code = request_id, rpc, code
        self._project, self._domain, self._execution = project, domain, execution
        self._later: list[Callable[[RequestContext], None]] | None = None

    def describe_later(self, describe: Callable[[RequestContext], None]) -> None:
        """Call ``describe(self)`` (which sets project, domain, execution) before any of them
        is next read; describers run in the order given."""
        if self._later is None:
            self._later = [describe]
        else:
            self._later.append(describe)

    def _described(self) -> RequestContext:
        later, self._later = self._later, None
        for describe in later or ():
            describe(self)
        return self

    project = _Described()
    domain = _Described()
    execution = _Described()


REQUEST: ContextVar[RequestContext | None] = ContextVar("flyteadmin_request", default=None)


def current_request_id() -> str:
    context = REQUEST.get()
    return context.request_id if context is not None else ""


class _RequestFields(logging.Filter):
    """Copies the current RPC's fields onto every record (empty outside an RPC)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = REQUEST.get()
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, getattr(context, name) if context is not None else "")
        return True


class TextFormatter(logging.Formatter):
    """One line per record; the RPC's non-empty fields follow the message as ``key=value``."""

    def __init__(self, worker: int | None = None) -> None:
        where = "" if worker is None else f" worker{worker}"
        super().__init__(_TEXT_FORMAT.replace("%(asctime)s", "%(asctime)s" + where))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = [f"{n}={getattr(record, n)}" for n in FIELDS if getattr(record, n, "")]
        if not pairs:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} [{' '.join(pairs)}]{newline}{rest}"


_PLAIN = (str, int, float, bool, type(None), list, dict)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, the RPC's non-empty fields,
    ``extra`` fields with plain values (Kopf's ``k8s_ref`` of the object a handler works on;
    objects such as Kopf's settings are left out), and ``exc_info`` (the traceback text)."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
            static_fields={} if worker is None else {"worker": worker},
            json_ensure_ascii=False,
            json_default=str,  # anything odd nested in a plain value
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {
            key: value
            for key, value in log_data.items()
            if isinstance(value, _PLAIN) and (value or key not in FIELDS)
        }


_handler: logging.Handler | None = None


def _level(name: str, where: str) -> int:
    level = logging.getLevelNamesMapping().get(name.upper())
    if level is None:
        raise ConfigError(f"{where}: unknown log level {name!r}")
    return level


def configure(
    settings: LoggingSettings,
    level: str | None = None,
    stream: TextIO | None = None,
    worker: int | None = None,
) -> None:
    """Install this process's log handler (on ``stream``, default stderr) per ``settings``;
    ``level`` (the command line's ``--log-level``) wins over ``settings.level``; ``worker``
    (an API-server worker process) is on every line. Calling it again replaces the handler it
    installed before and leaves other handlers alone."""
    global _handler
    if settings.format not in ("text", "json"):
        raise ConfigError(f"logging.format: expected text or json, got {settings.format!r}")
    root_level = _level(level or settings.level, "logging.level")
    levels = {n: _level(v, f"logging.levels.{n}") for n, v in settings.levels.items()}
    handler = logging.StreamHandler(stream or sys.stderr)
    json_lines = settings.format == "json"
    handler.setFormatter(JsonLineFormatter(worker) if json_lines else TextFormatter(worker))
    handler.addFilter(_RequestFields())
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    _handler = handler
    root.setLevel(root_level)
    logging.captureWarnings(True)  # Python warnings as log records too: JSON lines stay JSON
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.NOTSET if settings.access_log else logging.WARNING)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def remove() -> None:
    """Take away the handler ``configure`` installed (embedding programs, tests)."""
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler = None
