"""The Kubernetes client's transport (core/http1.py) against scripted HTTP servers on 127.0.0.1:
answers with a length or chunked, kept and closed connections, the retry of a repeatable
request on a connection the server closed, timeouts, cancellation and the connection limit.
On uvloop, the product's event loop. (Against kube-apiserver itself, over TLS, every integration
test goes through it.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import uvloop
from prometheus_client import REGISTRY

from flyteadmin.core import http1

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a": "b"}\n'
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """A server on 127.0.0.1 whose connections run ``script``; counts what it saw."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self.script(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        request = head + (await reader.readexactly(length) if length else b"")
        self.requests.append(request)
        return request

    def pool(self, **options: float) -> http1.Http1Pool:
        return http1.Http1Pool("127.0.0.1", self.port, None, **options)  # type: ignore[arg-type]


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def request(method: str = "GET", path: str = "/x", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\n{length}\r\n".encode() + body


def answering(answer: bytes, before: Callable[[Server], Awaitable[None]] | None = None) -> Script:
    """Answer every request with ``answer``, after ``before(server)`` when given."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        while True:
            await s.read_request(reader)
            if before is not None:
                await before(s)
            writer.write(answer)
            await writer.drain()

    return script


def run(coro: Awaitable[None]) -> None:
    uvloop.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


def test_answers_with_a_length_and_chunked_are_read_whole_over_one_kept_connection():
    chunked = (
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )

    async def main() -> None:
        answers = iter([OK, chunked, OK])

        async def script(reader, writer, s):
            while True:
                await s.read_request(reader)
                writer.write(next(answers))

        async with Server(script) as server:
            pool = server.pool()
            assert await pool.request("GET", request()) == (200, "OK", b'{"a": "b"}\n')
            assert await pool.request("POST", request("POST", body=b"{}")) == (
                404,
                "Not Found",
                b"hello world",
            )
            assert (await pool.request("GET", request()))[0] == 200
            pool.close()
            assert server.connections == 1
            assert server.requests[1].endswith(b"\r\n\r\n{}")

    run(main())


def test_an_answer_that_closes_the_connection_is_not_reused():
    async def main() -> None:
        closing = OK.replace(b"Content-Length", b"Connection: close\r\nContent-Length")
        async with Server(answering(closing)) as server:
            pool = server.pool()
            for _ in range(3):
                assert (await pool.request("GET", request()))[0] == 200
            pool.close()
            assert server.connections == 3

    run(main())


def test_a_connection_the_server_closed_while_idle_is_replaced():
    async def main() -> None:
        async def script(reader, writer, s):
            await s.read_request(reader)
            writer.write(OK)
            await writer.drain()  # then the server closes it (idle timeout)

        async with Server(script) as server:
            pool = server.pool()
            for _ in range(3):
                assert (await pool.request("POST", request("POST", body=b"{}")))[0] == 200
                await asyncio.sleep(0.05)  # the close reaches the client's protocol
            pool.close()
            assert server.connections == 3

    run(main())


@pytest.mark.parametrize("method, repeated", [("GET", True), ("PUT", True), ("POST", False)])
def test_a_kept_connection_closed_as_the_request_goes_out(method, repeated):
    """The server closes a kept connection on reading the next request, without answering:
    a repeatable method is sent again on a new connection; a POST fails (it may have landed)."""

    async def main() -> None:
        async def script(reader, writer, s):
            await s.read_request(reader)
            writer.write(OK)
            await writer.drain()
            await s.read_request(reader)  # the second one on this connection: closed unanswered

        async with Server(script) as server:
            pool = server.pool()
            opened = counted("flyteadmin_kube_connections_opened_total")
            repeats = counted("flyteadmin_kube_requests_repeated_total")
            assert (await pool.request(method, request(method)))[0] == 200
            if repeated:
                assert (await pool.request(method, request(method)))[0] == 200
                assert server.connections == 2 and len(server.requests) == 3
                assert counted("flyteadmin_kube_connections_opened_total") == opened + 2
                assert counted("flyteadmin_kube_requests_repeated_total") == repeats + 1
            else:
                with pytest.raises(http1.HttpError, match="closed the connection"):
                    await pool.request(method, request(method))
                assert server.connections == 1 and len(server.requests) == 2
                assert counted("flyteadmin_kube_requests_repeated_total") == repeats
                assert (await pool.request(method, request(method)))[0] == 200  # a new one
            pool.close()

    run(main())


@pytest.mark.parametrize("method, repeated", [("GET", True), ("POST", False)])
def test_a_kept_connection_found_closing_when_a_request_goes_out(method, repeated):
    """The transport is closing (the server's close arrived) but the protocol has not been told
    yet: the call goes on as if the server had closed the connection unanswered."""

    async def main() -> None:
        async with Server(answering(OK)) as server:
            pool = server.pool()
            assert (await pool.request(method, request(method)))[0] == 200
            kept = pool._idle[0]
            assert kept.transport is not None
            kept.transport.close()  # closing, and the connection not yet marked closed
            if repeated:
                assert (await pool.request(method, request(method)))[0] == 200
                assert server.connections == 2
            else:
                with pytest.raises(http1.HttpError, match="closed the connection"):
                    await pool.request(method, request(method))
            assert len(server.requests) == 2 if repeated else 1
            pool.close()

    run(main())


def test_no_answer_in_time_fails_the_request_and_drops_the_connection():
    async def main() -> None:
        async def hold(s: Server) -> None:
            if s.connections == 1:
                await asyncio.sleep(60)  # the first connection never answers

        async with Server(answering(OK, hold)) as server:
            pool = server.pool(timeout=0.3)
            with pytest.raises(http1.HttpError, match="no answer within 0.3 s"):
                await pool.request("GET", request())
            assert (await pool.request("GET", request()))[0] == 200
            assert server.connections == 2
            pool.close()

    run(main())


def test_a_cancelled_request_drops_its_connection_and_the_pool_goes_on():
    async def main() -> None:
        gate = asyncio.Event()

        async def hold(s: Server) -> None:
            if s.connections == 1:
                await gate.wait()

        async with Server(answering(OK, hold)) as server:
            pool = server.pool()
            call = asyncio.ensure_future(pool.request("GET", request()))
            while not server.requests:
                await asyncio.sleep(0.01)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            gate.set()  # its late answer reaches no one
            assert (await pool.request("GET", request()))[0] == 200
            assert server.connections == 2
            pool.close()

    run(main())


def test_requests_beyond_the_connection_limit_wait_for_a_connection():
    async def main() -> None:
        async def slowly(s: Server) -> None:
            await asyncio.sleep(0.02)

        async with Server(answering(OK, slowly)) as server:
            pool = server.pool(max_connections=3)
            answers = await asyncio.gather(*(pool.request("GET", request()) for _ in range(12)))
            assert [a[0] for a in answers] == [200] * 12
            assert server.most_open == 3
            pool.close()

    run(main())


def test_an_answer_that_is_not_http_fails_the_request():
    async def main() -> None:
        async def script(reader, writer, s):
            await s.read_request(reader)
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

        async with Server(script) as server:
            pool = server.pool()
            with pytest.raises(http1.HttpError, match="not HTTP/1.1"):
                await pool.request("GET", request())
            pool.close()

    run(main())


def test_a_server_that_is_not_there():
    async def main() -> None:
        async with Server(answering(OK)) as server:
            port = server.port
        pool = http1.Http1Pool("127.0.0.1", port, None)
        with pytest.raises(http1.HttpError, match=f"cannot connect to 127.0.0.1:{port}"):
            await pool.request("GET", request())

    run(main())


def test_idle_connections_are_dropped_after_the_idle_period(monkeypatch):
    async def main() -> None:
        async with Server(answering(OK)) as server:
            pool = server.pool()
            await pool.request("GET", request())
            await pool.request("GET", request())
            assert server.connections == 1
            monkeypatch.setattr(http1, "IDLE_SECONDS", 0.0)
            await pool.request("GET", request())
            assert server.connections == 2
            pool.close()

    run(main())


def test_request_targets_keep_what_callers_quoted_and_quote_the_rest():
    assert http1.Http1Pool.target("/api/v1/namespaces?limit=5&continue=a%3Db") == (
        "/api/v1/namespaces?limit=5&continue=a%3Db"
    )
    assert http1.Http1Pool.target("/x/a b/é") == "/x/a%20b/%C3%A9"
