"""Kopf runs without a diff base: our handlers are all on.event, so the deep copy Kopf makes of
every object on every event (to diff it for on.create/update handlers) is turned off, and a
handler that would need it is refused at start."""

from __future__ import annotations

import kopf
import pytest
from kopf._cogs.structs import bodies

from flyteadmin.core.config import Settings
from flyteadmin.operator.runner import NoDiffBase, _kopf_settings, refuse_changing_handlers


def test_the_operator_uses_no_diff_base():
    storage = _kopf_settings(Settings()).persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    body = bodies.Body({"metadata": {"name": "x"}, "spec": {"deep": {"er": [1, 2]}}})
    assert storage.build(body=body) is None and storage.fetch(body=body) is None


def test_event_handlers_are_accepted_and_a_handler_needing_a_diff_is_refused():
    registry = kopf.OperatorRegistry()

    @kopf.on.event("flyteadmin.io", "v1alpha1", "executions", registry=registry)
    def on_event(**_: object) -> None:
        pass

    refuse_changing_handlers(registry)  # only on.event: fine

    @kopf.on.update("flyteadmin.io", "v1alpha1", "executions", registry=registry)
    def on_update(**_: object) -> None:
        pass

    with pytest.raises(RuntimeError, match="on_update"):
        refuse_changing_handlers(registry)
