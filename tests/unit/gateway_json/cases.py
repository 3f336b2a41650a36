"""Messages whose HTTP JSON is compared with grpc-gateway's own (``golden.jsonl``).

Each case is a message the HTTP door answers with, built the way the product stores or
returns it: literals of every kind, maps of messages, oneofs, well-known types (Timestamp,
Duration, Struct, Any), unset messages at every depth.

``golden_input()`` is what ``tools/gatewayjson`` (flyteadmin's marshalers, in Go) reads to write
the golden file; see ``test_gateway_json.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from flyteidl.admin import (
    common_pb2,
    description_entity_pb2,
    execution_pb2,
    launch_plan_pb2,
    node_execution_pb2,
    project_pb2,
    task_pb2,
    workflow_pb2,
)
from flyteidl.core import (
    catalog_pb2,
    compiler_pb2,
    condition_pb2,
    identifier_pb2,
    interface_pb2,
    literals_pb2,
    tasks_pb2,
    types_pb2,
)
from flyteidl.core import (
    execution_pb2 as core_execution_pb2,
)
from flyteidl.core import (
    workflow_pb2 as core_workflow_pb2,
)
from flyteidl.service import identity_pb2
from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from flyteadmin.api_server.context import ANONYMOUS
from flyteadmin.api_server.services.identity import user_info
from tests.unit.compiler.builders import ident, int_value, str_value

RT = identifier_pb2.ResourceType
P, D = "flytesnacks", "development"
T = types_pb2.SimpleType


def _time(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _var(simple: int, description: str = "") -> interface_pb2.Variable:
    return interface_pb2.Variable(
        type=types_pb2.LiteralType(simple=simple), description=description
    )


def _struct(value: dict) -> struct_pb2.Struct:
    return json_format.ParseDict(value, struct_pb2.Struct())


def launch_plan_with_defaults() -> launch_plan_pb2.LaunchPlanList:
    """flyteconsole's launch plan page: default inputs (int, float, string, list) and a
    fixed input, as flytekit registers `pipeline_fixed`."""
    lp = launch_plan_pb2.LaunchPlan(id=ident(RT.LAUNCH_PLAN, "consoleproj.wf.pipeline_fixed"))
    lp.spec.workflow_id.CopyFrom(ident(RT.WORKFLOW, "consoleproj.wf.pipeline"))
    params = lp.spec.default_inputs.parameters
    params["a"].var.CopyFrom(_var(T.INTEGER, "a"))
    params["a"].default.CopyFrom(int_value(5))
    params["b"].var.CopyFrom(_var(T.INTEGER, "b"))
    params["b"].required = True
    params["ratio"].var.CopyFrom(_var(T.FLOAT))
    params["ratio"].default.scalar.primitive.float_value = 1.0
    params["xs"].var.type.collection_type.simple = T.INTEGER
    params["xs"].default.collection.literals.extend([int_value(0), int_value(-(2**40))])
    lp.spec.fixed_inputs.literals["label"].CopyFrom(str_value("fixed"))
    lp.spec.entity_metadata.schedule.cron_schedule.schedule = "*/5 * * * *"
    lp.spec.labels.values["team"] = "ml"
    lp.spec.max_parallelism = 25
    lp.closure.state = launch_plan_pb2.ACTIVE
    lp.closure.expected_inputs.CopyFrom(lp.spec.default_inputs)
    lp.closure.expected_outputs.variables["o0"].CopyFrom(_var(T.STRING))
    lp.closure.created_at.CopyFrom(_time(1764926830, 123456000))
    lp.closure.updated_at.CopyFrom(_time(1764926830, 123456000))
    return launch_plan_pb2.LaunchPlanList(launch_plans=[lp], token="5")


def execution() -> execution_pb2.Execution:
    ex = execution_pb2.Execution()
    ex.id.project, ex.id.domain, ex.id.name = P, D, "axwrxdl76ttl4cb9dpq8"
    ex.spec.launch_plan.CopyFrom(ident(RT.LAUNCH_PLAN, "consoleproj.wf.pipeline"))
    ex.spec.metadata.mode = execution_pb2.ExecutionMetadata.MANUAL
    ex.spec.metadata.principal = "anonymous"
    ex.spec.metadata.system_metadata.namespace = "flytesnacks-development"
    ex.spec.labels.values["k"] = "v"
    ex.spec.security_context.run_as.k8s_service_account = "default"
    ex.closure.phase = core_execution_pb2.WorkflowExecution.SUCCEEDED
    ex.closure.started_at.CopyFrom(_time(1764926832))
    ex.closure.duration.CopyFrom(duration_pb2.Duration(seconds=28, nanos=500000000))
    ex.closure.created_at.CopyFrom(_time(1764926832))
    ex.closure.updated_at.CopyFrom(_time(1764926860, 1))
    ex.closure.outputs.uri = "gs://flyteadmin/metadata/outputs.pb"
    ex.closure.workflow_id.CopyFrom(ident(RT.WORKFLOW, "consoleproj.wf.pipeline"))
    ex.closure.state_change_details.occurred_at.CopyFrom(_time(1764926832))
    return ex


def task_with_custom() -> task_pb2.TaskList:
    task = task_pb2.Task(id=ident(RT.TASK, "consoleproj.wf.add"))
    template = task.closure.compiled_task.template
    template.id.CopyFrom(task.id)
    template.type = "python-task"
    template.metadata.runtime.type = tasks_pb2.RuntimeMetadata.FLYTE_SDK
    template.metadata.runtime.version = "1.16.30"
    template.metadata.timeout.FromSeconds(600)
    template.metadata.retries.retries = 2
    template.interface.inputs.variables["a"].CopyFrom(_var(T.INTEGER))
    template.interface.outputs.variables["o0"].CopyFrom(_var(T.INTEGER))
    template.custom.CopyFrom(_struct({"n": 1, "on": True, "none": None, "xs": [1, "a", {}]}))
    template.container.image = "cr.flyte.org/flytekit:py3.11"
    template.container.args.extend(["pyflyte-execute", "--inputs", "{{.input}}"])
    template.container.resources.requests.add(name=tasks_pb2.Resources.CPU, value="500m")
    template.container.env.add(key="FLYTE_INTERNAL_IMAGE", value="x")
    task.closure.created_at.CopyFrom(_time(1764926830))
    task.short_description = "adds two numbers"
    return task_pb2.TaskList(tasks=[task])


def workflow_with_closure() -> workflow_pb2.Workflow:
    wf = workflow_pb2.Workflow(id=ident(RT.WORKFLOW, "consoleproj.wf.inner"))
    compiled = wf.closure.compiled_workflow
    primary = compiled.primary
    template = primary.template
    template.id.CopyFrom(wf.id)
    template.metadata.on_failure = core_workflow_pb2.WorkflowMetadata.FAIL_IMMEDIATELY
    template.interface.inputs.variables["a"].CopyFrom(_var(T.INTEGER))
    node = template.nodes.add(id="n0")
    node.metadata.name = "add"
    node.metadata.retries.retries = 1
    node.inputs.add(var="a").binding.promise.node_id = "start-node"
    node.inputs[0].binding.promise.var = "a"
    node.task_node.reference_id.CopyFrom(ident(RT.TASK, "consoleproj.wf.add"))
    branch = template.nodes.add(id="n1").branch_node.if_else
    branch.case.condition.comparison.operator = condition_pb2.ComparisonExpression.GT
    branch.case.condition.comparison.left_value.var = ".a"
    branch.case.condition.comparison.right_value.primitive.integer = 3
    branch.case.then_node.id = "n1-n0"
    branch.case.then_node.task_node.reference_id.CopyFrom(ident(RT.TASK, "consoleproj.wf.square"))
    branch.error.message = "no branch"
    array = template.nodes.add(id="n2").array_node
    array.node.task_node.reference_id.CopyFrom(ident(RT.TASK, "consoleproj.wf.square"))
    array.min_success_ratio = 1.0
    template.outputs.add(var="o0").binding.promise.node_id = "n0"
    primary.connections.downstream["start-node"].ids.extend(["n0"])
    primary.connections.upstream["n0"].ids.extend(["start-node"])
    task = compiled.tasks.add()
    task.template.id.CopyFrom(ident(RT.TASK, "consoleproj.wf.add"))
    task.template.type = "python-task"
    wf.closure.created_at.CopyFrom(_time(1764926830))
    return wf


def node_executions() -> node_execution_pb2.NodeExecutionList:
    parent = node_execution_pb2.NodeExecution()
    parent.id.node_id = "n0"
    parent.id.execution_id.project, parent.id.execution_id.domain = P, D
    parent.id.execution_id.name = "axwrxdl76ttl4cb9dpq8"
    parent.metadata.is_parent_node = True
    parent.metadata.spec_node_id = "n0"
    parent.closure.phase = core_execution_pb2.NodeExecution.SUCCEEDED
    parent.closure.workflow_node_metadata.executionId.name = "child"
    child = node_execution_pb2.NodeExecution()
    child.CopyFrom(parent)
    child.id.node_id = "n1"
    child.metadata.is_parent_node = False
    child.closure.task_node_metadata.cache_status = catalog_pb2.CACHE_MISS
    child.closure.error.code = "USER:Error"
    child.closure.error.kind = core_execution_pb2.ExecutionError.USER
    child.closure.deck_uri = "gs://flyteadmin/deck.html"
    return node_execution_pb2.NodeExecutionList(node_executions=[parent, child])


def literals() -> literals_pb2.LiteralMap:
    """Every kind of literal the console renders."""
    m = literals_pb2.LiteralMap()
    m.literals["int"].CopyFrom(int_value(2**53 + 1))
    m.literals["none"].scalar.none_type.SetInParent()
    m.literals["blob"].scalar.blob.uri = "gs://b/f.csv"
    m.literals["blob"].scalar.blob.metadata.type.format = "csv"
    m.literals["bin"].scalar.binary.value = b"\x00\xff msgpack"
    m.literals["bin"].scalar.binary.tag = "msgpack"
    m.literals["generic"].scalar.generic.CopyFrom(_struct({"a": [1.5, None]}))
    m.literals["sd"].scalar.structured_dataset.uri = "gs://b/sd"
    m.literals["union"].scalar.union.value.CopyFrom(str_value("u"))
    m.literals["union"].scalar.union.type.simple = T.STRING
    m.literals["err"].scalar.error.message = "boom"
    m.literals["time"].scalar.primitive.datetime.CopyFrom(_time(0, 5))
    m.literals["dur"].scalar.primitive.duration.CopyFrom(duration_pb2.Duration(seconds=-1))
    m.literals["map"].map.literals["k"].CopyFrom(str_value("v"))
    m.literals["hashed"].CopyFrom(str_value("h"))
    m.literals["hashed"].hash = "abc"
    m.literals["hashed"].metadata["m"] = "1"
    return m


def anonymous_user_info() -> identity_pb2.UserInfoResponse:
    return user_info(ANONYMOUS)


def not_found_status() -> status_pb2.Status:
    """An error body with a detail (an Any) whose message has unset message fields."""
    status = status_pb2.Status(code=5, message="missing entity")
    detail = project_pb2.Project(id="p", name="P")
    status.details.add().Pack(detail)
    return status


def descriptions() -> description_entity_pb2.DescriptionEntityList:
    entity = description_entity_pb2.DescriptionEntity(
        id=ident(RT.WORKFLOW, "consoleproj.wf.pipeline")
    )
    entity.short_description = "a pipeline"
    entity.long_description.format = description_entity_pb2.DESCRIPTION_FORMAT_RST
    entity.long_description.value = "long"
    return description_entity_pb2.DescriptionEntityList(descriptionEntities=[entity])


def projects() -> project_pb2.Projects:
    project = project_pb2.Project(id=P, name=P, description="flytesnacks description")
    project.domains.add(id=D, name=D)
    project.labels.values["owner"] = "me"
    return project_pb2.Projects(projects=[project, project_pb2.Project(id="empty")])


def named_entities() -> common_pb2.NamedEntityList:
    entity = common_pb2.NamedEntity(resource_type=RT.WORKFLOW)
    entity.id.project, entity.id.domain, entity.id.name = P, D, "consoleproj.wf.pipeline"
    return common_pb2.NamedEntityList(entities=[entity, common_pb2.NamedEntity()])


def compiled_task_only() -> compiler_pb2.CompiledTask:
    return compiler_pb2.CompiledTask()


CASES: dict[str, Callable[[], Message]] = {
    f.__name__: f
    for f in (
        launch_plan_with_defaults,
        execution,
        task_with_custom,
        workflow_with_closure,
        node_executions,
        literals,
        anonymous_user_info,
        not_found_status,
        descriptions,
        projects,
        named_entities,
        compiled_task_only,
    )
}


def wire(message: Message) -> str:
    return message.SerializeToString(deterministic=True).hex()


def golden_input() -> str:
    """One line per case: ``name <message full name> <hex of its bytes>``."""
    return "".join(
        f"{name} {m.DESCRIPTOR.full_name} {wire(m)}\n"
        for name, m in ((name, build()) for name, build in CASES.items())
    )
