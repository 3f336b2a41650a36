"""Realistic records of the four kinds, shaped like what flytekit and flytepropeller produce:
used by the history tests and by ``bench/history.py`` (sizes matter there)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from flyteidl.admin import (
    common_pb2,
    execution_pb2,
    node_execution_pb2,
    signal_pb2,
    task_execution_pb2,
)
from flyteidl.core import catalog_pb2, identifier_pb2, literals_pb2, types_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.event import event_pb2
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from flyteadmin.core import listing
from flyteadmin.core.crmap.executions import ExecutionRecord
from flyteadmin.core.crmap.node_executions import NodeExecutionRecord
from flyteadmin.core.crmap.signals import SignalRecord
from flyteadmin.core.crmap.task_executions import TaskExecutionRecord
from flyteadmin.core.store import Stored

RT = identifier_pb2.ResourceType
WF = core_execution.WorkflowExecution.Phase
NODE = core_execution.NodeExecution.Phase
TASK = core_execution.TaskExecution.Phase
ExecutionMode = execution_pb2.ExecutionMetadata.ExecutionMode

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/usr/local/lib/python3.11/site-packages/flytekit/exceptions/scopes.py", line 183,'
    " in user_entry_point\n    return wrapped(*args, **kwargs)\n"
    '  File "/root/workflows/train.py", line 42, in train\n'
    "    raise ValueError(f'bad learning rate {lr}')\n"
    "ValueError: bad learning rate -0.1\n"
    "\nUser error.\n"
)


def stamp(moment: dt.datetime | None) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    if moment is not None:
        out.FromDatetime(moment)
    return out


def ident(rt: int, project: str, domain: str, name: str, version: str) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=rt, project=project, domain=domain, name=name, version=version
    )


@dataclass(frozen=True)
class Shape:
    """What one execution looks like."""

    project: str
    domain: str
    name: str
    created_at: dt.datetime | None
    phase: int = WF.SUCCEEDED
    launch_plan: str = "train.pipeline.training_wf"
    version: str = "v-4f2a9c1e7b"
    principal: str = "alice@example.com"
    mode: int = ExecutionMode.MANUAL
    nodes: int = 10
    failed: bool = False
    single_task: bool = False
    labels: tuple[tuple[str, str], ...] = (("team", "ml"), ("cost-center", "research"))
    tags: tuple[str, ...] = ("nightly",)
    archived: bool = False
    duration: dt.timedelta | None = dt.timedelta(minutes=7, seconds=13, microseconds=250_000)


def _prefix(s: Shape) -> str:
    return f"gs://flyte-data/metadata/propeller/{s.project}-{s.domain}-{s.name}"


def execution(s: Shape) -> ExecutionRecord:
    lp = ident(RT.LAUNCH_PLAN, s.project, s.domain, s.launch_plan, s.version)
    wf = ident(RT.WORKFLOW, s.project, s.domain, s.launch_plan, s.version)
    task = ident(RT.TASK, s.project, s.domain, "train.pipeline.fit", s.version)
    started = s.created_at + dt.timedelta(seconds=3) if s.created_at else None
    ended = started + s.duration if started and s.duration is not None else started
    spec = execution_pb2.ExecutionSpec(
        launch_plan=lp,
        metadata=execution_pb2.ExecutionMetadata(
            mode=s.mode,
            principal=s.principal,
            system_metadata=execution_pb2.SystemMetadata(
                execution_cluster="propeller", namespace=f"{s.project}-{s.domain}"
            ),
        ),
        labels=common_pb2.Labels(values=dict(s.labels)),
        annotations=common_pb2.Annotations(values={"flyte.org/owner": s.principal}),
        security_context=_security(),
        raw_output_data_config=common_pb2.RawOutputDataConfig(
            output_location_prefix="gs://flyte-data/raw"
        ),
        max_parallelism=25,
        envs=common_pb2.Envs(values=[literals_pb2.KeyValuePair(key="LOG_LEVEL", value="info")]),
        tags=list(s.tags),
        notifications=execution_pb2.NotificationList(
            notifications=[
                common_pb2.Notification(
                    phases=[WF.FAILED, WF.TIMED_OUT],
                    email=common_pb2.EmailNotification(
                        recipients_email=[s.principal, "ml-oncall@example.com"]
                    ),
                ),
                common_pb2.Notification(
                    phases=[WF.SUCCEEDED],
                    slack=common_pb2.SlackNotification(recipients_email=["#ml-pipelines"]),
                ),
            ]
        ),
    )
    closure = execution_pb2.ExecutionClosure(
        phase=s.phase,
        created_at=stamp(s.created_at),
        updated_at=stamp(ended or s.created_at),
        workflow_id=wf,
        state_change_details=execution_pb2.ExecutionStateChangeDetails(
            state=execution_pb2.EXECUTION_ARCHIVED
            if s.archived
            else execution_pb2.EXECUTION_ACTIVE,
            occurred_at=stamp(s.created_at),
        ),
    )
    if started is not None and s.phase != WF.UNDEFINED:
        closure.started_at.CopyFrom(stamp(started))
    if s.duration is not None and s.phase in (WF.SUCCEEDED, WF.FAILED, WF.ABORTED):
        closure.duration.CopyFrom(duration_pb2.Duration())
        closure.duration.FromTimedelta(s.duration)
    if s.failed or s.phase == WF.FAILED:
        closure.error.CopyFrom(
            core_execution.ExecutionError(
                code="USER:ValueError",
                message=TRACEBACK,
                error_uri=f"{_prefix(s)}/n3/data/0/error.pb",
                kind=core_execution.ExecutionError.USER,
            )
        )
    elif s.phase == WF.SUCCEEDED:
        closure.outputs.uri = f"{_prefix(s)}/end-node/data/0/outputs.pb"
    elif s.phase == WF.ABORTED:
        closure.abort_metadata.cause = "terminated by user"
        closure.abort_metadata.principal = s.principal
    return ExecutionRecord(
        execution=execution_pb2.Execution(
            id=identifier_pb2.WorkflowExecutionIdentifier(
                project=s.project, domain=s.domain, name=s.name
            ),
            spec=spec,
            closure=closure,
        ),
        launch_plan_id=lp,
        workflow_id=wf,
        task_id=task if s.single_task else None,
        inputs_uri=f"{_prefix(s)}/inputs.pb",
        user_inputs_uri=f"{_prefix(s)}/user_inputs.pb",
        request_digest="sha256:" + "ab" * 16,
        resolved={
            "namespace": f"{s.project}-{s.domain}",
            "taskResources": {"defaults": {"cpu": "2", "memory": "200Mi"}},
            "maxParallelism": 25,
        },
        notified=({"index": 0, "phase": "SUCCEEDED", "sender": "smtp", "outcome": "Delivered"},)
        if s.phase == WF.SUCCEEDED
        else (),
    )


def _security():
    from flyteidl.core import security_pb2

    return security_pb2.SecurityContext(run_as=security_pb2.Identity(k8s_service_account="default"))


def node_id(i: int) -> str:
    return f"n{i}"


def node_execution(
    s: Shape, i: int, *, parent: str = "", dynamic: bool = False
) -> NodeExecutionRecord:
    ex = identifier_pb2.WorkflowExecutionIdentifier(project=s.project, domain=s.domain, name=s.name)
    nid = node_id(i) if not parent else f"{parent}-0-{node_id(i)}"
    created = (s.created_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) + dt.timedelta(seconds=5 + i)
    phase = NODE.FAILED if s.failed and i == 3 else NODE.SUCCEEDED
    closure = node_execution_pb2.NodeExecutionClosure(
        phase=phase,
        started_at=stamp(created + dt.timedelta(seconds=1)),
        duration=duration_pb2.Duration(seconds=30 + i, nanos=125_000_000),
        created_at=stamp(created),
        updated_at=stamp(created + dt.timedelta(seconds=31 + i)),
        task_node_metadata=node_execution_pb2.TaskNodeMetadata(
            cache_status=catalog_pb2.CACHE_MISS if i % 2 else catalog_pb2.CACHE_DISABLED,
            catalog_key=catalog_pb2.CatalogMetadata(
                dataset_id=ident(RT.DATASET, s.project, s.domain, f"flyte_task-fit{i}", "1.0"),
            )
            if i % 2
            else None,
            checkpoint_uri=f"{_prefix(s)}/{nid}/data/0/checkpoint",
        ),
        deck_uri=f"{_prefix(s)}/{nid}/data/0/deck.html" if i == 0 else "",
    )
    if phase == NODE.FAILED:
        closure.error.CopyFrom(
            core_execution.ExecutionError(
                code="USER:ValueError", message=TRACEBACK, kind=core_execution.ExecutionError.USER
            )
        )
    else:
        closure.output_uri = f"{_prefix(s)}/{nid}/data/0/outputs.pb"
    if dynamic:
        closure.dynamic_job_spec_uri = f"{_prefix(s)}/{nid}/data/0/futures.pb"
    node = node_execution_pb2.NodeExecution(
        id=identifier_pb2.NodeExecutionIdentifier(execution_id=ex, node_id=nid),
        input_uri=f"{_prefix(s)}/{nid}/data/inputs.pb",
        closure=closure,
        metadata=node_execution_pb2.NodeExecutionMetaData(
            retry_group="0", spec_node_id=node_id(i), is_parent_node=dynamic, is_dynamic=dynamic
        ),
    )
    return NodeExecutionRecord(
        node=node,
        parent_id=parent,
        parent_task=task_execution(s, i).task.id if parent else None,
        dynamic_workflow_uri=f"{_prefix(s)}/{nid}/data/0/dynamic_compiled.pb" if dynamic else "",
    )


def task_execution(s: Shape, i: int, attempt: int = 0) -> TaskExecutionRecord:
    ex = identifier_pb2.WorkflowExecutionIdentifier(project=s.project, domain=s.domain, name=s.name)
    nid = node_id(i)
    created = (s.created_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) + dt.timedelta(seconds=6 + i)
    generated = f"{s.name}-{nid}-{attempt}"
    phase = TASK.FAILED if s.failed and i == 3 else TASK.SUCCEEDED
    closure = task_execution_pb2.TaskExecutionClosure(
        phase=phase,
        logs=[
            core_execution.TaskLog(
                uri=f"https://console.cloud.google.com/logs/query;query=resource.labels.pod_name%3D{generated}",
                name="Stackdriver Logs",
                message_format=core_execution.TaskLog.JSON,
            ),
            core_execution.TaskLog(
                uri=f"http://localhost:30082/#!/log/{s.project}-{s.domain}/{generated}/pod",
                name="Kubernetes Logs (User)",
            ),
        ],
        started_at=stamp(created + dt.timedelta(seconds=2)),
        duration=duration_pb2.Duration(seconds=25 + i),
        created_at=stamp(created),
        updated_at=stamp(created + dt.timedelta(seconds=27 + i)),
        custom_info=struct_pb2.Struct(),
        reason="task completed",
        task_type="python-task",
        metadata=event_pb2.TaskExecutionMetadata(
            generated_name=generated,
            plugin_identifier="container",
            instance_class=event_pb2.TaskExecutionMetadata.DEFAULT,
        ),
        event_version=1,
        reasons=[
            task_execution_pb2.Reason(occurred_at=stamp(created), message="task submitted to K8s"),
            task_execution_pb2.Reason(
                occurred_at=stamp(created + dt.timedelta(seconds=2)),
                message="[ContainersNotReady|ContainerCreating]: containers with unready status",
            ),
        ],
    )
    closure.custom_info.update({"podName": generated, "node": "gke-pool-1-a8f3"})
    if phase == TASK.FAILED:
        closure.error.CopyFrom(
            core_execution.ExecutionError(
                code="USER:ValueError", message=TRACEBACK, kind=core_execution.ExecutionError.USER
            )
        )
    else:
        closure.output_uri = f"{_prefix(s)}/{nid}/data/{attempt}/outputs.pb"
    task = task_execution_pb2.TaskExecution(
        id=identifier_pb2.TaskExecutionIdentifier(
            task_id=ident(RT.TASK, s.project, s.domain, f"train.pipeline.step_{i}", s.version),
            node_execution_id=identifier_pb2.NodeExecutionIdentifier(execution_id=ex, node_id=nid),
            retry_attempt=attempt,
        ),
        input_uri=f"{_prefix(s)}/{nid}/data/inputs.pb",
        closure=closure,
    )
    return TaskExecutionRecord(task=task, phase_version=3)


def signal(s: Shape, signal_id: str, value: bool | None) -> SignalRecord:
    ex = identifier_pb2.WorkflowExecutionIdentifier(project=s.project, domain=s.domain, name=s.name)
    sig = signal_pb2.Signal(
        id=identifier_pb2.SignalIdentifier(signal_id=signal_id, execution_id=ex),
        type=types_pb2.LiteralType(simple=types_pb2.BOOLEAN),
    )
    set_at = None
    if value is not None:
        sig.value.scalar.primitive.boolean = value
        set_at = (s.created_at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) + dt.timedelta(minutes=2)
    return SignalRecord(sig, set_at)


def random_shape(rng: random.Random, project: str, domain: str, name: str, created_at) -> Shape:
    return Shape(
        project=project,
        domain=domain,
        name=name,
        created_at=created_at,
        phase=rng.choice((WF.SUCCEEDED, WF.SUCCEEDED, WF.FAILED, WF.RUNNING, WF.ABORTED)),
        launch_plan=rng.choice(("train.pipeline.training_wf", "etl.daily", "report.weekly")),
        principal=rng.choice(("alice@example.com", "bob@example.com", "flyte-scheduler")),
    )


class Registry:
    """Registered entities as ``execution_schema`` joins them (``find`` and ``schema``)."""

    def __init__(self, schema: listing.EntitySchema, records: list[Stored]) -> None:
        self.schema = schema
        self.by_key = {r.value.key: r for r in records}

    def find(self, ident: identifier_pb2.Identifier) -> Stored | None:
        return self.by_key.get((ident.project, ident.domain, ident.name, ident.version))


def resolver(schema: listing.EntitySchema, registries: dict[str, Registry]):
    """What the caller of ``HistoryEngine.list_executions`` answers for join filters: the ids
    of the registered entities the filter accepts."""

    def resolve(f: listing.Filter):
        test = listing.joined_matches(schema, f)
        return {r.value.key for r in registries[f.entity].by_key.values() if test(r)}

    return resolve
