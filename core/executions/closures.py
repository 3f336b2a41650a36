"""Workflow closures in the blob store for FlyteWorkflow objects that name theirs
(``operator.use_offloaded_workflow_closure``, docs/operator.md).

The closure an object names is the one its tasks would be built from: the workflow's compiled
closure prepared for the execution (resources completed from the resolved task resources, the
child queue), as ``admin.WorkflowClosure`` protobuf, which is what propeller reads. It is stored
under a name that ends in the digest of its bytes, so every execution of a workflow version with
the same resolved resources names one blob, written once per process; a different resolution
names another. flyteadmin names the closure stored at registration instead, so its offloaded
objects lose the task resource defaults applied at launch (docs/decisions.md).

Blobs are immutable and small (the closure of one workflow version); they are kept for as long
as the workflow version exists, like the registration's own offloaded closures.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable

from flyteidl.admin import workflow_pb2
from flyteidl.core import compiler_pb2

from flyteadmin.core.blobstore import BlobStore
from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.flyteworkflow.build import prepare_closure
from flyteadmin.core.registration.versions import digest

# (project, domain, name, version, resolved task resources as canonical JSON)
Key = tuple[str, str, str, str, str]


class OffloadedClosures:
    """The blob URI of each launch's prepared closure, writing it when this process has not."""

    def __init__(self, blobs: Callable[[], BlobStore], dynamic_queue: str, size: int = 4096):
        self._blobs = blobs
        self._dynamic_queue = dynamic_queue
        self._size = size
        self._written: OrderedDict[Key, str] = OrderedDict()

    async def reference(
        self, record: ExecutionRecord, closure: compiler_pb2.CompiledWorkflowClosure
    ) -> str:
        wf = record.workflow_id
        resources = json.dumps(record.resolved.get("taskResources") or {}, sort_keys=True)
        key = (wf.project, wf.domain, wf.name, wf.version, resources)
        uri = self._written.get(key)
        if uri is not None:
            self._written.move_to_end(key)
            return uri
        prepared = prepare_closure(closure, record.resolved, self._dynamic_queue)
        message = workflow_pb2.WorkflowClosure(compiled_workflow=prepared)
        blobs = self._blobs()
        uri = blobs.uri_for("admin", "launch-closures", *key[:4], digest(message))
        # The same bytes as any earlier write of this name.
        await blobs.put(uri, message.SerializeToString(deterministic=True))
        self._written[key] = uri
        if len(self._written) > self._size:
            self._written.popitem(last=False)
        return uri
