"""What a running API server has stored, to check that a refused request changed nothing."""

from __future__ import annotations

import requests

from tests.waiting import eventually


class Snapshot:
    """What the server has stored: every cached custom resource (name -> resourceVersion; a
    write is applied to the cache before its answer is sent) and every blob of the test."""

    def __init__(self, server, gcs, prefix: str) -> None:
        self.server, self.gcs, self.prefix = server, gcs, prefix

    def take(self) -> tuple:
        # States of accepted events are folded into their objects first (core/events/journal.py).
        eventually(self.server.backend.journal.idle, "the event journal folded")
        resources = tuple(
            (c.kind.plural, tuple(sorted((r.name, r.revision) for r in c.values())))
            for c in self.server.backend.collections
        )
        names, token = [], None
        while True:
            params = {"prefix": self.prefix + "/", "maxResults": 1000}
            if token:
                params["pageToken"] = token
            answer = requests.get(
                f"{self.gcs.endpoint}/storage/v1/b/{self.gcs.bucket}/o", params=params, timeout=120
            ).json()
            names.extend(item["name"] for item in answer.get("items", ()))
            token = answer.get("nextPageToken")
            if not token:
                break
        return resources, tuple(sorted(names))
