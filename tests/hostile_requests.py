"""The hostile list requests of issue 12 §1, shared by the stall test
(tests/integration/test_hostile_lists.py) and its benchmark (bench/hostile.py): filters that
made the old parser backtrack, a LIKE pattern that made matching backtrack (answered now),
oversized filters, too many expressions or values, and pages of 2^32 - 1 rows."""

from __future__ import annotations

import grpc
from flyteidl.admin import common_pb2

PROJECT, DOMAIN = "flytesnacks", "development"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
HUGE_PAGE = 2**32 - 1


def _list(filters: str = "", limit: int = 100) -> common_pb2.ResourceListRequest:
    return common_pb2.ResourceListRequest(
        id=common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
        filters=filters,
        limit=limit,
    )


# (RPC, request, expected code): what issue 12 sent, and the bounds around it.
HOSTILE = [
    ("ListTasks", _list("(" * 1500 + ")" * 1500), INVALID),
    ("ListTasks", _list("eq(a,b" * 100), INVALID),
    ("ListTasks", _list("contains(name,a%a%a%a%a%a%a%a%b)"), grpc.StatusCode.OK),
    ("ListTasks", _list(limit=HUGE_PAGE), INVALID),
    ("ListExecutions", _list(limit=HUGE_PAGE), INVALID),
    ("ListExecutions", _list("x" * 20_000), INVALID),
    ("ListTasks", _list("+".join(["eq(name,a)"] * 1_000)), INVALID),
    ("ListTasks", _list("value_in(name," + ";".join(["a"] * 5_000) + ")"), INVALID),
]
