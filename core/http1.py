"""HTTP/1.1 over kept-alive connections to one server: the transport of the asyncio Kubernetes
client (core/kube.py ``KubeHttp``).

Every write of the control plane is a request to kube-apiserver, so the client's own CPU per
request is paid on every registration, launch and event. aiohttp spent 108-208 µs on one
(request and response objects, header multidicts, URL parsing, payload classes, timers); this
client writes each request as one buffer and parses the answer with llhttp (httptools, the
parser of uvicorn): 50-110 µs (bench/README.md, "The Kubernetes client's transport"). It does only
what kube-apiserver's clients need: one host, a body given as bytes, answers with a
Content-Length or chunked; no HEAD (the parser would wait for the body its length announces),
redirects, cookies, proxies or compression (nothing here asks for them).

A connection carries one request at a time and goes back to the pool when its answer is
complete and the server keeps it open. One that timed out, was cancelled or answered garbage is
closed: an answer may still be on its way, so it can carry nothing else. A kept connection the
server closed while it was idle is noticed by its protocol (``connection_lost``) and never
reused; the remaining race (the server closes just as a request goes out, so no byte of an
answer comes) is retried once on a new connection for the methods that may be repeated, as
aiohttp and urllib3 do. Idle connections are dropped after ``IDLE_SECONDS``, well before
kube-apiserver closes them itself (its ``http.Server`` idle timeout: 90 s, k8s.io/apiserver v0.36).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from urllib.parse import quote

import httptools

from flyteadmin.core import metrics

IDLE_SECONDS = 15.0
"""A connection idle this long is closed rather than reused."""

REPEATABLE = frozenset({"GET", "PUT", "DELETE"})
"""Methods sent again on a new connection when a kept one closed before any answer came (a PUT
carries the resourceVersion it read, so a repeat that did land first is refused, not doubled)."""

# What may not appear in a request target as written (callers quote names; this keeps a stray
# space or non-ASCII character from breaking the request line).
_UNSAFE = re.compile(r"[^\x21-\x7e]")
_SAFE = "/?&=:,;@%+!*'()[]$~#"

Answer = tuple[int, str, bytes]  # status, reason phrase, body


class HttpError(Exception):
    """No answer: the server could not be reached, closed the connection, answered something
    that is not HTTP/1.1, or took longer than the timeout."""


class _Connection(asyncio.Protocol):
    """One connection to the server; one request at a time. Also llhttp's callback object."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.reason = b""
        self.body: list[bytes] = []
        self.answered = False  # a byte of the current answer has arrived
        self.open = True
        self.idle_since = 0.0

    def send(self, data: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.reason, self.body, self.answered = b"", [], False
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        if self.transport.is_closing():  # closed by the server, its connection_lost not run yet
            self.open = False
            waiter.set_exception(HttpError("the server closed the connection"))
        else:
            self.transport.write(data)
        return waiter

    def fail(self, error: BaseException) -> None:
        """End the request in flight with ``error``, and the connection with it."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: the connection's state is unknown
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(HttpError(f"the server's answer is not HTTP/1.1: {exc}"))

    def eof_received(self) -> None:
        self.open = False  # the server closed its side; returning None closes ours

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            detail = f": {exc}" if exc else ""
            self.waiter.set_exception(HttpError(f"the server closed the connection{detail}"))

    # llhttp's callbacks

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        keep = self.parser.should_keep_alive()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            reason = self.reason.decode("latin-1")
            waiter.set_result((self.parser.get_status_code(), reason, b"".join(self.body)))
        if not keep:
            self.close()


class Http1Pool:
    """Up to ``max_connections`` kept-alive connections to ``host``:``port`` (TLS with
    ``ssl_context``), for the event loop it is first used on.

    ``timeout`` bounds a whole request (connecting included); ``connect_timeout`` the
    connection's set-up alone."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        server_hostname: str | None = None,
        max_connections: int = 16,
        timeout: float = 60.0,
        connect_timeout: float | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._ssl = ssl_context
        self._server_hostname = (server_hostname or host) if ssl_context is not None else None
        self._timeout = timeout
        self._connect_timeout = connect_timeout or timeout
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    @staticmethod
    def target(path: str) -> str:
        """``path`` as a request target: quoted where it holds what a request line cannot."""
        return quote(path, safe=_SAFE) if _UNSAFE.search(path) else path

    async def request(self, method: str, data: bytes) -> Answer:
        """Send ``data`` (the whole request: line, headers, body) and return the answer."""
        if self._closed:
            raise HttpError("the client is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        async with self._slots:
            conn = self._kept()
            if conn is not None:
                try:
                    return await self._exchange(loop, conn, data, deadline)
                except HttpError:
                    if conn.answered or method not in REPEATABLE or loop.time() >= deadline:
                        raise
                    # The server closed the kept connection as the request went out.
                    metrics.kube_request_repeated()
            return await self._exchange(loop, await self._connect(loop, deadline), data, deadline)

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, conn: _Connection, data: bytes, deadline: float
    ) -> Answer:
        waiter = conn.send(data)
        expiry = loop.call_at(deadline, self._expire, conn)
        try:
            answer = await waiter
        except BaseException:
            conn.close()  # failed, timed out or cancelled: an answer may still be coming
            raise
        finally:
            expiry.cancel()
        conn.waiter = None
        if conn.open and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        return answer

    def _expire(self, conn: _Connection) -> None:
        conn.fail(HttpError(f"no answer within {self._timeout:g} s"))

    def _kept(self) -> _Connection | None:
        """The most recently used idle connection that is still good (warmest first)."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.open and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.close()
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        timeout = min(self._connect_timeout, max(0.0, deadline - loop.time()))
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self._server_hostname,
                ),
                timeout,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc!r}") from exc
        metrics.kube_connection_opened()
        return conn

    def close(self) -> None:
        """Close the idle connections; those in use close when their answer is in."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
