"""What an operator of the control plane sees of a user's `pyflyte run --remote` on its metrics
pages (docs/operations.md): the RPCs, the store, the operator and propeller's events, with the
workflow run to SUCCEEDED by stock flytepropeller. In dev mode `flyteadmin dev` prints its one
metrics URL; in helm mode the API server's and the operator's are port-forwarded."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from flytekit.configuration import Config
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

from tests.e2e.stacks import DOMAIN, PROJECT, Stack
from tests.pyflyte import pyflyte
from tests.scrape import Page, fetch, parse
from tests.waiting import eventually

FLOW = textwrap.dedent(
    """
    from flytekit import task, workflow


    @task
    def double(x: int) -> int:
        return 2 * x


    @workflow
    def metered(x: int = 4) -> int:
        return double(x=double(x=x))
    """
)


def scrape_all(stack: Stack) -> Page:
    """Every metrics page of the stack as one (the processes' series are disjoint sets,
    except per-process ones such as process_* which this test does not read)."""
    assert stack.metrics_urls, "the stack reports no metrics URL"
    texts = []
    for url in stack.metrics_urls:
        status, text = fetch(url)
        assert status == 200, (url, text)
        texts.append(text)
    pages = [parse(text) for text in texts]
    return Page(
        tuple(s for page in pages for s in page.samples),
        {k: v for page in pages for k, v in page.types.items()},
    )


def grew(before: Page, after: Page, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def test_a_remote_run_shows_on_the_metrics_pages(e2e_stack: Stack, tmp_path: Path):
    (tmp_path / "metered_flow.py").write_text(FLOW)
    before = scrape_all(e2e_stack)
    result = pyflyte(
        e2e_stack.flytekit_config, "run", "--remote", "--project", PROJECT, "--domain", DOMAIN,
        "metered_flow.py", "metered", "--x", "4", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    name = re.search(r"/executions/([a-z0-9-]+)", result.stdout).group(1)
    remote = FlyteRemote(
        Config.auto(str(e2e_stack.flytekit_config)),
        default_project=PROJECT,
        default_domain=DOMAIN,
    )
    execution = remote.wait(remote.fetch_execution(name=name), timeout=240, poll_interval=1)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED, execution.closure.error
    assert execution.outputs["o0"] == 16

    def counted() -> Page | None:
        # A worker's counts reach the supervisor's page at its next flush (0.1 s): the last
        # events may have been answered just now.
        page = scrape_all(e2e_stack)
        events = [
            grew(before, page, "flyteadmin_events_total", kind=kind, outcome="accepted")
            for kind in ("workflow", "node", "task")
        ]
        return page if min(events) >= 2 else None

    after = eventually(counted, "propeller's events counted", 30, 0.2)

    # RPCs: pyflyte's (fast registration, the execution) and propeller's events, over gRPC.
    rpc = "flyteadmin_rpc_requests_total"
    for method in ("CreateUploadLocation", "CreateExecution", "CreateNodeEvent"):
        assert grew(before, after, rpc, method=method, transport="grpc", code="OK") >= 1, method
    assert grew(before, after, "flyteadmin_rpc_duration_seconds_count", method="GetExecution")
    # The store: the execution written through the Kubernetes API and seen by the watches.
    kube = "flyteadmin_kube_requests_total"
    assert grew(before, after, kube, verb="create", resource="executions") >= 1
    assert grew(before, after, kube, verb="update", resource="executions") >= 1  # its phases
    assert grew(before, after, kube, verb="create", resource="nodeexecutions") >= 1
    # Node and task states through the event journal (docs/event-journal.md).
    assert grew(before, after, "flyteadmin_journal_records_total", path="journal") >= 1
    assert grew(before, after, kube, verb="create", resource="eventbatches") >= 1
    events = "flyteadmin_store_watch_events_total"
    assert grew(before, after, events, resource="executions", type="MODIFIED") >= 1
    assert after.value("flyteadmin_store_objects", resource="executions") >= 1
    # The operator: the FlyteWorkflow object created, and how long after CreateExecution.
    reconciles = "flyteadmin_operator_reconciles_total"
    assert grew(before, after, reconciles, handler="execution", outcome="ok") >= 1
    assert grew(before, after, "flyteadmin_execution_launches_total", outcome="created") == 1
    assert grew(before, after, "flyteadmin_execution_launch_latency_seconds_count") == 1
    # Propeller's events, accepted, with their latency; the blob store holding the inputs.
    for kind in ("workflow", "node", "task"):
        accepted = grew(before, after, "flyteadmin_events_total", kind=kind, outcome="accepted")
        assert accepted >= 2, kind  # at least a running and a succeeded phase
        assert grew(before, after, "flyteadmin_event_latency_seconds_count", kind=kind) >= 2
    assert grew(before, after, "flyteadmin_blob_requests_total", operation="write", outcome="ok")
