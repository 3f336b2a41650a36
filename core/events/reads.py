"""The read side of node and task executions (§6.2 and §6.3 "Reads"), mixed into ``Events``."""

from __future__ import annotations

from typing import Any

from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import compiler_pb2, identifier_pb2, literals_pb2

from flyteadmin.core import listing
from flyteadmin.core.blobstore import read_referenced
from flyteadmin.core.crmap.executions import execution_object_name
from flyteadmin.core.crmap.node_executions import NodeExecutionRecord, node_execution_object_name
from flyteadmin.core.crmap.task_executions import (
    TaskExecutionRecord,
    task_execution_key,
    task_execution_object_name,
)
from flyteadmin.core.errors import invalid_argument, missing, not_found
from flyteadmin.core.events.listing import node_schema, task_schema
from flyteadmin.core.events.node_events import describe
from flyteadmin.core.registration.entities import sort_args
from flyteadmin.core.store import Stored


def _check_execution_id(ex: identifier_pb2.WorkflowExecutionIdentifier) -> None:
    for field in ("project", "domain", "name"):
        if not getattr(ex, field):
            raise missing(field)


def _trimmed(node: node_execution_pb2.NodeExecution) -> node_execution_pb2.NodeExecution:
    """ListNodeExecutions trims error messages to 100 bytes (valid UTF-8)."""
    if not node.closure.HasField("error"):
        return node
    out = node_execution_pb2.NodeExecution()
    out.CopyFrom(node)
    out.closure.error.message = out.closure.error.message.encode()[:100].decode(errors="ignore")
    return out


class DetailReads:
    """Needs ``executions``, ``nodes``, ``tasks``, ``blobs``, ``max_data_bytes`` and
    ``registered_tasks`` (for the `task.` join) on ``self``."""

    executions: Any
    nodes: Any
    tasks: Any
    blobs: Any
    max_data_bytes: int
    registered_tasks: Any

    def _schemas(self) -> tuple[listing.EntitySchema, listing.EntitySchema]:
        if getattr(self, "_schema_cache", None) is None:

            def execution_of(r):
                return self.executions.records.get(execution_object_name(_execution_of(r.value.id)))

            def node_of(r):
                return self.nodes.get(node_execution_object_name(r.value.id.node_execution_id))

            def task_of(r):
                registered = self.registered_tasks
                return registered.find(r.value.id.task_id) if registered is not None else None

            self._schema_cache = (
                node_schema(execution_of),
                task_schema(execution_of, node_of, task_of),
            )
        return self._schema_cache

    # ----------------------------------------------------------------------------- nodes

    def find_node(self, ident: identifier_pb2.NodeExecutionIdentifier) -> Stored:
        _check_execution_id(ident.execution_id)
        if not ident.node_id:
            raise missing("node_id")
        record = self.nodes.get(node_execution_object_name(ident))
        if record is None or record.value.id != ident:
            raise not_found(
                f"missing entity of type NodeExecution with identifier {describe(ident)}"
            )
        return record

    def _served_node(self, record: NodeExecutionRecord) -> node_execution_pb2.NodeExecution:
        node = record.node
        if node.metadata.is_parent_node or not self._has_children(record):
            return node
        out = node_execution_pb2.NodeExecution()
        out.CopyFrom(node)
        out.metadata.is_parent_node = True  # children recorded without an is_parent event
        return out

    def _has_children(self, record: NodeExecutionRecord) -> bool:
        ex = record.id.execution_id
        return bool(
            self.nodes.by_index("parent", (ex.project, ex.domain, ex.name, record.id.node_id))
        )

    def get_node(self, ident: identifier_pb2.NodeExecutionIdentifier):
        return self._served_node(self.find_node(ident).value)

    def list_nodes(self, request: node_execution_pb2.NodeExecutionListRequest):
        ex = request.workflow_execution_id
        _check_execution_id(ex)
        if request.unique_parent_id:
            parent = identifier_pb2.NodeExecutionIdentifier(
                execution_id=ex, node_id=request.unique_parent_id
            )
            self.find_node(parent)
            rows = self.nodes.by_index("parent", (ex.project, ex.domain, ex.name, parent.node_id))
        else:
            rows = [
                r
                for r in self.nodes.by_index("execution", (ex.project, ex.domain, ex.name))
                if not r.value.parent_id and r.value.parent_task is None
            ]
        return self._node_page(request, rows, "ListNodeExecutions")

    def list_nodes_for_task(self, request: node_execution_pb2.NodeExecutionForTaskListRequest):
        self.find_task(request.task_execution_id)
        rows = self.nodes.by_index("parent-task", task_execution_key(request.task_execution_id))
        return self._node_page(request, rows, "ListNodeExecutionsForTask")

    def _node_page(self, request, rows, rpc: str) -> node_execution_pb2.NodeExecutionList:
        schema = self._schemas()[0]
        page = listing.evaluate(_query(schema, request, rpc), rows)
        return node_execution_pb2.NodeExecutionList(
            node_executions=[_trimmed(self._served_node(r.value)) for r in page.items],
            token=page.next_token,
        )

    async def get_node_data(self, ident: identifier_pb2.NodeExecutionIdentifier):
        record = self.find_node(ident).value
        node = record.node
        response = node_execution_pb2.NodeExecutionGetDataResponse()
        await self._fill_data(response, node.input_uri, node.closure)
        ex = ident.execution_id
        base = f"flyte://v1/{ex.project}/{ex.domain}/{ex.name}/{ident.node_id}"
        response.flyte_urls.inputs, response.flyte_urls.outputs = f"{base}/i", f"{base}/o"
        if node.closure.deck_uri:
            response.flyte_urls.deck = f"{base}/d"
        if record.dynamic_workflow_uri:
            compiled = await self._dynamic_closure(record)
            response.dynamic_workflow.id.CopyFrom(compiled.primary.template.id)
            response.dynamic_workflow.compiled_workflow.CopyFrom(compiled)
            response.dynamic_workflow.dynamic_job_spec_uri = node.closure.dynamic_job_spec_uri
        return response

    async def get_dynamic_workflow(self, ident: identifier_pb2.NodeExecutionIdentifier):
        record = self.find_node(ident).value
        if not record.dynamic_workflow_uri:
            raise not_found("node does not contain dynamic workflow")
        return node_execution_pb2.DynamicNodeWorkflowResponse(
            compiled_workflow=await self._dynamic_closure(record)
        )

    async def _dynamic_closure(self, record: NodeExecutionRecord):
        data = await self.blobs.get(record.dynamic_workflow_uri)
        return compiler_pb2.CompiledWorkflowClosure.FromString(data)

    # ----------------------------------------------------------------------------- tasks

    def find_task(self, ident: identifier_pb2.TaskExecutionIdentifier) -> Stored:
        _check_execution_id(ident.node_execution_id.execution_id)
        for field in ("project", "domain", "name", "version"):
            if not getattr(ident.task_id, field):
                raise missing(field)
        record = self.tasks.get(task_execution_object_name(ident))
        if record is None or task_execution_key(record.value.id) != task_execution_key(ident):
            raise not_found(
                f"missing entity of type TaskExecution with identifier "
                f"{describe(ident.node_execution_id)} task:{ident.task_id.name}@"
                f"{ident.task_id.version} retry_attempt:{ident.retry_attempt}"
            )
        return record

    def _served_task(self, record: TaskExecutionRecord) -> task_execution_pb2.TaskExecution:
        out = task_execution_pb2.TaskExecution()
        out.CopyFrom(record.task)
        out.is_parent = bool(self.nodes.by_index("parent-task", task_execution_key(record.id)))
        return out

    def get_task(self, ident: identifier_pb2.TaskExecutionIdentifier):
        return self._served_task(self.find_task(ident).value)

    def list_tasks(self, request: task_execution_pb2.TaskExecutionListRequest):
        node = request.node_execution_id
        _check_execution_id(node.execution_id)
        if not node.node_id:
            raise missing("node_id")
        ex = node.execution_id
        rows = self.tasks.by_index("node", (ex.project, ex.domain, ex.name, node.node_id))
        page = listing.evaluate(_query(self._schemas()[1], request, "ListTaskExecutions"), rows)
        return task_execution_pb2.TaskExecutionList(
            task_executions=[self._served_task(r.value) for r in page.items],
            token=page.next_token,
        )

    async def get_task_data(self, ident: identifier_pb2.TaskExecutionIdentifier):
        task = self.find_task(ident).value.task
        response = task_execution_pb2.TaskExecutionGetDataResponse()
        await self._fill_data(response, task.input_uri, task.closure)
        node = ident.node_execution_id
        ex = node.execution_id
        base = f"flyte://v1/{ex.project}/{ex.domain}/{ex.name}/{node.node_id}/{ident.retry_attempt}"
        response.flyte_urls.inputs, response.flyte_urls.outputs = f"{base}/i", f"{base}/o"
        return response

    # ----------------------------------------------------------------------------- data

    async def _fill_data(self, response, input_uri: str, closure) -> None:
        """Inputs from the URI, outputs from the closure (URI or inline); as §5.7, data above
        the size limit gives empty maps; unlike it, a missing blob is an error
        (``read_referenced``, docs/decisions.md)."""
        inputs = await self._read_literals(input_uri)
        if inputs is not None:
            response.full_inputs.CopyFrom(inputs)
        if closure.HasField("output_data"):
            if closure.output_data.ByteSize() <= self.max_data_bytes:
                response.full_outputs.CopyFrom(closure.output_data)
        elif closure.output_uri:
            outputs = await self._read_literals(closure.output_uri)
            if outputs is not None:
                response.full_outputs.CopyFrom(outputs)

    async def _read_literals(self, uri: str) -> literals_pb2.LiteralMap | None:
        if not uri:
            return None
        data = await read_referenced(self.blobs, uri)
        if len(data) > self.max_data_bytes:
            return None
        return literals_pb2.LiteralMap.FromString(data)


def _execution_of(ident) -> identifier_pb2.WorkflowExecutionIdentifier:
    if isinstance(ident, identifier_pb2.NodeExecutionIdentifier):
        return ident.execution_id
    return ident.node_execution_id.execution_id


def _query(schema: listing.EntitySchema, request, rpc: str) -> listing.ListQuery:
    if request.limit <= 0:
        raise invalid_argument("invalid value for limit")
    sort_key, ascending = sort_args(request)
    return listing.parse_list_request(
        schema,
        filters=request.filters,
        sort_key=sort_key,
        ascending=ascending,
        token=request.token,
        limit=request.limit,
        rpc=rpc,
    )
