"""A child forked to exec another program while gRPC is busy must start (see
flyteadmin/__init__.py): with gRPC's fork handlers on, about one in four aborted before its
exec under load, which failed whole test sessions (kube-apiserver "exited" with SIGABRT)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, subprocess
    import flyteadmin  # sets the gRPC environment, as every entry point does
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    async def main():
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = health_pb2_grpc.HealthStub(channel)
        busy = True

        async def load():
            while busy:
                await stub.Check(health_pb2.HealthCheckRequest())

        tasks = [asyncio.create_task(load()) for _ in range(8)]

        def spawn():
            codes = []
            for _ in range(200):
                child = subprocess.Popen(["/bin/true"], preexec_fn=lambda: None)
                codes.append(child.wait())
            return codes

        codes = await asyncio.to_thread(spawn)
        busy = False
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(None)
        print(sum(1 for c in codes if c != 0))

    asyncio.run(main())
    """
)


def test_children_forked_while_grpc_is_busy_all_start():
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    env["GRPC_VERBOSITY"] = "ERROR"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "0", out.stdout + out.stderr[-2000:]
