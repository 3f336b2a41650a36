"""Keep the cyclic garbage collector's full passes off the watch caches.

Every process of the control plane holds its watch caches in memory: a few Python objects per
cached entity (the ``Stored`` record, the decoded value, its protobuf message, index keys), all
tracked by the cyclic garbage collector. A full (generation 2) collection visits every tracked
object, holding the GIL: with 70,000 cached tasks and projects it took 190 ms, during which the
process served nothing, and it grows with the store (bench/README.md, "Garbage collector").

Cached objects are acyclic and live until their entity changes or goes; the collector has
nothing to find among them. So once a process's caches have loaded they are frozen
(``gc.freeze``: moved where no collection looks; still freed by reference counting), and so are
the survivors of a later full pass once they number ``FREEZE_AT``: full passes then visit at
most about that many objects (tens of milliseconds) however large the store grows.

The price of a freeze: garbage cycles among objects alive at that moment are never reclaimed.
grpc.aio makes one small cycle per call (its handler lookup: five objects, ~0.5 KB) that lives
as long as the call, so each freeze keeps those of the calls in flight (about 9 KB with 16 of
them); at one freeze per ``FREEZE_AT`` promoted objects (some ten thousand writes) that is at
most about a byte per write, until the process restarts.
bench.gc_passes measures both sides (bench/README.md, "Garbage collector"), and
``flyteadmin_gc_frozen_objects`` shows the frozen count (it follows the caches).

Only the commands (``serve``, its workers, ``operator``, ``dev``) turn this on (``manage``,
unless the ``freeze_caches`` setting is false): a library user's or a test's process keeps
Python's defaults.
"""

from __future__ import annotations

import atexit
import gc
import time
from typing import Any

from flyteadmin.core import metrics

# A full pass's survivors are frozen once they are this many objects (about 60 ms of the next
# pass): freezing after every pass would keep its passes shortest, but each freeze also keeps
# the garbage cycles of the calls in flight at that moment (see above).
FREEZE_AT = 50_000

_managed = False
_freezing = False
_pass_started = 0.0  # collections do not nest (each holds the GIL through)


def manage(freeze: bool = True) -> None:
    """This process is one of the control plane's: time every collection and, with ``freeze``
    (the ``freeze_caches`` setting), freeze the survivors of its first cache load
    (``caches_loaded``) and of its full collections."""
    global _managed, _freezing
    if _managed:
        return
    _managed, _freezing = True, freeze
    gc.callbacks.append(_on_collection)
    atexit.register(_release)


def _release() -> None:
    """At exit: the interpreter's last collections must reach everything again (native
    extensions report what they do not free), so nothing is frozen any more."""
    if _on_collection in gc.callbacks:
        gc.callbacks.remove(_on_collection)
    gc.unfreeze()


def caches_loaded() -> None:
    """The process's caches have loaded (core.backend.Backend.start): free what loading them
    left behind, then freeze the rest."""
    if _freezing:
        gc.collect()
        gc.freeze()
        # CPython runs its next full pass once a quarter of what the last one kept has been
        # promoted: after this empty pass, soon and short, rather than after a quarter of the
        # caches (one long pass).
        gc.collect()
        metrics.gc_frozen(gc.get_freeze_count())


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    global _pass_started
    if phase == "start":
        _pass_started = time.perf_counter()
        return
    generation = info["generation"]
    metrics.gc_pass(generation, time.perf_counter() - _pass_started)
    if generation == 2 and _freezing and len(gc.get_objects(generation=2)) >= FREEZE_AT:
        gc.freeze()
        metrics.gc_frozen(gc.get_freeze_count())
