"""The composition root of the shared core: the Kubernetes client, the store's collections and
the domain services built on them. Both front doors (API server, operator) construct one.

Constructing a Backend does no I/O; ``start`` starts the watch caches and waits for their first
list, ``stop`` ends them and closes the HTTP client (on the loop that used it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, TypeVar

from flyteidl.admin import launch_plan_pb2, matchable_resource_pb2
from flyteidl.core import identifier_pb2
from kubernetes import client

from flyteadmin.core import crds, heap, kube, metrics
from flyteadmin.core.attributes import Attributes
from flyteadmin.core.blobstore import GcsBlobStore
from flyteadmin.core.budget import METRICS_GRACE_SECONDS, StorageBudget, follow_apiserver_metrics
from flyteadmin.core.compiler._graph import LaunchPlanLike
from flyteadmin.core.config import Settings
from flyteadmin.core.crmap.attributes import AttributesCodec
from flyteadmin.core.crmap.event_batches import EventBatchCodec
from flyteadmin.core.crmap.executions import ExecutionCodec
from flyteadmin.core.crmap.history_segments import HistorySegmentCodec
from flyteadmin.core.crmap.named_entities import NamedEntityCodec
from flyteadmin.core.crmap.node_executions import NodeExecutionCodec
from flyteadmin.core.crmap.projects import ProjectCodec
from flyteadmin.core.crmap.registered import (
    DescriptionCodec,
    LaunchPlanCodec,
    TaskCodec,
    WorkflowCodec,
)
from flyteadmin.core.crmap.signals import SignalCodec
from flyteadmin.core.crmap.task_executions import TaskExecutionCodec
from flyteadmin.core.events import workflow_events
from flyteadmin.core.events.journal import Journal
from flyteadmin.core.events.service import Events
from flyteadmin.core.executions.history import ChildrenOf, ExecutionHistory
from flyteadmin.core.executions.launch import WAITING, cluster_of
from flyteadmin.core.executions.service import Executions
from flyteadmin.core.history.engine import HistoryEngine
from flyteadmin.core.projects import Projects
from flyteadmin.core.registration.descriptions import Descriptions
from flyteadmin.core.registration.entities import add_indexes
from flyteadmin.core.registration.launch_plans import LaunchPlans
from flyteadmin.core.registration.named_entities import NamedEntities
from flyteadmin.core.registration.tasks import Tasks
from flyteadmin.core.registration.workflows import WorkflowLimits, Workflows
from flyteadmin.core.signals import Signals
from flyteadmin.core.store import Codec, Collection
from flyteadmin.core.validation.tasks import TaskResourceLimits, limits_from_attributes
from flyteadmin.core.watermarks import Watermarks

log = logging.getLogger(__name__)
T = TypeVar("T")
RT = identifier_pb2.ResourceType
MR = matchable_resource_pb2.MatchableResource


class Backend:
    # How often kube-apiserver's metrics are read, and how long a kind measured there may go
    # unreported before it is watched after all (core/budget.py).
    metrics_interval = 30.0
    metrics_grace = METRICS_GRACE_SECONDS

    def __init__(
        self,
        settings: Settings,
        api: client.ApiClient | None = None,
        *,
        unread: Iterable[crds.Kind] = (),
    ) -> None:
        """``unread``: kinds this process never reads (the operator's, operator/runner.py).
        They are not watched while kube-apiserver's metrics give the budget their size: a watch
        costs kube-apiserver and this process CPU on every write of its kind (docs/storage.md)."""
        k8s = settings.kubernetes
        self.settings = settings
        self.api = api or kube.api_client(k8s.kubeconfig)
        self.http = kube.KubeHttp(self.api, max_connections=k8s.api_connections)
        self.budget = StorageBudget(settings.etcd)
        self._apiserver_metrics_task: asyncio.Task[None] | None = None
        self._metrics_task: asyncio.Task[None] | None = None
        # Lazy: the first blob call connects, or reports the store as not configured.
        self.blobs = GcsBlobStore(settings.storage)
        self.project_records = Collection(self.api, k8s.namespace, ProjectCodec(), self.http)
        self.attribute_records = Collection(self.api, k8s.namespace, AttributesCodec(), self.http)
        self.projects = Projects(self.project_records, settings.domains)
        self.attributes = Attributes(self.attribute_records, self.projects, settings.executions)

        def collection(codec: Codec[T]) -> Collection[T]:  # all kinds live in one namespace
            return Collection(self.api, k8s.namespace, codec, self.http)

        self.task_records = collection(TaskCodec())
        self.workflow_records = collection(WorkflowCodec())
        self.launch_plan_records = collection(LaunchPlanCodec())
        self.description_records = collection(DescriptionCodec())
        self.named_entity_records = collection(NamedEntityCodec())
        self.execution_records = collection(ExecutionCodec())
        self.signal_records = collection(SignalCodec())
        self.node_execution_records = collection(NodeExecutionCodec())
        self.task_execution_records = collection(TaskExecutionCodec())
        self.segment_records = collection(HistorySegmentCodec())
        self.event_batches = collection(EventBatchCodec())
        # Every process serves the journal's states; API servers also write and fold them.
        self.journal = Journal(
            self.event_batches,
            (self.node_execution_records, self.task_execution_records, self.execution_records),
            settings.journal,
        )
        # Workflow events' states too; the operator and the API write Executions as well.
        self.journal.replayable(self.execution_records, workflow_events.replayer)
        self._journal_task: asyncio.Task[None] | None = None
        # Read-your-writes across API-server workers (``share_writes``, ``barrier``).
        self._watermarks: Watermarks | None = None
        self._caught_up_with: tuple[int, ...] | None = None
        for records in (
            self.task_records,
            self.workflow_records,
            self.launch_plan_records,
            self.description_records,
        ):
            add_indexes(records)
        self.collections: list[Collection[Any]] = [
            self.project_records,
            self.attribute_records,
            self.task_records,
            self.workflow_records,
            self.launch_plan_records,
            self.description_records,
            self.named_entity_records,
            self.execution_records,
            self.signal_records,
            self.node_execution_records,
            self.task_execution_records,
            self.segment_records,
            self.event_batches,
        ]
        for records in self.collections:
            records.use_budget(self.budget)
        unread_kinds = {kind.kind for kind in unread} if settings.etcd.read_database_size else set()
        # The collections with a watch (all but the unread kinds measured on kube-apiserver).
        self.watched = [c for c in self.collections if c.kind.kind not in unread_kinds]
        self._unwatched = [c for c in self.collections if c.kind.kind in unread_kinds]
        registration = settings.registration
        self.descriptions = Descriptions(
            self.description_records, lambda: {RT.TASK: self.tasks, RT.WORKFLOW: self.workflows}
        )
        self.tasks = Tasks(
            self.task_records,
            projects=self.projects,
            descriptions=self.descriptions,
            resource_limits=self.task_resource_limits,
            whitelist=registration.task_type_whitelist,
            blobs=lambda: self.blobs,
            inline_threshold=settings.storage.inline_threshold_bytes,
        )
        self.workflows = Workflows(
            self.workflow_records,
            projects=self.projects,
            tasks=self.tasks,
            descriptions=self.descriptions,
            launch_plan_interface=self._launch_plan_interface,
            blobs=lambda: self.blobs,
            inline_threshold=settings.storage.inline_threshold_bytes,
            limits=WorkflowLimits(
                registration.max_workflow_nodes,
                registration.workflow_size_limit,
                # Room for the rest of GetWorkflow's answer (id, description).
                max_closure_bytes=settings.server.max_message_bytes - 64 * 1024,
            ),
        )
        self.launch_plans = LaunchPlans(
            self.launch_plan_records,
            projects=self.projects,
            workflows=self.workflows,
            named=lambda: self.named_entities,
        )
        self.named_entities = NamedEntities(
            self.named_entity_records,
            {RT.TASK: self.tasks, RT.WORKFLOW: self.workflows, RT.LAUNCH_PLAN: self.launch_plans},
        )

        self.executions = Executions(
            self.execution_records,
            settings=settings,
            projects=self.projects,
            tasks=self.tasks,
            workflows=self.workflows,
            launch_plans=self.launch_plans,
            attributes=self.attributes,
            blobs=lambda: self.blobs,
        )
        # Archived executions: history files in the blob store, queried in place (docs/storage.md).
        self.history_engine = HistoryEngine(self.blobs, settings.history)
        self.history = ExecutionHistory(
            self.history_engine,
            self.execution_records,
            self.segment_records,
            {
                "launch_plan": self.launch_plans.candidates,
                "workflow": self.workflows.candidates,
                "task": self.tasks.candidates,
            },
        )
        self.executions.history = self.history
        self.children_of = ChildrenOf(
            self.execution_records,
            self.node_execution_records,
            self.task_execution_records,
            self.signal_records,
        )
        self.children_of.history = self.history
        self.signals = Signals(self.signal_records, self.executions, self.children_of)
        self.events = Events(
            self.executions,
            self.node_execution_records,
            self.task_execution_records,
            blobs=lambda: self.blobs,
            max_data_bytes=settings.executions.max_inline_data_bytes,
            registered_tasks=self.tasks,
            children_of=self.children_of,
            journal=self.journal,
        )

    def task_resource_limits(self, project: str, domain: str) -> TaskResourceLimits:
        """The TASK_RESOURCE attribute's limits over the configured ones (§3.1)."""
        matching = self.attributes.effective(MR.TASK_RESOURCE, project, domain)
        attribute = matching.task_resource_attributes if matching else None
        return limits_from_attributes(attribute, self.settings.task_resources.limits)

    def _launch_plan_interface(
        self, identifier: identifier_pb2.Identifier
    ) -> LaunchPlanLike | None:
        record = self.launch_plans.exact(identifier)
        if record is None:
            return None
        closure: launch_plan_pb2.LaunchPlanClosure = record.value.message.closure
        return closure

    def share_writes(self, watermarks: Watermarks) -> None:
        """Run as one of several API-server workers: publish this worker's writes, and let
        ``barrier`` wait for the others' (core/watermarks.py)."""
        for slot, collection in enumerate(self.collections):
            collection.share_writes(watermarks, slot)
        self._watermarks = watermarks

    async def barrier(self, timeout: float = 2.0) -> None:
        """Wait until every cache has seen the writes other workers acknowledged before now.
        Nearly always immediate; past ``timeout`` the call goes on with what the cache has."""
        if self._watermarks is None:
            return
        published = self._watermarks.others_published()
        if published == self._caught_up_with:
            return  # nothing acknowledged elsewhere since the caches last held it all
        lagging = [(c, v) for c in self.collections if (v := c.catch_up_version())]
        if not lagging:
            self._caught_up_with = published
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        behind = []
        for collection, version in lagging:
            remaining = max(0.0, deadline - loop.time())
            if not await collection.wait_seen(version, remaining):
                behind.append(collection.kind.plural)
        if not behind:
            self._caught_up_with = published
        else:
            log.warning(
                "caches of %s still behind other workers after %.1fs; serving anyway",
                ", ".join(behind),
                timeout,
            )

    def _waiting_by_cluster(self) -> dict[str, int]:
        """Executions waiting for their execution cluster, by cluster (a metric)."""
        counts: dict[str, int] = {}
        for stored in self.execution_records.values():
            record = stored.value
            if record.resolved.get(WAITING):
                cluster = cluster_of(record)
                counts[cluster] = counts.get(cluster, 0) + 1
        return counts

    async def start(self) -> None:
        for collection in self.watched:
            collection.start()
        self.budget.measure_on_apiserver({c.kind.kind: c.kind.crd_name for c in self._unwatched})
        gauges = metrics.follow_store(self.watched, self.budget, self._waiting_by_cluster)
        self._metrics_task = asyncio.create_task(gauges)
        if self.settings.etcd.read_database_size:
            follow = follow_apiserver_metrics(
                self.budget,
                self.http,
                self._watch_after_all,
                self.metrics_interval,
                self.metrics_grace,
            )
            self._apiserver_metrics_task = asyncio.create_task(follow)
        timeout = self.settings.kubernetes.cache_sync_timeout_seconds
        loop = asyncio.get_running_loop()
        for collection in self.watched:
            synced = await loop.run_in_executor(None, collection.wait_synced, timeout)
            if not synced:
                raise TimeoutError(
                    f"the {collection.kind.plural} cache did not sync within {timeout}s: is "
                    f"the namespace {collection.namespace!r} there and are the CRDs installed?"
                )
        heap.caches_loaded()

    def _watch_after_all(self, kinds: list[str]) -> None:
        """kube-apiserver does not report the size of ``kinds``: their caches count them."""
        for collection in [c for c in self._unwatched if c.kind.kind in kinds]:
            self._unwatched.remove(collection)
            self.watched.append(collection)  # the store gauges and readiness follow it too
            collection.start()

    def fold_journal(self) -> None:
        """Run the journal's fold in this process (the API server's: it writes events)."""
        self._journal_task = asyncio.create_task(self.journal.run())

    async def stop(self) -> None:
        if self._journal_task is not None:
            self._journal_task.cancel()
            await asyncio.gather(self._journal_task, return_exceptions=True)
            try:
                await self.journal.close()  # nothing this process wrote is left unfolded
            except Exception:  # noqa: BLE001 - what is left is folded as an orphan later
                log.exception("journal not folded on stop")
        for task in (self._apiserver_metrics_task, self._metrics_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for collection in self.collections:
            collection.stop()
        deadline = time.monotonic() + 10.0
        for collection in self.collections:
            await asyncio.to_thread(collection.join, max(0.0, deadline - time.monotonic()))
        await self.http.close()
        await self.blobs.close()
        self.history_engine.close()
