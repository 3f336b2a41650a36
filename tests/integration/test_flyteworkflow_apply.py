"""The FlyteWorkflow CRD installs on the real apiserver, and every golden object is accepted
and read back unchanged (nulls, lower-case kind and all)."""

from __future__ import annotations

import copy
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from flyteadmin.core.flyteworkflow import crd
from tests.unit.flyteworkflow.cases import CASES

# what the apiserver adds to metadata on create
_SERVER_FIELDS = ("creationTimestamp", "generation", "managedFields", "resourceVersion", "uid")


@pytest.fixture(scope="module")
def flyteworkflow_crd(kube_api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    body = crd.manifest()
    try:
        current = ext.read_custom_resource_definition(crd.NAME)
    except ApiException as exc:
        if exc.status != 404:
            raise
        ext.create_custom_resource_definition(body)
    else:
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        ext.replace_custom_resource_definition(crd.NAME, body)
    deadline = time.monotonic() + 60
    while True:
        status = ext.read_custom_resource_definition(crd.NAME).status
        if any(c.type == "Established" and c.status == "True" for c in status.conditions or []):
            return
        assert time.monotonic() < deadline, "FlyteWorkflow CRD not Established"
        time.sleep(0.1)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_built_object_is_accepted_and_read_back_equal(
    kube_api: client.ApiClient, flyteworkflow_crd: None, namespace: str, case
) -> None:
    body = case.build()
    body["metadata"]["namespace"] = namespace
    api = client.CustomObjectsApi(kube_api)
    api.create_namespaced_custom_object(
        crd.GROUP, crd.VERSION, namespace, crd.PLURAL, copy.deepcopy(body)
    )
    stored = api.get_namespaced_custom_object(
        crd.GROUP, crd.VERSION, namespace, crd.PLURAL, body["metadata"]["name"]
    )
    for field in _SERVER_FIELDS:
        stored["metadata"].pop(field, None)
    assert stored == body


def test_the_field_manager_records_each_tree_as_one_field(
    kube_api: client.ApiClient, flyteworkflow_crd: None, namespace: str
) -> None:
    """The CRD marks the object's trees atomic: kube-apiserver's managedFields name `spec`,
    `tasks`, `status` ... each as one field, not every leaf below them (which made that entry
    about as large as the object, rebuilt at each of propeller's updates)."""
    body = CASES[0].build()
    body["metadata"]["namespace"] = namespace
    api = client.CustomObjectsApi(kube_api)
    created = api.create_namespaced_custom_object(
        crd.GROUP, crd.VERSION, namespace, crd.PLURAL, copy.deepcopy(body)
    )
    name = body["metadata"]["name"]
    body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    body["status"] = {"phase": 2, "nodeStatus": {"n0": {"phase": 1}}}  # as propeller's update
    stored = api.replace_namespaced_custom_object(
        crd.GROUP, crd.VERSION, namespace, crd.PLURAL, name, body
    )
    (entry,) = [e for e in stored["metadata"]["managedFields"] if e["operation"] == "Update"]
    fields = entry["fieldsV1"]
    for tree in ("spec", "tasks", "inputs", "status", "executionConfig", "executionId"):
        assert fields[f"f:{tree}"] == {}, tree
