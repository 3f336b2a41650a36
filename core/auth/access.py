"""Authorization through Kubernetes RBAC: may this caller do `verb` on our custom resource
`resource` in a project-domain namespace? Asked with a SubjectAccessReview, so cluster admins
grant Flyte access with ordinary Roles and RoleBindings, and `kubectl auth can-i` agrees."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flyteadmin.core import crds
from flyteadmin.core.auth.tokens import Identity
from flyteadmin.core.config import AuthSettings
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.kube import KubeError, KubeHttp

REVIEW_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Subject:
    user: str
    groups: tuple[str, ...] = ()


def subject_of(identity: Identity, settings: AuthSettings) -> Subject:
    """The Kubernetes user and groups of a caller, from its claims (user_claim, groups_claim)."""
    claims = identity.claims
    user = claims.get(settings.user_claim) or identity.subject
    raw = claims.get(settings.groups_claim, ()) if settings.groups_claim else ()
    groups = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
    return Subject(
        user=settings.user_prefix + str(user),
        groups=tuple(sorted(settings.group_prefix + str(g) for g in groups)),
    )


def review_body(subject: Subject, namespace: str, resource: str, verb: str) -> dict[str, Any]:
    attributes = {"group": crds.GROUP, "resource": resource, "verb": verb}
    if namespace:
        attributes["namespace"] = namespace
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": subject.user,
            "groups": list(subject.groups),
            "resourceAttributes": attributes,
        },
    }


class AccessReviewer:
    """Decisions from the Kubernetes API, each reused for ``cache_seconds``."""

    def __init__(
        self,
        http: KubeHttp,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._ttl = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[Any, ...], tuple[float, bool]] = {}

    async def allowed(self, subject: Subject, namespace: str, resource: str, verb: str) -> bool:
        key = (subject, namespace, resource, verb)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            answer = await self._http.request(
                "POST", REVIEW_PATH, review_body(subject, namespace, resource, verb)
            )
        except KubeError as exc:
            # Our own service account lacks `create subjectaccessreviews`, or the API is down.
            down = exc.status in (0, 429) or exc.status >= 500
            code = Code.UNAVAILABLE if down else Code.INTERNAL
            raise AdminError(code, f"cannot check access with Kubernetes: {exc.message}") from None
        status: Mapping[str, Any] = answer.get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        if self._ttl > 0:
            self._cache[key] = (now + self._ttl, allowed)
        return allowed
