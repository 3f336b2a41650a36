"""Fixtures on the real control plane: CRDs installed once, a fresh store namespace per test."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from flyteadmin.core import kube
from flyteadmin.core.config import KubernetesSettings, ServerSettings, Settings


@pytest.fixture(scope="session")
def crds_installed(kube_api: client.ApiClient) -> None:
    kube.apply_crds(kube_api, flyteworkflow=True)


@pytest.fixture
def namespace(kube_api: client.ApiClient, crds_installed: None, unique: str) -> Iterator[str]:
    name = f"test-{unique}"
    kube.ensure_namespace(kube_api, name)
    yield name
    client.CoreV1Api(kube_api).delete_namespace(name)


@pytest.fixture
def settings(kubeconfig: Path, namespace: str, storage_settings) -> Settings:
    """Settings for one test: its own store namespace, free ports on 127.0.0.1, and its own
    prefix in the session's GCS emulator."""
    return Settings(
        server=ServerSettings(host="127.0.0.1", grpc_port=0, http_port=0),
        kubernetes=KubernetesSettings(kubeconfig=str(kubeconfig), namespace=namespace),
        storage=storage_settings,
    )


def with_namespace(settings: Settings, namespace: str) -> Settings:
    return dataclasses.replace(
        settings, kubernetes=dataclasses.replace(settings.kubernetes, namespace=namespace)
    )


def run(coro):
    """Run one coroutine on a fresh event loop (the tests are plain functions)."""
    return asyncio.run(coro)


@contextlib.contextmanager
def running_api_server(settings: Settings) -> Iterator:
    """An ApiServer on its own event loop thread (``.grpc_port``, ``.http_port``)."""
    from flyteadmin.api_server.app import ApiServer
    from tests.integration.servers import LoopThread

    async def start() -> ApiServer:
        server = ApiServer(settings)
        await server.start()
        return server

    loop = LoopThread()
    server = loop.call(start())
    try:
        yield server
    finally:
        loop.call(server.stop())
        loop.close()


@pytest.fixture
def api_server(settings: Settings):
    """A running ApiServer on free ports, stopped afterwards."""
    with running_api_server(settings) as server:
        yield server


@pytest.fixture
def registered_stub(api_server):
    """An AdminService stub on a running server where project flytesnacks, task ``t``,
    workflow ``wf`` (t twice) and launch plan ``lp`` (default x=5) are registered."""
    import grpc
    from flyteidl.service import admin_pb2_grpc

    from tests.integration.registration_helpers import register_basics

    with grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}") as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        register_basics(admin)
        yield admin


@pytest.fixture
def stored_inputs(settings: Settings):
    """Writes inputs where a test's propeller would (under the test's own prefix of the session's
    blob store) and returns their URI: data reads of a missing blob are DATA_LOSS."""
    from flyteidl.core import literals_pb2

    from flyteadmin.core.blobstore import GcsBlobStore

    store = GcsBlobStore(settings.storage)

    def put(path: str, inputs: literals_pb2.LiteralMap) -> str:
        uri = store.uri_for(path, "inputs.pb")
        run(store.put(uri, inputs.SerializeToString()))
        return uri

    yield put
    run(store.close())
