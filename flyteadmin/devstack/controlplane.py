"""A real local Kubernetes control plane: etcd + kube-apiserver + kube-controller-manager.

The same thing envtest does, on 127.0.0.1 with free ports: used by ``flyteadmin dev`` (the
embedded default) and by the tests' session fixture. Binaries come from ``KUBEBUILDER_ASSETS``
or are built once from Go modules (``k8s_build``). Every process is stopped by ``stop()``, and
dies with its parent if that never runs.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flyteadmin.devstack import k8s_build
from flyteadmin.devstack.pki import Pki, ensure_pki
from flyteadmin.devstack.processes import (
    ProcessGroup,
    Service,
    free_ports,
    http_ok,
    port_is_free,
)

# kube-controller-manager runs only what a control plane without nodes needs: namespace
# deletion, garbage collection (ownerReferences), default service accounts and their tokens,
# and quota usage so that ResourceQuotas are enforced.
CONTROLLERS = "namespace,garbagecollector,serviceaccount,serviceaccount-token,resourcequota"

# The Go runtime's garbage collector costs kube-apiserver a fifth of its CPU per write at the
# default GOGC=100 (measured with bench.executions: 3.3-3.9 ms of CPU per event write, 2.7-3.1
# with 400). A laxer collector, capped by a soft memory limit, leaves more of a small machine to
# the writes. Values set in the environment win.
APISERVER_GO_ENV = {"GOGC": "400", "GOMEMLIMIT": "2GiB"}


def apiserver_env(env: dict[str, str]) -> dict[str, str]:
    return {**APISERVER_GO_ENV, **env}


@dataclass
class ControlPlane:
    kubeconfig: Path
    server: str
    workdir: Path
    processes: ProcessGroup
    _temporary: bool
    services: list[Service] = field(default_factory=list)
    """etcd, kube-apiserver, kube-controller-manager: each can be restarted as it was started
    (same ports and data), which is what ``flyteadmin dev``'s supervisor does."""

    def stop(self) -> None:
        self.processes.stop()
        if self._temporary:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ports(workdir: Path) -> dict[str, int]:
    """Free loopback ports; a persistent data directory reuses its previous ones when free."""
    saved = workdir / "ports.json"
    names = ("etcd_client", "etcd_peer", "apiserver", "controller_manager")
    if saved.exists():
        ports = json.loads(saved.read_text())
        if set(ports) == set(names) and all(port_is_free(p) for p in ports.values()):
            return ports
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    saved.write_text(json.dumps(ports))
    return ports


def _ssl_context(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return ctx


def write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "flyteadmin-local",
                "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "admin",
                # A token, not the client certificate: cheaper for kube-apiserver (pki.py).
                "user": {"token": pki.admin_token.read_text().strip()},
            }
        ],
        "contexts": [
            {
                "name": "flyteadmin-local",
                "context": {"cluster": "flyteadmin-local", "user": "admin"},
            }
        ],
        "current-context": "flyteadmin-local",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _etcd_argv(bin_dir: Path, workdir: Path, ports: dict[str, int], durable: bool) -> list[str]:
    client = f"http://127.0.0.1:{ports['etcd_client']}"
    peer = f"http://127.0.0.1:{ports['etcd_peer']}"
    return [
        str(bin_dir / "etcd"),
        "--name=local",
        f"--data-dir={workdir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=local={peer}",
        # Without fsync an acknowledged write is in the page cache only: it survives a kill of
        # any process, not a crash of the machine. Fine for a throwaway cluster; a kept data
        # directory promises more (docs/testbed.md).
        f"--unsafe-no-fsync={str(not durable).lower()}",
        "--log-level=warn",
    ]


def _apiserver_argv(bin_dir: Path, pki: Pki, ports: dict[str, int]) -> list[str]:
    port = ports["apiserver"]
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports['etcd_client']}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--token-auth-file={pki.token_file}",
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        "--v=0",
    ]


def _controller_manager_argv(
    bin_dir: Path, pki: Pki, kubeconfig: Path, ports: dict[str, int]
) -> list[str]:
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--controllers={CONTROLLERS}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        "--use-service-account-credentials=false",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports['controller_manager']}",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--v=0",
    ]


def start_control_plane(
    data_dir: Path | None = None,
    *,
    controller_manager: bool = True,
    durable: bool | None = None,
    timeout: float = 120.0,
    log=lambda msg: None,
    etcd_args: Sequence[str] = (),
    apiserver_args: Sequence[str] = (),
) -> ControlPlane:
    """Start the control plane and return once ``/readyz`` answers 200.

    ``data_dir`` keeps etcd's data, the certificates and the kubeconfig across restarts; without
    it everything lives in a temporary folder removed by ``stop()``. ``durable`` (default: when
    ``data_dir`` is given) makes etcd fsync its writes, so they survive a crash of the machine.
    ``etcd_args`` and ``apiserver_args`` are extra flags (e.g. a small ``--quota-backend-bytes``
    in a test).
    """
    bin_dir = k8s_build.ensure_binaries(log=log)
    temporary = data_dir is None
    durable = not temporary if durable is None else durable
    workdir = (
        Path(tempfile.mkdtemp(prefix="flyteadmin-k8s-")) if data_dir is None else Path(data_dir)
    )
    workdir.mkdir(parents=True, exist_ok=True)
    pki = ensure_pki(workdir / "pki")
    ports = _ports(workdir)
    server = f"https://127.0.0.1:{ports['apiserver']}"
    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(kubeconfig, server, pki)
    group = ProcessGroup(workdir / "logs")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
    ctx = _ssl_context(pki)
    kcm_url = f"https://127.0.0.1:{ports['controller_manager']}/healthz"
    insecure = ssl._create_unverified_context()  # the controller manager's cert is self-signed
    services = [
        Service(
            "etcd",
            [*_etcd_argv(bin_dir, workdir, ports, durable), *etcd_args],
            env,
            functools.partial(http_ok, f"http://127.0.0.1:{ports['etcd_client']}/readyz"),
            group,
            timeout=timeout,
        ),
        Service(
            "kube-apiserver",
            [*_apiserver_argv(bin_dir, pki, ports), *apiserver_args],
            apiserver_env(env),
            functools.partial(http_ok, f"{server}/readyz", ctx),
            group,
            timeout=timeout,
        ),
    ]
    if controller_manager and (bin_dir / "kube-controller-manager").exists():
        services.append(
            Service(
                "kube-controller-manager",
                _controller_manager_argv(bin_dir, pki, kubeconfig, ports),
                env,
                functools.partial(http_ok, kcm_url, insecure),
                group,
                timeout=timeout,
            )
        )
    plane = ControlPlane(kubeconfig, server, workdir, group, temporary, services)
    try:
        started = time.monotonic()
        for service in services:
            service.start()
        log(f"control plane ready in {time.monotonic() - started:.1f}s at {server}")
    except BaseException:
        plane.stop()
        raise
    return plane


def main() -> None:
    """``python -m flyteadmin.devstack.controlplane [DATA_DIR]``: run until interrupted."""
    import sys

    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    plane = start_control_plane(data_dir, log=lambda m: print(m, flush=True))
    print(f"KUBECONFIG={plane.kubeconfig}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        plane.stop()


if __name__ == "__main__":
    main()
