"""`pyflyte run --remote` against `flyteadmin dev`, as a user's first run: fast registration
(CreateUploadLocation + signed PUT), registration, and the execution, for a workflow and for a
single task, each turned into a FlyteWorkflow object by the operator."""

from __future__ import annotations

import re
import time

import yaml
from flytekit.configuration import Config
from flytekit.remote import FlyteRemote
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core import kube
from tests.devstack import start_dev, stop
from tests.pyflyte import pyflyte


def test_pyflyte_run_remote_creates_executions(tmp_path):
    proc, found, log = start_dev(tmp_path)
    try:
        config = found["flytekit"]
        names = []
        for args in (("inner", "--a", "3", "--b", "4"), ("add", "--a", "1", "--b", "2")):
            result = pyflyte(config, "run", "--remote", "myproject/workflows.py", *args)
            assert result.returncode == 0, result.stdout + result.stderr
            match = re.search(r"/executions/([a-z0-9-]+)", result.stdout)
            assert match, result.stdout
            names.append(match.group(1))
        admin = yaml.safe_load(open(config))["admin"]
        assert admin["insecure"] is True
        remote = FlyteRemote(
            Config.auto(config), default_project="flytesnacks", default_domain="development"
        )
        workflow_run = remote.fetch_execution(name=names[0])
        assert workflow_run.spec.launch_plan.name == "myproject.workflows.inner"
        assert workflow_run.inputs["a"] == 3
        task_run = remote.fetch_execution(name=names[1])
        assert task_run.spec.launch_plan.resource_type == 1  # TASK: the .flytegen path
        assert task_run.inputs["b"] == 2
        # The operator turned both into FlyteWorkflow objects for flytepropeller.
        api = kube.api_client(found["kubeconfig"])
        custom = client.CustomObjectsApi(api)
        for name in names:
            deadline = time.monotonic() + 30
            while True:
                try:
                    obj = custom.get_namespaced_custom_object(
                        "flyte.lyft.com", "v1alpha1", "flytesnacks-development",
                        "flyteworkflows", name,
                    )  # fmt: skip
                    break
                except ApiException as exc:
                    assert exc.status == 404 and time.monotonic() < deadline, exc
                    time.sleep(0.2)
            assert obj["metadata"]["labels"]["execution-id"] == name
        api.close()
    finally:
        stop(proc, log)
