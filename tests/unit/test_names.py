from __future__ import annotations

import re

import pytest

from flyteadmin.core.names import object_name, slug

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    "readable, fields",
    [
        (
            ["my_module.my_task", "lOj-DStgdRmySKnonpOBGw"],
            ("flytesnacks", "development", "my_module.my_task", "lOj-DStgdRmySKnonpOBGw"),
        ),
        (["A" * 300], ("p", "d", "A" * 300, "v")),
        (["___"], ("p", "d", "___", "v")),
        ([".flytegen.x"], ("p", "d", ".flytegen.x", "v")),
        ([""], ("", "", "", "")),
    ],
)
def test_names_are_dns1123_labels(readable, fields):
    name = object_name(readable, *fields)
    assert len(name) <= 63 and DNS1123.match(name), name


def test_names_are_deterministic_and_distinguish_every_field():
    base = object_name(["t"], "p", "d", "t", "v1")
    assert base == object_name(["t"], "p", "d", "t", "v1")
    others = {
        object_name(["t"], *f)
        for f in (
            ("p2", "d", "t", "v1"),
            ("p", "d2", "t", "v1"),
            ("p", "d", "t", "v2"),
            ("p", "d", "T", "v1"),
            ("pd", "", "t", "v1"),
        )
    }
    assert base not in others and len(others) == 5


def test_slug():
    assert slug("My_Module.my_task") == "my-module-my-task"
    assert slug("--a__b--") == "a-b"
