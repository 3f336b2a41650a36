"""`flyteadmin dev --clusters 2` as a user tries multi-cluster execution on one machine: two
local data-plane clusters, each with its own propeller and pod runner, and `pyflyte run
--remote --execution-cluster-label` choosing where a workflow runs (docs/multicluster.md)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from flyteidl.service import admin_pb2_grpc

from tests.devstack import start_dev, stop
from tests.pyflyte import pyflyte
from tests.waiting import eventually

pytestmark = pytest.mark.cluster
Phase = core_execution.WorkflowExecution.Phase
FLOWS = textwrap.dedent(
    """
    from flytekit import task, workflow


    @task
    def add(a: int, b: int) -> int:
        return a + b


    @workflow
    def twice(a: int = 1) -> int:
        return add(a=add(a=a, b=a), b=a)
    """
)


@pytest.mark.timeout(900)
def test_dev_runs_each_workflow_in_the_cluster_its_label_names(tmp_path):
    (tmp_path / "flows.py").write_text(FLOWS)
    proc, found, log = start_dev(tmp_path, "--clusters", "2")
    try:
        text = log.read_text()
        for name in ("cluster-1", "cluster-2"):
            assert f"cluster {name}: kubeconfig " in text
            assert f"flytepropeller (cluster {name}): running" in text
        started = {}
        for label, a in (("cluster-1", 1), ("cluster-2", 5)):
            result = pyflyte(
                found["flytekit"], "run", "--remote", "--project", "flytesnacks",
                "--domain", "development", "--execution-cluster-label", label,
                "flows.py", "twice", "--a", str(a), cwd=tmp_path,
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            match = re.search(r"/executions/([a-z0-9-]+)", result.stdout)
            assert match, result.stdout
            started[label] = (match.group(1), 3 * a)
        with grpc.insecure_channel(f"127.0.0.1:{found['grpc']}") as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            for label, (name, expected) in started.items():
                ident = identifier_pb2.WorkflowExecutionIdentifier(
                    project="flytesnacks", domain="development", name=name
                )
                request = execution_pb2.WorkflowExecutionGetRequest(id=ident)

                def done(request=request):
                    got = stub.GetExecution(request)
                    return got if got.closure.phase in (Phase.SUCCEEDED, Phase.FAILED) else None

                got = eventually(done, what=f"{name} to finish", timeout=300, interval=1)
                assert got.closure.phase == Phase.SUCCEEDED, got.closure.error
                assert got.spec.metadata.system_metadata.execution_cluster == label
                data = stub.GetExecutionData(
                    execution_pb2.WorkflowExecutionGetDataRequest(id=ident)
                )
                assert data.full_outputs.literals["o0"].scalar.primitive.integer == expected
        # The pod runner of the chosen cluster ran its Pods.
        workdir = Path(found["flytekit"]).parent
        for label, (name, _) in started.items():
            pods = workdir / "clusters" / label / "podrunner" / "pods" / "flytesnacks-development"
            assert any(p.name.startswith(name) for p in pods.iterdir()), label
    finally:
        out = stop(proc, log)
    assert proc.returncode == 0, out
    assert "stopped" in out
