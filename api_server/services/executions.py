"""CreateExecution, GetExecution, ListExecutions, UpdateExecution, TerminateExecution, Relaunch,
Recover, GetExecutionData, GetExecutionMetrics."""

from __future__ import annotations

from flyteidl.admin import common_pb2, execution_pb2

from flyteadmin.api_server.context import CallContext, Handler
from flyteadmin.core.backend import Backend
from flyteadmin.core.executions.metrics import ExecutionMetrics
from flyteadmin.core.wire import Encoded

ADMIN = "/flyteidl.service.AdminService/"


def handlers(backend: Backend) -> dict[str, Handler]:
    executions = backend.executions
    metrics = ExecutionMetrics(executions, backend.workflows, backend.events)

    async def create(
        request: execution_pb2.ExecutionCreateRequest, ctx: CallContext
    ) -> execution_pb2.ExecutionCreateResponse:
        ident = await executions.create(request, principal=ctx.principal)
        return execution_pb2.ExecutionCreateResponse(id=ident)

    async def get(
        request: execution_pb2.WorkflowExecutionGetRequest, ctx: CallContext
    ) -> execution_pb2.Execution:
        return await executions.get(request.id)

    async def list_(
        request: common_pb2.ResourceListRequest, ctx: CallContext
    ) -> Encoded[execution_pb2.ExecutionList]:
        return await executions.list(request)

    async def update(
        request: execution_pb2.ExecutionUpdateRequest, ctx: CallContext
    ) -> execution_pb2.ExecutionUpdateResponse:
        await executions.update(request, principal=ctx.principal)
        return execution_pb2.ExecutionUpdateResponse()

    async def terminate(
        request: execution_pb2.ExecutionTerminateRequest, ctx: CallContext
    ) -> execution_pb2.ExecutionTerminateResponse:
        await executions.terminate(request, principal=ctx.principal)
        return execution_pb2.ExecutionTerminateResponse()

    async def get_data(
        request: execution_pb2.WorkflowExecutionGetDataRequest, ctx: CallContext
    ) -> execution_pb2.WorkflowExecutionGetDataResponse:
        return await executions.get_data(request.id)

    async def relaunch(
        request: execution_pb2.ExecutionRelaunchRequest, ctx: CallContext
    ) -> execution_pb2.ExecutionCreateResponse:
        ident = await executions.relaunch(
            request.id,
            name=request.name,
            principal=ctx.principal,
            overwrite_cache=request.overwrite_cache,
        )
        return execution_pb2.ExecutionCreateResponse(id=ident)

    async def recover(
        request: execution_pb2.ExecutionRecoverRequest, ctx: CallContext
    ) -> execution_pb2.ExecutionCreateResponse:
        ident = await executions.relaunch(
            request.id,
            name=request.name,
            principal=ctx.principal,
            mode=execution_pb2.ExecutionMetadata.RECOVERED,
            parent_metadata=request.metadata,
        )
        return execution_pb2.ExecutionCreateResponse(id=ident)

    async def get_metrics(
        request: execution_pb2.WorkflowExecutionGetMetricsRequest, ctx: CallContext
    ) -> execution_pb2.WorkflowExecutionGetMetricsResponse:
        return await metrics.get(request)

    return {
        ADMIN + "GetExecutionMetrics": get_metrics,
        ADMIN + "RelaunchExecution": relaunch,
        ADMIN + "RecoverExecution": recover,
        ADMIN + "GetExecutionData": get_data,
        ADMIN + "CreateExecution": create,
        ADMIN + "GetExecution": get,
        ADMIN + "ListExecutions": list_,
        ADMIN + "UpdateExecution": update,
        ADMIN + "TerminateExecution": terminate,
    }
