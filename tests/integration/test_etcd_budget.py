"""The etcd byte budget on a real etcd with a small quota: the guard refuses new work before etcd
raises its NOSPACE alarm (which would stop every write of the whole cluster), and etcd's own
"database space exceeded", if it ever comes, reaches clients as RESOURCE_EXHAUSTED."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from flyteidl.admin import project_pb2, task_pb2
from flyteidl.core import identifier_pb2
from flyteidl.service import admin_pb2_grpc
from google.protobuf import struct_pb2
from kubernetes import client

from flyteadmin.core import kube
from flyteadmin.core.config import EtcdSettings, KubernetesSettings, ServerSettings, Settings
from flyteadmin.devstack.controlplane import ControlPlane, start_control_plane
from tests.integration.conftest import running_api_server
from tests.integration.registration_helpers import DOMAIN, PROJECT, task_request

MIB = 1 << 20
NAMESPACE = "flyteadmin"


@dataclasses.dataclass
class SmallEtcd:
    plane: ControlPlane
    quota: int

    @property
    def etcd_url(self) -> str:
        ports = json.loads((self.plane.workdir / "ports.json").read_text())
        return f"http://127.0.0.1:{ports['etcd_client']}"

    def alarms(self) -> list[dict]:
        request = urllib.request.Request(
            f"{self.etcd_url}/v3/maintenance/alarm",
            data=json.dumps({"action": "GET"}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read()).get("alarms") or []


def _small_etcd(quota: int) -> Iterator[SmallEtcd]:
    plane = start_control_plane(
        controller_manager=False,
        etcd_args=[f"--quota-backend-bytes={quota}"],
        # kube-apiserver reports etcd's database size every 2 s instead of every 30 s.
        apiserver_args=["--etcd-db-metric-poll-interval=2s"],
    )
    try:
        api = kube.api_client(str(plane.kubeconfig))
        kube.apply_crds(api)
        kube.ensure_namespace(api, NAMESPACE)
        api.close()
        yield SmallEtcd(plane, quota)
    finally:
        plane.stop()


def _settings(small: SmallEtcd, storage_settings, etcd: EtcdSettings) -> Settings:
    return Settings(
        server=ServerSettings(host="127.0.0.1", grpc_port=0, http_port=0),
        kubernetes=KubernetesSettings(kubeconfig=str(small.plane.kubeconfig), namespace=NAMESPACE),
        storage=storage_settings,
        etcd=etcd,
    )


def _big_task(i: int) -> task_pb2.TaskCreateRequest:
    """A task version of ~48 KiB (kept inline in its object: under the blob threshold)."""
    request = task_request("big", version=f"v{i}")
    request.spec.template.custom.CopyFrom(
        struct_pb2.Struct(fields={"pad": struct_pb2.Value(string_value=f"{i}" + "x" * 48_000)})
    )
    return request


def _fill(stub, limit: int = 4000) -> tuple[int, grpc.RpcError]:
    """Register big task versions until the server refuses one: (its number, the error)."""
    for i in range(limit):
        try:
            stub.CreateTask(_big_task(i))
        except grpc.RpcError as error:
            return i, error
    raise AssertionError(f"{limit} big task versions and nothing refused")


def _get(i: int):
    from flyteidl.admin import common_pb2

    return common_pb2.ObjectGetRequest(
        id=identifier_pb2.Identifier(
            resource_type=identifier_pb2.TASK,
            project=PROJECT,
            domain=DOMAIN,
            name="big",
            version=f"v{i}",
        )
    )


def _stub(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = admin_pb2_grpc.AdminServiceStub(channel)
    stub.RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name=PROJECT))
    )
    return channel, stub


def test_the_guard_refuses_new_work_before_etcd_fills(storage_settings):
    quota = 48 * MIB
    for small in _small_etcd(quota):
        etcd = EtcdSettings(
            quota_bytes=quota, archive_above=0.2, refuse_new_above=0.4, refuse_all_above=0.6
        )
        with running_api_server(_settings(small, storage_settings, etcd)) as server:
            channel, stub = _stub(server)
            with channel:
                number, refused = _fill(stub)
                assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.details()
                assert "etcd" in refused.details()
                assert number > 10  # the guard let real work in first
                # The refused version was not stored; the ones before it were.
                with pytest.raises(grpc.RpcError) as missing:
                    stub.GetTask(_get(number))
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
                assert stub.GetTask(_get(number - 1)).id.version == f"v{number - 1}"
        # etcd never raised its alarm, and the rest of the cluster still writes.
        assert small.alarms() == []
        api = kube.api_client(str(small.plane.kubeconfig))
        client.CoreV1Api(api).create_namespaced_config_map(
            "default", {"metadata": {"name": "still-writing"}, "data": {"a": "b"}}
        )
        api.close()


def test_etcds_own_full_error_reaches_clients_as_resource_exhausted(storage_settings):
    quota = 16 * MIB
    for small in _small_etcd(quota):
        # A guard that never acts (it believes the quota is huge and cannot read etcd's size).
        etcd = EtcdSettings(quota_bytes=1 << 40, read_database_size=False)
        with running_api_server(_settings(small, storage_settings, etcd)) as server:
            channel, stub = _stub(server)
            with channel:
                _, refused = _fill(stub)
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.details()
        assert "database space exceeded" in refused.details()
        assert [a.get("alarm") for a in small.alarms()] == ["NOSPACE"]
