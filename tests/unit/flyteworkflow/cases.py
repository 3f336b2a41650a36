"""Realistic build inputs: the compiler's golden flytekit closures (every node kind) plus an
execution record as the executions service stores it. Shared with the integration test."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from flyteidl.admin import execution_pb2
from flyteidl.core import compiler_pb2, identifier_pb2, literals_pb2
from google.protobuf import json_format

from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.flyteworkflow import FlyteWorkflowOptions, build_flyteworkflow

COMPILER_GOLDEN = Path(__file__).parents[1] / "compiler" / "golden"
ACCEPTED_AT = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
RT = identifier_pb2.ResourceType


def closure(name: str) -> compiler_pb2.CompiledWorkflowClosure:
    data = json.loads((COMPILER_GOLDEN / f"{name}.json").read_text())
    return json_format.ParseDict(data, compiler_pb2.CompiledWorkflowClosure())


def _int(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def _str(value: str) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value))
    )


def record(
    workflow: compiler_pb2.CompiledWorkflowClosure, name: str, **resolved
) -> ExecutionRecord:
    wf_id = workflow.primary.template.id
    spec = execution_pb2.ExecutionSpec(max_parallelism=25)
    spec.security_context.run_as.k8s_service_account = "default"
    spec.security_context.run_as.execution_identity = "alice"
    spec.raw_output_data_config.output_location_prefix = "s3://bucket/raw"
    spec.labels.values.update({"team": "ml"})
    spec.annotations.values.update({"owner": "alice"})
    execution = execution_pb2.Execution(
        id=identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name=name),
        spec=spec,
    )
    lp_id = identifier_pb2.Identifier(
        resource_type=RT.LAUNCH_PLAN, project="p", domain="d", name=wf_id.name, version="v1"
    )
    return ExecutionRecord(
        execution=execution,
        launch_plan_id=lp_id,
        workflow_id=wf_id,
        inputs_uri=f"s3://bucket/{name}/inputs.pb",
        resolved={
            "namespace": "p-d",
            "taskResources": {
                "defaults": {"cpu": "2", "memory": "200Mi"},
                "limits": {"cpu": "2", "memory": "1Gi", "gpu": "1"},
            },
            "pluginOverrides": {},
            "executionQueue": {},
            **resolved,
        },
    )


@dataclass(frozen=True)
class Case:
    name: str
    workflow: str
    inputs: dict[str, literals_pb2.Literal]
    options: FlyteWorkflowOptions = FlyteWorkflowOptions()
    resolved: dict | None = None
    tweak: str = ""

    def build(self) -> dict:
        wf = closure(self.workflow)
        rec = record(wf, self.name, **(self.resolved or {}))
        if self.tweak == "config":
            spec = rec.execution.spec
            spec.interruptible.value = True
            spec.overwrite_cache = True
            spec.envs.values.add(key="FOO", value="bar")
            spec.security_context.run_as.iam_role = "arn:aws:iam::1:role/flyte"
        return build_flyteworkflow(
            rec,
            wf,
            literals_pb2.LiteralMap(literals=self.inputs),
            accepted_at=ACCEPTED_AT,
            options=self.options,
        )


CASES = [
    # task, sub-workflow, launch plan, branch, gate (approve/signal/sleep), array, dynamic
    Case("main-wf", "main_wf", {"a": _int(1), "b": _int(2)}),
    # failure node, dataclass/enum/file types, optional inputs; admin options and overrides
    Case(
        "data-wf",
        "data_wf",
        {"a": _int(3), "color": _str("red"), "name": _str("x")},
        FlyteWorkflowOptions(role_name_key="iam.amazonaws.com/role", dynamic_queue="dyn-q"),
        {
            "pluginOverrides": {
                "overrides": [
                    {
                        "task_type": "python-task",
                        "plugin_id": ["k8s-array"],
                        "missing_plugin_behavior": "USE_DEFAULT",
                    }
                ]
            },
            "recoveryExecution": {"project": "p", "domain": "d", "name": "prev"},
        },
        tweak="config",
    ),
    # nested branches and an else-fail
    Case("nested-branch-wf", "nested_branch_wf", {"a": _int(7)}),
    # offloaded closure and inputs, console URL
    Case(
        "offloaded",
        "nested_branch_wf",
        {"a": _int(7)},
        FlyteWorkflowOptions(
            workflow_closure_reference="s3://bucket/closure.pb",
            use_offloaded_inputs=True,
            console_url="https://flyte.example.com/console",
        ),
    ),
]
