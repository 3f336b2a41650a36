"""The configured event loop (core/event_loop.py): uvloop by default, asyncio on request, and
a clear configuration error for anything else."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from flyteadmin.core import event_loop
from flyteadmin.core.config import ConfigError, Settings, load_settings


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_default_and_runs_the_coroutine():
    assert Settings().event_loop == "uvloop"
    assert issubclass(event_loop.run(_loop_type(), "uvloop"), uvloop.Loop)


def test_asyncio_runs_the_standard_loop():
    assert not issubclass(event_loop.run(_loop_type(), "asyncio"), uvloop.Loop)


def test_an_unknown_loop_is_a_configuration_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("event_loop: tokio\n")
    with pytest.raises(ConfigError, match="event_loop: expected one of"):
        load_settings(path)
    path.write_text("event_loop: asyncio\n")
    assert load_settings(path).event_loop == "asyncio"
