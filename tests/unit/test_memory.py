"""core/memory.py: glibc's account of the process's memory."""

from __future__ import annotations

from flyteadmin.core import memory


def test_malloc_summary_reports_what_glibc_holds():
    text = memory.malloc_summary()
    assert text.startswith("malloc: in use ") and "free but kept" in text
