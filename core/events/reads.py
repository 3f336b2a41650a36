"""The read side of node and task executions (§6.2 and §6.3 "Reads"), mixed into ``Events``."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import compiler_pb2, identifier_pb2, literals_pb2

from flyteadmin.core import listing, wire
from flyteadmin.core.blobstore import BlobStore, read_referenced
from flyteadmin.core.crmap.executions import ExecutionRecord, execution_object_name
from flyteadmin.core.crmap.node_executions import NodeExecutionRecord
from flyteadmin.core.crmap.task_executions import TaskExecutionRecord, task_execution_key
from flyteadmin.core.errors import invalid_argument, missing, not_found
from flyteadmin.core.events.listing import node_schema, task_schema
from flyteadmin.core.events.node_events import describe
from flyteadmin.core.executions.history import Children, ChildrenOf, LiveChildren
from flyteadmin.core.registration.entities import sort_args
from flyteadmin.core.store import Collection, Stored

if TYPE_CHECKING:  # core/executions/service.py imports the events package
    from flyteadmin.core.executions.service import Executions


_NODES = wire.ListShape(node_execution_pb2.NodeExecutionList, "node_executions")
_TASKS = wire.ListShape(task_execution_pb2.TaskExecutionList, "task_executions")


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


def _node_answer(
    record: NodeExecutionRecord, has_children: bool
) -> node_execution_pb2.NodeExecution:
    node = record.node
    if node.metadata.is_parent_node or not has_children:
        return node
    out = node_execution_pb2.NodeExecution()
    out.CopyFrom(node)
    out.metadata.is_parent_node = True  # children recorded without an is_parent event
    return out


def _listed_node(
    record: NodeExecutionRecord, has_children: bool
) -> node_execution_pb2.NodeExecution:
    return _trimmed(_node_answer(record, has_children))


def _task_answer(record: TaskExecutionRecord, is_parent: bool) -> task_execution_pb2.TaskExecution:
    out = task_execution_pb2.TaskExecution()
    out.CopyFrom(record.task)
    out.is_parent = is_parent
    return out


class DetailReads:
    """Needs ``executions``, ``nodes``, ``tasks``, ``blobs``, ``max_data_bytes``,
    ``registered_tasks`` (for the `task.` join) and ``children_of`` (where an execution's
    children are read: core/executions/history.py) on ``self``."""

    executions: Executions
    nodes: Collection[NodeExecutionRecord]
    tasks: Collection[TaskExecutionRecord]
    max_data_bytes: int
    registered_tasks: Any
    children_of: ChildrenOf
    _schema_cache: tuple[listing.EntitySchema, listing.EntitySchema] | None = None

    @property
    def blobs(self) -> BlobStore:
        raise NotImplementedError

    def _schemas(self, children: Children) -> tuple[listing.EntitySchema, listing.EntitySchema]:
        """The list schemas, with joins looking up ``children``'s execution and nodes (live
        children share one pair, built once)."""
        live = isinstance(children, LiveChildren)
        if live and self._schema_cache is not None:
            return self._schema_cache
        execution: dict[str, Stored[ExecutionRecord] | None] = {}

        def execution_of(r: Any) -> Stored[ExecutionRecord] | None:
            ex = _execution_of(r.value.id)
            if live:
                return self.executions.records.get(execution_object_name(ex))
            return execution.get("record")

        def node_of(r: Stored[TaskExecutionRecord]) -> Stored[NodeExecutionRecord] | None:
            return children.node(r.value.id.node_execution_id)

        def task_of(r: Stored[TaskExecutionRecord]) -> Any:
            registered = self.registered_tasks
            return registered.find(r.value.id.task_id) if registered is not None else None

        schemas = (node_schema(execution_of), task_schema(execution_of, node_of, task_of))
        if live:
            self._schema_cache = schemas
        else:
            execution["record"] = getattr(children, "execution", None)
        return schemas

    # ----------------------------------------------------------------------------- nodes

    async def find_node(
        self, ident: identifier_pb2.NodeExecutionIdentifier
    ) -> tuple[Stored[NodeExecutionRecord], Children]:
        """(the node execution, its execution's children)."""
        _check_execution_id(ident.execution_id)
        if not ident.node_id:
            raise missing("node_id")
        children = await self.children_of(ident.execution_id)
        record = children.node(ident)
        if record is None or record.value.id != ident:
            raise not_found(
                f"missing entity of type NodeExecution with identifier {describe(ident)}"
            )
        return record, children

    def _served_node(
        self, record: NodeExecutionRecord, children: Children
    ) -> node_execution_pb2.NodeExecution:
        return _node_answer(record, children.has_children(record.id.node_id))

    async def get_node(
        self, ident: identifier_pb2.NodeExecutionIdentifier
    ) -> node_execution_pb2.NodeExecution:
        record, children = await self.find_node(ident)
        return self._served_node(record.value, children)

    async def list_nodes(
        self, request: node_execution_pb2.NodeExecutionListRequest
    ) -> wire.Encoded[node_execution_pb2.NodeExecutionList]:
        ex = request.workflow_execution_id
        _check_execution_id(ex)
        if request.unique_parent_id:
            parent = identifier_pb2.NodeExecutionIdentifier(
                execution_id=ex, node_id=request.unique_parent_id
            )
            _, children = await self.find_node(parent)
            rows = children.with_parent(parent.node_id)
        else:
            children = await self.children_of(ex)
            rows = [
                r
                for r in children.all_nodes()
                if not r.value.parent_id and r.value.parent_task is None
            ]
        return self._node_page(request, rows, children, "ListNodeExecutions")

    async def list_nodes_for_task(
        self, request: node_execution_pb2.NodeExecutionForTaskListRequest
    ) -> wire.Encoded[node_execution_pb2.NodeExecutionList]:
        _, children = await self.find_task(request.task_execution_id)
        rows = children.with_parent_task(task_execution_key(request.task_execution_id))
        return self._node_page(request, rows, children, "ListNodeExecutionsForTask")

    def _node_page(
        self,
        request: ListRequest,
        rows: list[Stored[NodeExecutionRecord]],
        children: Children,
        rpc: str,
    ) -> wire.Encoded[node_execution_pb2.NodeExecutionList]:
        schema = self._schemas(children)[0]
        page = listing.evaluate(_query(schema, request, rpc), rows)
        entries = []
        for r in page.items:
            parent = children.has_children(r.value.id.node_id)
            make = partial(_listed_node, r.value, parent)
            # Kept per whether it has children: is_parent comes from its siblings.
            entries.append(_NODES.kept(r.memo, make, parent))
        return _NODES.page(entries, page.next_token)

    async def get_node_data(
        self, ident: identifier_pb2.NodeExecutionIdentifier
    ) -> node_execution_pb2.NodeExecutionGetDataResponse:
        record = (await self.find_node(ident))[0].value
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

    async def get_dynamic_workflow(
        self, ident: identifier_pb2.NodeExecutionIdentifier
    ) -> node_execution_pb2.DynamicNodeWorkflowResponse:
        record = (await self.find_node(ident))[0].value
        if not record.dynamic_workflow_uri:
            raise not_found("node does not contain dynamic workflow")
        return node_execution_pb2.DynamicNodeWorkflowResponse(
            compiled_workflow=await self._dynamic_closure(record)
        )

    async def _dynamic_closure(
        self, record: NodeExecutionRecord
    ) -> compiler_pb2.CompiledWorkflowClosure:
        data = await self.blobs.get(record.dynamic_workflow_uri)
        return compiler_pb2.CompiledWorkflowClosure.FromString(data)

    # ----------------------------------------------------------------------------- tasks

    async def find_task(
        self, ident: identifier_pb2.TaskExecutionIdentifier
    ) -> tuple[Stored[TaskExecutionRecord], Children]:
        """(the task execution, its execution's children)."""
        _check_execution_id(ident.node_execution_id.execution_id)
        for field in ("project", "domain", "name", "version"):
            if not getattr(ident.task_id, field):
                raise missing(field)
        children = await self.children_of(ident.node_execution_id.execution_id)
        record = children.task(ident)
        if record is None or task_execution_key(record.value.id) != task_execution_key(ident):
            raise not_found(
                f"missing entity of type TaskExecution with identifier "
                f"{describe(ident.node_execution_id)} task:{ident.task_id.name}@"
                f"{ident.task_id.version} retry_attempt:{ident.retry_attempt}"
            )
        return record, children

    def _served_task(
        self, record: TaskExecutionRecord, children: Children
    ) -> task_execution_pb2.TaskExecution:
        return _task_answer(record, children.has_task_children(task_execution_key(record.id)))

    async def get_task(
        self, ident: identifier_pb2.TaskExecutionIdentifier
    ) -> task_execution_pb2.TaskExecution:
        record, children = await self.find_task(ident)
        return self._served_task(record.value, children)

    async def list_tasks(
        self, request: task_execution_pb2.TaskExecutionListRequest
    ) -> wire.Encoded[task_execution_pb2.TaskExecutionList]:
        node = request.node_execution_id
        _check_execution_id(node.execution_id)
        if not node.node_id:
            raise missing("node_id")
        children = await self.children_of(node.execution_id)
        rows = children.tasks_of(node.node_id)
        schema = self._schemas(children)[1]
        page = listing.evaluate(_query(schema, request, "ListTaskExecutions"), rows)
        entries = []
        for r in page.items:
            parent = children.has_task_children(task_execution_key(r.value.id))
            make = partial(_task_answer, r.value, parent)
            entries.append(_TASKS.kept(r.memo, make, parent))
        return _TASKS.page(entries, page.next_token)

    async def get_task_data(
        self, ident: identifier_pb2.TaskExecutionIdentifier
    ) -> task_execution_pb2.TaskExecutionGetDataResponse:
        task = (await self.find_task(ident))[0].value.task
        response = task_execution_pb2.TaskExecutionGetDataResponse()
        await self._fill_data(response, task.input_uri, task.closure)
        node = ident.node_execution_id
        ex = node.execution_id
        base = f"flyte://v1/{ex.project}/{ex.domain}/{ex.name}/{node.node_id}/{ident.retry_attempt}"
        response.flyte_urls.inputs, response.flyte_urls.outputs = f"{base}/i", f"{base}/o"
        return response

    # ----------------------------------------------------------------------------- data

    async def _fill_data(
        self,
        response: node_execution_pb2.NodeExecutionGetDataResponse
        | task_execution_pb2.TaskExecutionGetDataResponse,
        input_uri: str,
        closure: node_execution_pb2.NodeExecutionClosure | task_execution_pb2.TaskExecutionClosure,
    ) -> None:
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


def _execution_of(
    ident: identifier_pb2.NodeExecutionIdentifier | identifier_pb2.TaskExecutionIdentifier,
) -> identifier_pb2.WorkflowExecutionIdentifier:
    if isinstance(ident, identifier_pb2.NodeExecutionIdentifier):
        return ident.execution_id
    return ident.node_execution_id.execution_id


# The list requests of node and task executions: the same limit, token, filters and sort_by.
ListRequest = (
    node_execution_pb2.NodeExecutionListRequest
    | node_execution_pb2.NodeExecutionForTaskListRequest
    | task_execution_pb2.TaskExecutionListRequest
)


def _query(schema: listing.EntitySchema, request: ListRequest, rpc: str) -> listing.ListQuery:
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
