"""Large closures of registered versions (tasks, workflows) live in the blob store, not in
etcd (docs/storage.md).

A version whose closure serializes to more than ``storage.inline_threshold_bytes`` is stored as
a blob (``gs://<bucket>/<prefix>/admin/<kind>/<p>/<d>/<name>/<version>/<digest>``); its custom
resource keeps the blob's URI (``closureRef``) and only a light form of the message, enough for
lists, filters and joins. ``full`` gives the whole message back, through a small cache bounded
in bytes (versions never change and their blobs are named by digest, so a cached closure never
goes stale).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from flyteadmin.core.crmap.registered import Registered
from flyteadmin.core.errors import AdminError, Code

M = TypeVar("M", bound=Message)
CACHE_BYTES = 64 * 1024 * 1024


class Offloader(Generic[M]):
    def __init__(
        self,
        kind: str,
        blobs: Callable[[], Any],
        threshold: int,
        light: Callable[[M], M],
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self._kind = kind  # "task", "workflow": a path segment and a word in messages
        self._blobs = blobs
        self._threshold = threshold
        self._light = light  # the full message -> what the custom resource keeps
        self._cache: OrderedDict[str, Message] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0

    async def offload(self, value: Registered[M]) -> Registered[M]:
        """``value`` as it is to be stored: unchanged when its closure is small, else with the
        closure written to the blob store and only the light form kept."""
        closure = value.message.closure  # type: ignore[attr-defined]
        data = closure.SerializeToString(deterministic=True)
        if len(data) <= self._threshold:
            return value
        ident = value.id
        blobs = self._blobs()
        ref = blobs.uri_for(
            "admin", self._kind, ident.project, ident.domain, ident.name, ident.version,
            value.digest,
        )  # fmt: skip
        await blobs.put(ref, data)
        self._remember(ref, closure)
        return replace(value, message=self._light(value.message), payload_ref=ref)

    async def discard(self, stored: Registered[M], kept: Registered[M] | None) -> None:
        """Delete the blob ``offload`` wrote for ``stored`` when its create was refused, unless
        ``kept`` (what the store holds under that name, if anything) refers to the same blob."""
        ref = stored.payload_ref
        if not ref or (kept is not None and kept.payload_ref == ref):
            return
        self._forget(ref)
        try:
            await self._blobs().delete(ref)
        except AdminError as error:
            if error.code != Code.NOT_FOUND:
                raise

    async def full(self, value: Registered[M]) -> M:
        """The whole message of a stored version (its closure read back if offloaded)."""
        ref = value.payload_ref
        if not ref:
            return value.message
        closure = self._cache.get(ref)
        if closure is None:
            try:
                data = await self._blobs().get(ref)
            except Exception as exc:
                raise AdminError(
                    Code.INTERNAL, f"cannot read the {self._kind} closure {ref}"
                ) from exc
            template = value.message.closure  # type: ignore[attr-defined]
            closure = type(template).FromString(data)
            self._remember(ref, closure)
        else:
            self._cache.move_to_end(ref)
        answer = type(value.message)()
        answer.CopyFrom(value.message)
        answer.closure.CopyFrom(closure)  # type: ignore[attr-defined]
        return answer

    def _remember(self, ref: str, closure: Message) -> None:
        size = closure.ByteSize()
        if size > self._cache_bytes // 4:
            return  # a huge closure would push out everything else
        self._forget(ref)
        self._cache[ref] = closure
        self._cached_bytes += size
        while self._cached_bytes > self._cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.ByteSize()

    def _forget(self, ref: str) -> None:
        old = self._cache.pop(ref, None)
        if old is not None:
            self._cached_bytes -= old.ByteSize()
