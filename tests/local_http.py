"""A throwaway aiohttp server on 127.0.0.1 for tests (stand-ins for a collector, a webhook, a
storage API...)."""

from __future__ import annotations

from aiohttp import web


async def serve_locally(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on a free port of 127.0.0.1; returns its runner (``await
    runner.cleanup()`` stops it) and the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]
