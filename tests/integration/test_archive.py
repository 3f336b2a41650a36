"""The archive cycle on the real apiserver and blob store: finished executions move to history
(core/archive.py) and every read answers exactly as before; etcd keeps nothing of them; writes
to an archived execution behave as for a finished live one; an archive interrupted at any step
leaves duplicates at worst, never a loss, and is finished by the next pass."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from flyteidl.admin import (
    common_pb2,
    execution_pb2,
    node_execution_pb2,
    signal_pb2,
    task_execution_pb2,
)
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2
from flyteidl.service import signal_pb2_grpc
from kubernetes import client

from flyteadmin.core import crds
from flyteadmin.core.archive import Archiver
from flyteadmin.core.backend import Backend
from flyteadmin.core.config import ArchiveSettings, EtcdSettings
from flyteadmin.core.errors import AdminError, Code
from tests.integration.registration_helpers import DOMAIN, PROJECT
from tests.integration.servers import LoopThread
from tests.integration.test_events_api import Propeller, ints, run_task_node
from tests.waiting import eventually

WF = core_execution.WorkflowExecution.Phase
NODE = core_execution.NodeExecution.Phase
PD = common_pb2.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN)


# ------------------------------------------------------------------------------ the runs


def _run(stub, name: str, inputs, *, fail: bool = False) -> Propeller:
    """``inputs``: the ``stored_inputs`` fixture (the nodes' input blobs exist, as propeller's)."""
    p = Propeller(stub, name)
    p.create()
    p.workflow(WF.QUEUED, 0)
    p.workflow(WF.RUNNING, 1)
    p.node("start-node", NODE.RUNNING, 2)
    p.node("start-node", NODE.SUCCEEDED, 3)
    run_task_node(p, "n0", 10, input_uri=inputs(f"{name}/n0", ints(x=1)))
    run_task_node(p, "n1", 20, fail_first=True, input_uri=inputs(f"{name}/n1", ints(x=2)))
    p.node("end-node", NODE.SUCCEEDED, 30)
    if fail:
        error = core_execution.ExecutionError(code="E", message="boom", kind=1)
        p.workflow(WF.FAILED, 40, error=error)
    else:
        p.workflow(WF.SUCCEEDED, 40, output_data=ints(o0=20))
    return p


def _gate(channel, p: Propeller) -> None:
    """A gate node's signal, created by propeller and set by a user."""
    signals = signal_pb2_grpc.SignalServiceStub(channel)
    sid = identifier_pb2.SignalIdentifier(signal_id="approve", execution_id=p.ex)
    boolean = types_pb2.LiteralType(simple=types_pb2.BOOLEAN)
    signals.GetOrCreateSignal(signal_pb2.SignalGetOrCreateRequest(id=sid, type=boolean))
    value = literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=True))
    )
    signals.SetSignal(signal_pb2.SignalSetRequest(id=sid, value=value))


def _answers(stub, channel, runs: list[Propeller]) -> dict[str, object]:
    """What clients read of these executions, every read RPC."""
    out: dict[str, object] = {}

    def lst(filters: str = "", **kw) -> list[str]:
        got = stub.ListExecutions(
            common_pb2.ResourceListRequest(id=PD, limit=100, filters=filters, **kw)
        )
        return [e.SerializeToString(deterministic=True) for e in got.executions]

    sort = common_pb2.Sort(key="created_at", direction=common_pb2.Sort.DESCENDING)
    out["list"] = lst(sort_by=sort)
    out["list succeeded"] = lst("eq(phase,SUCCEEDED)", sort_by=sort)
    out["list failed"] = lst("eq(phase,FAILED)")
    out["list lp"] = lst("eq(launch_plan.name,lp)")
    out["list archived state"] = lst("eq(state,1)")
    out["list name"] = lst("value_in(name,a1;a2)")
    out["list duration"] = lst("gt(duration,30)", sort_by=common_pb2.Sort(key="duration"))
    page = stub.ListExecutions(common_pb2.ResourceListRequest(id=PD, limit=1, token="1"))
    out["page"] = (page.token, [e.id.name for e in page.executions])
    signals = signal_pb2_grpc.SignalServiceStub(channel)
    for p in runs:
        name = p.ex.name
        out[f"{name} get"] = p.get()
        request = execution_pb2.WorkflowExecutionGetDataRequest(id=p.ex)
        out[f"{name} data"] = stub.GetExecutionData(request)
        metrics = execution_pb2.WorkflowExecutionGetMetricsRequest(id=p.ex, depth=10)
        out[f"{name} metrics"] = stub.GetExecutionMetrics(metrics)
        out[f"{name} nodes"] = p.nodes()
        out[f"{name} nodes filtered"] = p.nodes(filters="eq(phase,SUCCEEDED)")
        for node in ("start-node", "n0", "n1", "end-node"):
            out[f"{name} node {node}"] = stub.GetNodeExecution(
                node_execution_pb2.NodeExecutionGetRequest(id=p.node_id(node))
            )
        out[f"{name} node data"] = stub.GetNodeExecutionData(
            node_execution_pb2.NodeExecutionGetDataRequest(id=p.node_id("n0"))
        )
        out[f"{name} tasks"] = p.tasks("n1")
        for attempt in (0, 1):
            out[f"{name} task {attempt}"] = stub.GetTaskExecution(
                task_execution_pb2.TaskExecutionGetRequest(id=p.task_id("n1", attempt))
            )
        out[f"{name} task data"] = stub.GetTaskExecutionData(
            task_execution_pb2.TaskExecutionGetDataRequest(id=p.task_id("n0", 0))
        )
        out[f"{name} signals"] = signals.ListSignals(
            signal_pb2.SignalListRequest(workflow_execution_id=p.ex, limit=10)
        )
    return out


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def operator_backend(settings) -> Iterator[tuple[LoopThread, Backend]]:
    """The core as the operator holds it, on its own loop (the archiver's side)."""
    loop = LoopThread()
    backend = Backend(settings)
    loop.call(backend.start())
    try:
        yield loop, backend
    finally:
        loop.call(backend.stop())
        loop.close()


def _archiver(backend: Backend, **kw) -> Archiver:
    return Archiver(backend, ArchiveSettings(retention_seconds=0), EtcdSettings(), **kw)


def _due(backend: Backend, count: int) -> Archiver:
    """An archiver, once the operator's cache has seen ``count`` executions finish (the watch
    delivers an execution's creation before its last event: counting objects is not enough)."""
    archiver = _archiver(backend)
    eventually(lambda: len(archiver.candidates()) == count, "the operator's cache to see them end")
    return archiver


def _objects(kube_api, namespace: str, kind: crds.Kind) -> list[dict]:
    custom = client.CustomObjectsApi(kube_api)
    return custom.list_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural)[
        "items"
    ]


def _live_counts(kube_api, namespace: str) -> dict[str, int]:
    kinds = (crds.EXECUTION, crds.NODE_EXECUTION, crds.TASK_EXECUTION, crds.SIGNAL)
    return {k.plural: len(_objects(kube_api, namespace, k)) for k in kinds}


def _eventually_equal(read: Callable[[], dict], expected: dict) -> None:
    """The API server's caches follow the deletions within moments: compare until they do."""
    last: dict = {}

    def same() -> bool:
        nonlocal last
        last = read()
        return last == expected

    try:
        eventually(same, "the answers after archiving to equal those before", timeout=30)
    except AssertionError:
        diff = [k for k in expected if last.get(k) != expected[k]]
        raise AssertionError(f"answers differ after archiving: {diff}") from None


# ------------------------------------------------------------------------------ tests


def test_every_read_answers_the_same_after_archiving(
    api_server, registered_stub, operator_backend, kube_api, namespace, stored_inputs
):
    stub = registered_stub
    channel = grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}")
    runs = [_run(stub, n, stored_inputs, fail=n == "a2") for n in ("a1", "a2", "a3")]
    _gate(channel, runs[0])
    stub.UpdateExecution(
        execution_pb2.ExecutionUpdateRequest(id=runs[2].ex, state=execution_pb2.EXECUTION_ARCHIVED)
    )
    before = _answers(stub, channel, runs)
    # Sanity: the answers hold what they should.
    assert len(before["list"]) == 2 and len(before["list archived state"]) == 1
    assert len(before["a1 signals"].signals) == 1
    assert len(before["a1 nodes"].node_executions) == 4
    assert len(before["a1 metrics"].span.spans) > 2
    # The journal folds the node states into their objects moments after the answers.
    eventually(
        lambda: _live_counts(kube_api, namespace)["nodeexecutions"] == 12, "the journal's fold"
    )

    loop, backend = operator_backend
    outcome = loop.call(_due(backend, 3).run_once())
    assert (outcome.archived, outcome.skipped) == (3, 0)

    # etcd holds nothing of them; history does.
    assert _live_counts(kube_api, namespace) == {
        "executions": 0,
        "nodeexecutions": 0,
        "taskexecutions": 0,
        "signals": 0,
    }
    segments = _objects(kube_api, namespace, crds.HISTORY_SEGMENT)
    assert {s["spec"]["table"] for s in segments} == {
        "executions",
        "node_executions",
        "task_executions",
        "signals",
    }
    assert all(s["status"]["phase"] == "Done" for s in segments)
    _eventually_equal(lambda: _answers(stub, channel, runs), before)
    channel.close()


def test_writes_to_an_archived_execution_behave_as_for_a_finished_one(
    api_server, registered_stub, operator_backend, stored_inputs
):
    stub = registered_stub
    p = _run(stub, "w1", stored_inputs)
    loop, backend = operator_backend
    loop.call(_due(backend, 1).run_once())
    eventually(lambda: len(api_server.backend.execution_records) == 0, "the deletion")

    with pytest.raises(grpc.RpcError) as info:
        stub.TerminateExecution(execution_pb2.ExecutionTerminateRequest(id=p.ex, cause="x"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # A late event is refused as for a finished execution, and brings nothing back to etcd.
    with pytest.raises(grpc.RpcError) as info:
        p.node("n0", NODE.SUCCEEDED, 50)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as info:
        p.workflow(WF.RUNNING, 51)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(api_server.backend.node_execution_records) == 0
    # Its name stays taken.
    with pytest.raises(grpc.RpcError) as info:
        p.create()
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS

    # Archive state changes: a newer history row, read back at once, in lists too.
    stub.UpdateExecution(
        execution_pb2.ExecutionUpdateRequest(id=p.ex, state=execution_pb2.EXECUTION_ARCHIVED)
    )
    assert p.get().closure.state_change_details.state == execution_pb2.EXECUTION_ARCHIVED
    listed = stub.ListExecutions(
        common_pb2.ResourceListRequest(id=PD, limit=10, filters="eq(state,1)")
    ).executions
    assert [e.id.name for e in listed] == ["w1"]
    assert not stub.ListExecutions(common_pb2.ResourceListRequest(id=PD, limit=10)).executions

    # Relaunch and recover start new live executions from the archived spec and inputs.
    relaunched = stub.RelaunchExecution(
        execution_pb2.ExecutionRelaunchRequest(id=p.ex, name="w2")
    ).id
    recovered = stub.RecoverExecution(execution_pb2.ExecutionRecoverRequest(id=p.ex, name="w3"))
    for ident in (relaunched, recovered.id):
        got = stub.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=ident))
        assert got.spec.metadata.reference_execution == p.ex
        data = stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=ident))
        original = stub.GetExecutionData(execution_pb2.WorkflowExecutionGetDataRequest(id=p.ex))
        assert data.full_inputs == original.full_inputs


class _Crash(Exception):
    pass


async def _crash(*_, **__):
    raise _Crash


# Where a kill -9 can stop an archive, as the attribute that fails there.
STEPS = {
    "after the files": ("segment_records", "create"),  # files written, no segment
    "after the segments": ("archiver", "_finish"),  # segments Committed, nothing marked
    "after the mark": ("archiver", "_delete"),  # marked, no object deleted
    "after the children": ("execution_records", "delete"),  # children gone, execution left
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_an_archive_interrupted_at_any_step_loses_nothing(
    step,
    monkeypatch,
    api_server,
    registered_stub,
    operator_backend,
    kube_api,
    namespace,
    stored_inputs,
):
    stub = registered_stub
    channel = grpc.insecure_channel(f"127.0.0.1:{api_server.grpc_port}")
    runs = [_run(stub, "c1", stored_inputs), _run(stub, "c2", stored_inputs)]
    _gate(channel, runs[0])
    before = _answers(stub, channel, runs)
    loop, backend = operator_backend
    archiver = _due(backend, 2)
    owner, attribute = STEPS[step]
    monkeypatch.setattr(
        archiver if owner == "archiver" else getattr(backend, owner), attribute, _crash
    )
    with pytest.raises(_Crash):
        loop.call(archiver.archive(archiver.candidates()))
    monkeypatch.undo()
    # Whatever was left half done, every read still answers the same, no execution twice...
    _eventually_equal(lambda: _answers(stub, channel, runs), before)
    # ...and a fresh archiver (after a restart) finishes the work.
    fresh = _archiver(backend)
    loop.call(fresh.run_once())
    eventually(lambda: _live_counts(kube_api, namespace)["executions"] == 0, "the archive")
    assert _live_counts(kube_api, namespace) == dict.fromkeys(
        ("executions", "nodeexecutions", "taskexecutions", "signals"), 0
    )
    assert all(
        s["status"]["phase"] == "Done" for s in _objects(kube_api, namespace, crds.HISTORY_SEGMENT)
    )
    _eventually_equal(lambda: _answers(stub, channel, runs), before)
    channel.close()


def test_archiving_goes_on_while_new_work_is_refused(
    api_server, registered_stub, operator_backend, kube_api, namespace, stored_inputs
):
    """Archiving is what frees etcd: its writes (history segments, the mark) must be admitted
    while the budget refuses new work, or a full budget never empties (found by bench.archive:
    the archiver's HistorySegment was refused as new work)."""
    _run(registered_stub, "full1", stored_inputs)
    loop, backend = operator_backend
    archiver = _due(backend, 1)
    budget = backend.budget
    limits = budget.settings
    between = limits.quota_bytes * (limits.refuse_new_above + limits.refuse_all_above) / 2
    budget.set_live("Padding", int(between - budget.usage().estimate), 0)
    with pytest.raises(AdminError) as refused:
        budget.admit("Execution", new_work=True)
    assert refused.value.code == Code.RESOURCE_EXHAUSTED

    outcome = loop.call(archiver.run_once())
    assert outcome.archived == 1
    assert _live_counts(kube_api, namespace)["executions"] == 0
