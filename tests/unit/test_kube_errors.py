"""Kubernetes API failures as our clients see them (core/kube.py ``translate``)."""

from __future__ import annotations

import pytest

from flyteadmin.core.errors import Code
from flyteadmin.core.kube import KubeError, translate


@pytest.mark.parametrize(
    "status, message",
    [
        (413, "Request entity too large: limit is 3145728"),
        (500, "etcdserver: request is too large"),
        (  # over 2 MiB: kube-apiserver's etcd client refuses to send it
            500,
            "rpc error: code = ResourceExhausted desc = trying to send message larger than max "
            "(2667563 vs. 2097152)",
        ),
    ],
)
def test_an_object_too_large_is_resource_exhausted_and_says_so(status, message):
    error = translate(KubeError(status, message))
    assert error.code == Code.RESOURCE_EXHAUSTED
    assert error.message == f"kubernetes API: the object is too large to store: {message}"


@pytest.mark.parametrize(
    "status, message, code",
    [
        (500, "etcdserver: leader changed", Code.UNAVAILABLE),
        (422, "spec.state: Unsupported value", Code.INVALID_ARGUMENT),
        (409, "already exists", Code.ABORTED),
    ],
)
def test_translate(status, message, code):
    error = translate(KubeError(status, message))
    assert error.code == code
    assert error.message == f"kubernetes API: {message}"


def test_a_conflict_on_create_is_already_exists():
    assert translate(KubeError(409, "exists"), creating=True).code == Code.ALREADY_EXISTS
