"""Single-task executions (§5.5): the generated `.flytegen.<task>` workflow and launch plan."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from flyteidl.admin import common_pb2, execution_pb2, launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2
from flyteidl.core import workflow_pb2 as core_wf

from flyteadmin.core.errors import AdminError, Code, not_found

if TYPE_CHECKING:
    from flyteadmin.core.executions.service import Executions
    from flyteadmin.core.registration.entities import Record

RT = identifier_pb2.ResourceType
GENERATED = ".flytegen."


def _node_id(task_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "", task_name)[-63:] or "task"


def _generated_id(
    ref: identifier_pb2.Identifier, kind: identifier_pb2.ResourceType
) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=kind,
        project=ref.project,
        domain=ref.domain,
        name=GENERATED + ref.name,
        version=ref.version,
    )


def generated_workflow(task: task_pb2.Task) -> core_wf.WorkflowTemplate:
    """One node running the task, its inputs bound from the workflow's, outputs to the node."""
    template = task.closure.compiled_task.template
    node_id = _node_id(task.id.name)
    retries = template.metadata.retries.retries if template.metadata.HasField("retries") else 3
    node = core_wf.Node(
        id=node_id,
        metadata=core_wf.NodeMetadata(
            name=node_id, retries=literals_pb2.RetryStrategy(retries=retries)
        ),
        inputs=[
            literals_pb2.Binding(
                var=name,
                binding=literals_pb2.BindingData(
                    promise=types_pb2.OutputReference(node_id="", var=name)
                ),
            )
            for name in template.interface.inputs.variables
        ],
        task_node=core_wf.TaskNode(reference_id=task.id),
    )
    return core_wf.WorkflowTemplate(
        id=_generated_id(task.id, RT.WORKFLOW),
        interface=template.interface,
        nodes=[node],
        outputs=[
            literals_pb2.Binding(
                var=name,
                binding=literals_pb2.BindingData(
                    promise=types_pb2.OutputReference(node_id=node_id, var=name)
                ),
            )
            for name in template.interface.outputs.variables
        ],
    )


async def _ignore_exists(call: Awaitable[object]) -> None:
    try:
        await call
    except AdminError as error:
        if error.code != Code.ALREADY_EXISTS:
            raise


async def ensure_task_launch_plan(
    executions: Executions,
    ref: identifier_pb2.Identifier,
    request: execution_pb2.ExecutionCreateRequest,
) -> Record:
    """Create the generated workflow and launch plan if absent (races are harmless) and mark
    both SYSTEM_GENERATED; returns the launch plan's record.

    Like flyteadmin, what exists is looked up first: after a task's first execution both are
    there, and building and registering them again (compiling the workflow, reading a task
    closure from the blob store, two refused creates) was a fifth of CreateExecution's CPU."""
    record = executions.tasks.exact(ref)
    if record is None:
        raise not_found(f"missing entity of type TASK with identifier {ref}")
    wf_id, lp_id = _generated_id(ref, RT.WORKFLOW), _generated_id(ref, RT.LAUNCH_PLAN)
    workflows, launch_plans = executions.workflows, executions.launch_plans
    if workflows.exact(wf_id) is None:
        template = generated_workflow(await executions.tasks.full(record))
        await _ignore_exists(
            workflows.create(
                workflow_pb2.WorkflowCreateRequest(
                    id=template.id, spec=workflow_pb2.WorkflowSpec(template=template)
                )
            )
        )
    found = launch_plans.exact(lp_id)
    if found is None:
        await _ignore_exists(
            launch_plans.create(
                launch_plan_pb2.LaunchPlanCreateRequest(
                    id=lp_id,
                    spec=launch_plan_pb2.LaunchPlanSpec(
                        workflow_id=wf_id,
                        security_context=request.spec.security_context,
                        auth_role=request.spec.auth_role,
                    ),
                )
            )
        )
        found = launch_plans.exact(lp_id)
    named = launch_plans._named()
    for kind in (RT.WORKFLOW, RT.LAUNCH_PLAN):
        meta = named.meta(kind, ref.project, ref.domain, wf_id.name)
        if meta.state != common_pb2.SYSTEM_GENERATED:
            await named.upsert(
                kind, ref.project, ref.domain, wf_id.name, state=common_pb2.SYSTEM_GENERATED
            )
    if found is None:
        # Created by another API-server worker and not in this one's cache yet.
        raise not_found(f"missing entity of type LAUNCH_PLAN with identifier {lp_id}")
    return found
