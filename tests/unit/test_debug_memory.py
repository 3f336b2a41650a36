"""/debug/memory on the metrics port: off (409) until tracing is started (POST), then the
largest allocation sites and what grew since the first GET."""

from __future__ import annotations

import asyncio
import tracemalloc

import aiohttp

from flyteadmin.core.config import MetricsSettings, ServerSettings, Settings
from flyteadmin.metrics_server import MetricsServer

_kept: list[bytes] = []


def _allocate_here(count: int) -> None:
    _kept.extend(bytes(4096) + str(i).encode() for i in range(count))


async def _get(url: str, method: str = "GET") -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        return response.status, await response.text()


def test_memory_sites_when_tracing():
    settings = Settings(
        server=ServerSettings(host="127.0.0.1"), metrics=MetricsSettings(port=0, host="127.0.0.1")
    )

    async def scenario() -> None:
        server = MetricsServer(settings)
        await server.start()
        url = f"http://127.0.0.1:{server.port}/debug/memory"
        try:
            status, text = await _get(url)
            assert status == 409 and "POST /debug/memory" in text
            assert (await _get(url + "?frames=x", "POST"))[0] == 400
            assert (await _get(url + "?frames=4", "POST")) == (
                200,
                "tracemalloc started (4 frames per allocation)\n",
            )
            try:
                _allocate_here(2000)
                status, text = await _get(url + "?limit=5")
                assert status == 200
                assert "largest:" in text and "_allocate_here" in text
                assert "malloc: in use" in text
                assert (await _get(url + "?limit=x"))[0] == 400
                _allocate_here(4000)  # grows the same site
                status, text = await _get(url)
                grown = text.split("grown since the first call:")[1]
                assert "test_debug_memory.py" in grown and "_allocate_here" in grown
            finally:
                tracemalloc.stop()
                _kept.clear()
        finally:
            await server.stop()

    asyncio.run(scenario())
