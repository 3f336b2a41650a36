"""The composition root of the shared core: the Kubernetes client, the store's collections and
the domain services built on them. Both front doors (API server, operator) construct one.

Constructing a Backend does no I/O; ``start`` starts the watch caches and waits for their first
list, ``stop`` ends them and closes the HTTP client (on the loop that used it).
"""

from __future__ import annotations

import asyncio

from kubernetes import client

from flyteadmin.core import kube
from flyteadmin.core.attributes import Attributes
from flyteadmin.core.blobstore import GcsBlobStore
from flyteadmin.core.config import Settings
from flyteadmin.core.crmap.attributes import AttributesCodec
from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.projects import Projects
from flyteadmin.core.store import Collection


class Backend:
    def __init__(self, settings: Settings, api: client.ApiClient | None = None) -> None:
        k8s = settings.kubernetes
        self.settings = settings
        self.api = api or kube.api_client(k8s.kubeconfig)
        self.http = kube.KubeHttp(self.api, max_connections=k8s.api_connections)
        # Lazy: the first blob call connects, or reports the store as not configured.
        self.blobs = GcsBlobStore(settings.storage)
        self.project_records = Collection(self.api, k8s.namespace, ProjectCodec(), self.http)
        self.attribute_records = Collection(self.api, k8s.namespace, AttributesCodec(), self.http)
        self.collections: list[Collection] = [self.project_records, self.attribute_records]
        self.projects = Projects(self.project_records, settings.domains)
        self.attributes = Attributes(self.attribute_records, self.projects, settings.executions)

    async def start(self) -> None:
        for collection in self.collections:
            collection.start()
        timeout = self.settings.kubernetes.cache_sync_timeout_seconds
        loop = asyncio.get_running_loop()
        for collection in self.collections:
            synced = await loop.run_in_executor(None, collection.wait_synced, timeout)
            if not synced:
                raise TimeoutError(
                    f"the {collection.kind.plural} cache did not sync within {timeout}s: is "
                    f"the namespace {collection.namespace!r} there and are the CRDs installed?"
                )

    async def stop(self) -> None:
        for collection in self.collections:
            collection.stop()
        await self.http.close()
        await self.blobs.close()
