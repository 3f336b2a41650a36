"""Hand-built registration requests for the API tests (what flytekit would send, minimal)."""

from __future__ import annotations

from flyteidl.admin import launch_plan_pb2, project_pb2, task_pb2, workflow_pb2
from flyteidl.core import (
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
)
from flyteidl.core import (
    types_pb2 as core_types,
)
from flyteidl.core import (
    workflow_pb2 as core_wf,
)

RT = identifier_pb2.ResourceType
PROJECT, DOMAIN = "flytesnacks", "development"
INT = types_pb2.LiteralType(simple=types_pb2.INTEGER)


def ident(kind: int, name: str, version: str = "v1") -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=kind, project=PROJECT, domain=DOMAIN, name=name, version=version
    )


def int_interface(inputs=("x",), outputs=("o0",)) -> interface_pb2.TypedInterface:
    return interface_pb2.TypedInterface(
        inputs=interface_pb2.VariableMap(
            variables={n: interface_pb2.Variable(type=INT, description=n) for n in inputs}
        ),
        outputs=interface_pb2.VariableMap(
            variables={n: interface_pb2.Variable(type=INT, description=n) for n in outputs}
        ),
    )


def task_request(name: str, version: str = "v1", image: str = "img:1", **resources):
    template = tasks_pb2.TaskTemplate(
        id=ident(RT.TASK, name, version),
        type="python-task",
        metadata=tasks_pb2.TaskMetadata(runtime=tasks_pb2.RuntimeMetadata(version="1.16")),
        interface=int_interface(),
        container=tasks_pb2.Container(image=image, args=["pyflyte-execute", "{{.input}}"]),
    )
    if resources:
        template.container.resources.requests.extend(
            tasks_pb2.Resources.ResourceEntry(
                name=getattr(tasks_pb2.Resources, key.upper()), value=value
            )
            for key, value in resources.items()
        )
    return task_pb2.TaskCreateRequest(
        id=ident(RT.TASK, name, version), spec=task_pb2.TaskSpec(template=template)
    )


def promise(node: str, var: str) -> literals_pb2.BindingData:
    return literals_pb2.BindingData(promise=core_types.OutputReference(node_id=node, var=var))


def chain_workflow(name: str, task: str, nodes: int = 2, version: str = "v1", pad: str = ""):
    """``x -> n0 -> n1 -> ... -> o0``; ``pad`` adds a large literal to each node's metadata
    name, to make the compiled closure big."""
    wf_nodes = []
    for i in range(nodes):
        source = promise("", "x") if i == 0 else promise(f"n{i - 1}", "o0")
        wf_nodes.append(
            core_wf.Node(
                id=f"n{i}",
                metadata=core_wf.NodeMetadata(name=f"step {i} {pad}"),
                inputs=[literals_pb2.Binding(var="x", binding=source)],
                upstream_node_ids=[f"n{i - 1}"] if i else [],
                task_node=core_wf.TaskNode(reference_id=ident(RT.TASK, task)),
            )
        )
    template = core_wf.WorkflowTemplate(
        id=ident(RT.WORKFLOW, name, version),
        interface=int_interface(),
        nodes=wf_nodes,
        outputs=[literals_pb2.Binding(var="o0", binding=promise(f"n{nodes - 1}", "o0"))],
    )
    return workflow_pb2.WorkflowCreateRequest(
        id=ident(RT.WORKFLOW, name, version), spec=workflow_pb2.WorkflowSpec(template=template)
    )


def launch_plan_request(name: str, workflow: str, version: str = "v1", **defaults: int):
    params = {
        key: interface_pb2.Parameter(
            var=interface_pb2.Variable(type=INT),
            default=literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
            ),
        )
        for key, value in defaults.items()
    }
    return launch_plan_pb2.LaunchPlanCreateRequest(
        id=ident(RT.LAUNCH_PLAN, name, version),
        spec=launch_plan_pb2.LaunchPlanSpec(
            workflow_id=ident(RT.WORKFLOW, workflow, version),
            default_inputs=interface_pb2.ParameterMap(parameters=params),
        ),
    )


def register_basics(admin) -> None:
    """Project flytesnacks, task ``t``, workflow ``wf`` (t twice) and launch plan ``lp``
    (default x=5), through an AdminService stub."""
    admin.RegisterProject(
        project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="f"))
    )
    admin.CreateTask(task_request("t"))
    admin.CreateWorkflow(chain_workflow("wf", "t"))
    admin.CreateLaunchPlan(launch_plan_request("lp", "wf", x=5))


def ints(**values: int) -> literals_pb2.LiteralMap:
    """A LiteralMap of integers, e.g. ``ints(x=1)``."""
    return literals_pb2.LiteralMap(
        literals={
            k: literals_pb2.Literal(
                scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=v))
            )
            for k, v in values.items()
        }
    )
