"""Notifications end to end: the API server takes propeller's events, the operator mails a local
SMTP receiver (aiosmtpd) and POSTs to a local HTTP receiver (aiohttp), both on 127.0.0.1 and
stopped by the tests. Exactly one message per configured notification and sender; failures
are retried and then delivered or recorded as failed; events never wait for deliveries; a
restarted operator sends nothing twice and catches up on what ended while it was down."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email
import email.policy
from collections.abc import Iterator

import grpc
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from flyteidl.admin import common_pb2, event_pb2, execution_pb2, project_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2
from flyteidl.event import event_pb2 as ev
from flyteidl.service import admin_pb2_grpc
from google.protobuf import timestamp_pb2
from kubernetes import client

from flyteadmin.core import crds
from flyteadmin.core.config import (
    ArchiveSettings,
    NotificationRetrySettings,
    NotificationRoute,
    NotificationSettings,
    SmtpSettings,
    WebhookSettings,
)
from flyteadmin.core.crmap.executions import execution_object_name
from flyteadmin.devstack.processes import free_port
from flyteadmin.operator.runner import OperatorThread
from tests.integration.conftest import running_api_server
from tests.integration.registration_helpers import (
    DOMAIN,
    PROJECT,
    RT,
    chain_workflow,
    ident,
    launch_plan_request,
    task_request,
)
from tests.integration.servers import LoopThread
from tests.local_http import serve_locally
from tests.waiting import eventually

WF = core_execution.WorkflowExecution.Phase


# ----------------------------------------------------------------------------- receivers


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1; answers 451 (try again) to the first ``fail`` messages."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[list[str]] = []
        self.fail = 0
        self.attempts = 0
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        self.attempts += 1
        if self.fail > 0:
            self.fail -= 1
            return "451 4.3.0 try again later"
        self.envelopes.append(list(envelope.rcpt_tos))
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m, rcpt in zip(self.messages, self.envelopes, strict=True) if address in rcpt]

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class HttpReceiver:
    """An aiohttp server on 127.0.0.1: POST /<path> records the JSON; the answer per path is
    scripted (``script[path]``: statuses to answer first, then 200), and a path in ``closed``
    answers 500 until it is taken out."""

    def __init__(self) -> None:
        self.calls: dict[str, list[dict]] = {}
        self.failed: dict[str, int] = {}
        self.script: dict[str, list[int]] = {}
        self.closed: set[str] = set()
        self.headers: list[dict[str, str]] = []
        self._loop = LoopThread()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        script = self.script.get(path) or []
        status = 500 if path in self.closed else (script.pop(0) if script else 200)
        if status >= 300:
            self.failed[path] = self.failed.get(path, 0) + 1
            return web.Response(status=status, text="no")
        self.calls.setdefault(path, []).append(await request.json())
        self.headers.append(dict(request.headers))
        return web.Response(text="ok")

    def start(self) -> None:
        async def start() -> None:
            app = web.Application()
            app.router.add_post("/{path}", self._handle)
            self._runner, self.port = await serve_locally(app)

        self._loop.call(start())

    def stop(self) -> None:
        if self._runner is not None:
            self._loop.call(self._runner.cleanup())
        self._loop.close()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


# ----------------------------------------------------------------------------- the stack


@pytest.fixture
def notify_settings(settings, unique, smtp, http):
    """Email goes to the SMTP receiver; Slack and PagerDuty to webhooks of the HTTP receiver
    (PagerDuty also by mail); fast retries. No archiving: some executions here ended in 2024,
    and the tests read their objects."""
    return dataclasses.replace(
        settings,
        archive=ArchiveSettings(enabled=False),
        operator=dataclasses.replace(
            settings.operator, namespace_template=f"{{{{ project }}}}-{unique}-{{{{ domain }}}}"
        ),
        notifications=NotificationSettings(
            enabled=True,
            sender="flyte@test.local",
            subject="{{ name }} {{ phase }}",
            body="{{ workflow.name }} in {{ domain }}{{ error }}",
            smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, timeout_seconds=5),
            email=NotificationRoute(smtp=True),
            slack=NotificationRoute(
                smtp=False,
                webhook=WebhookSettings(url=http.url("slack"), headers={"X-Token": "t0k"}),
            ),
            pager_duty=NotificationRoute(
                smtp=True, webhook=WebhookSettings(url=http.url("pagerduty"))
            ),
            retry=NotificationRetrySettings(
                attempts=4, initial_backoff_seconds=0.05, max_backoff_seconds=0.2
            ),
        ),
    )


@contextlib.contextmanager
def operator(settings) -> Iterator[OperatorThread]:
    thread = OperatorThread(settings)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def notify(kind: str, *phases: int, to: str) -> common_pb2.Notification:
    n = common_pb2.Notification(phases=list(phases))
    getattr(n, kind).recipients_email.append(to)
    return n


@pytest.fixture
def stub(notify_settings):
    """An AdminService stub; launch plan ``lp`` has no notifications, ``lp-notify`` mails
    lp@x.org when an execution fails."""
    with (
        running_api_server(notify_settings) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        admin.RegisterProject(
            project_pb2.ProjectRegisterRequest(project=project_pb2.Project(id=PROJECT, name="f"))
        )
        admin.CreateTask(task_request("t"))
        admin.CreateWorkflow(chain_workflow("wf", "t"))
        admin.CreateLaunchPlan(launch_plan_request("lp", "wf", x=1))
        with_notifications = launch_plan_request("lp-notify", "wf", x=1)
        with_notifications.spec.entity_metadata.notifications.append(
            notify("email", WF.FAILED, to="lp@x.org")
        )
        admin.CreateLaunchPlan(with_notifications)
        yield admin


def now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC))
    return stamp


class Run:
    """One execution, driven through its phases the way flytepropeller reports them."""

    def __init__(self, stub, name: str, *notifications, lp: str = "lp", disable_all=False):
        self.stub = stub
        self.id = identifier_pb2.WorkflowExecutionIdentifier(
            project=PROJECT, domain=DOMAIN, name=name
        )
        spec = execution_pb2.ExecutionSpec(launch_plan=ident(RT.LAUNCH_PLAN, lp))
        if notifications:
            spec.notifications.notifications.extend(notifications)
        if disable_all:  # one oneof with notifications: set only when meant
            spec.disable_all = True
        stub.CreateExecution(
            execution_pb2.ExecutionCreateRequest(
                project=PROJECT, domain=DOMAIN, name=name, spec=spec
            )
        )

    def event(self, phase: int, **kw) -> None:
        event = ev.WorkflowExecutionEvent(
            execution_id=self.id, producer_id="propeller", phase=phase, occurred_at=now(), **kw
        )
        self.stub.CreateWorkflowEvent(
            event_pb2.WorkflowExecutionEventRequest(request_id=f"{phase}", event=event)
        )

    def finish(self, phase: int, **kw) -> None:
        for step in (WF.QUEUED, WF.RUNNING):
            self.event(step)
        self.event(phase, **kw)


def notified(kube_api, namespace: str, run: Run) -> list[dict]:
    obj = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        crds.GROUP, crds.VERSION, namespace, crds.EXECUTION.plural, execution_object_name(run.id)
    )
    return (obj.get("status") or {}).get("notified") or []


def until_notified(kube_api, namespace: str, run: Run, count: int = 1) -> list[dict]:
    """``status.notified`` of ``run`` once it has ``count`` entries."""

    def check():
        entries = notified(kube_api, namespace, run)
        return entries if len(entries) >= count else None

    return eventually(check)


def outcomes(entries: list[dict]) -> set[tuple]:
    return {(e["index"], e["phase"], e["sender"], e["outcome"]) for e in entries}


# ----------------------------------------------------------------------------- tests


def test_one_message_per_notification_and_sender(
    notify_settings, stub, smtp, http, kube_api, namespace
):
    with operator(notify_settings):
        ok = Run(
            stub,
            "ok",
            notify("email", WF.SUCCEEDED, to="a@x.org"),
            notify("slack", WF.SUCCEEDED, WF.FAILED, to="chan@x.org"),
            notify("pager_duty", WF.FAILED, to="pd@x.org"),  # not this phase
        )
        failed = Run(stub, "bad", lp="lp-notify")  # the launch plan's notifications
        quiet = Run(stub, "quiet", lp="lp-notify", disable_all=True)
        ok.finish(WF.SUCCEEDED)
        failed.finish(WF.FAILED, error=core_execution.ExecutionError(code="E", message="it broke"))
        quiet.finish(WF.FAILED)

        assert outcomes(until_notified(kube_api, namespace, ok, 2)) == {
            (0, "SUCCEEDED", "smtp", "Delivered"),
            (1, "SUCCEEDED", "webhook", "Delivered"),
        }
        assert outcomes(until_notified(kube_api, namespace, failed)) == {
            (0, "FAILED", "smtp", "Delivered")
        }
        # Later writes of the API server keep the record (it is part of the stored status).
        stub.UpdateExecution(
            execution_pb2.ExecutionUpdateRequest(
                id=ok.id, state=execution_pb2.ExecutionState.EXECUTION_ARCHIVED
            )
        )
        assert len(notified(kube_api, namespace, ok)) == 2

    assert len(smtp.messages) == 2
    [mail] = smtp.to("a@x.org")
    assert (mail["From"], mail["To"], mail["Subject"]) == (
        "flyte@test.local",
        "a@x.org",
        "ok succeeded",
    )
    assert mail.get_content().strip() == f"wf in {DOMAIN}"
    [mail] = smtp.to("lp@x.org")
    assert mail["Subject"] == "bad failed"
    assert mail.get_content().strip() == (
        f"wf in {DOMAIN} The execution failed with error: [it broke]."
    )
    [call] = http.calls["slack"]
    assert call["execution"] == {"project": PROJECT, "domain": DOMAIN, "name": "ok"}
    assert (call["kind"], call["phase"], call["recipients"]) == (
        "slack",
        "SUCCEEDED",
        ["chan@x.org"],
    )
    assert call["text"] == f"ok succeeded\nwf in {DOMAIN}"
    assert http.headers[0]["X-Token"] == "t0k"
    assert "pagerduty" not in http.calls
    assert notified(kube_api, namespace, quiet) == []


def test_failures_are_retried_without_holding_up_events(
    notify_settings, stub, smtp, http, kube_api, namespace
):
    smtp.fail = 1  # one 451, then accepted
    http.script["slack"] = [500, 503]  # twice, then 200
    http.script["pagerduty"] = [400]  # refused: permanent, not retried
    patient = dataclasses.replace(  # retries outlast the closed receiver below
        notify_settings.notifications.retry, attempts=10_000, max_backoff_seconds=0.1
    )
    notify_settings = dataclasses.replace(
        notify_settings,
        notifications=dataclasses.replace(notify_settings.notifications, retry=patient),
    )
    with operator(notify_settings):
        first = Run(
            stub,
            "first",
            notify("slack", WF.SUCCEEDED, to="c@x.org"),
            notify("email", WF.SUCCEEDED, to="a@x.org"),
        )
        first.finish(WF.SUCCEEDED)
        entries = until_notified(kube_api, namespace, first, 2)
        by_sender = {e["sender"]: e for e in entries}
        assert (by_sender["webhook"]["outcome"], by_sender["webhook"]["attempts"]) == (
            "Delivered",
            3,
        )
        assert (by_sender["smtp"]["outcome"], by_sender["smtp"]["attempts"]) == ("Delivered", 2)
        assert len(http.calls["slack"]) == 1 and len(smtp.to("a@x.org")) == 1

        # While the receiver fails, events of this and other executions are taken at once,
        # and the pending delivery is not recorded.
        http.closed.add("slack")
        second = Run(stub, "second", notify("slack", WF.ABORTED, to="c@x.org"))
        second.finish(WF.ABORTED)
        eventually(lambda: http.failed.get("slack", 0) >= 2 + 3)  # failing again, retrying
        third = Run(stub, "third", notify("pager_duty", WF.TIMED_OUT, to="pd@x.org"))
        third.finish(WF.TIMED_OUT)  # every event accepted while deliveries fail
        assert [e for e in notified(kube_api, namespace, second) if e["sender"] == "webhook"] == []
        http.closed.discard("slack")

        entries = until_notified(kube_api, namespace, second)
        assert outcomes(entries) == {(0, "ABORTED", "webhook", "Delivered")}
        assert entries[0]["attempts"] >= 2

        # PagerDuty: mail delivered; the webhook's 400 is recorded as a failure at once.
        entries = until_notified(kube_api, namespace, third, 2)
        assert outcomes(entries) == {
            (0, "TIMED_OUT", "smtp", "Delivered"),
            (0, "TIMED_OUT", "webhook", "Failed"),
        }
        failure = next(e for e in entries if e["sender"] == "webhook")
        assert failure["attempts"] == 1 and "HTTP 400" in failure["error"]
        assert "pagerduty" not in http.calls


def test_exhausted_retries_are_recorded_as_failed(notify_settings, stub, http, kube_api, namespace):
    http.script["slack"] = [500] * 10
    with operator(notify_settings):
        run = Run(stub, "doomed", notify("slack", WF.FAILED, to="c@x.org"))
        run.finish(WF.FAILED)
        [entry] = until_notified(kube_api, namespace, run)
    assert (entry["outcome"], entry["attempts"]) == ("Failed", 4)
    assert "HTTP 500" in entry["error"] and "/slack" not in entry["error"]  # no URL path
    assert http.failed["slack"] == 4 and "slack" not in http.calls


def test_a_restarted_operator_resends_nothing_and_catches_up(
    notify_settings, stub, smtp, kube_api, namespace
):
    before = Run(stub, "before", notify("email", WF.SUCCEEDED, to="before@x.org"))
    with operator(notify_settings):
        before.finish(WF.SUCCEEDED)
        until_notified(kube_api, namespace, before)

    # Ends while no operator runs: the next one owes it, and only it.
    during = Run(stub, "during", notify("email", WF.FAILED, to="during@x.org"))
    during.finish(WF.FAILED)
    assert notified(kube_api, namespace, during) == []

    with operator(notify_settings):
        until_notified(kube_api, namespace, during)
        # A later execution, notified after the restart's initial listing was handled.
        after = Run(stub, "after", notify("email", WF.SUCCEEDED, to="after@x.org"))
        after.finish(WF.SUCCEEDED)
        until_notified(kube_api, namespace, after)

    assert [len(smtp.to(f"{n}@x.org")) for n in ("before", "during", "after")] == [1, 1, 1]
    assert len(smtp.messages) == 3


def test_old_executions_and_disabled_notifications_send_nothing(
    notify_settings, stub, smtp, kube_api, namespace
):
    run = Run(stub, "old", notify("email", WF.SUCCEEDED, to="old@x.org"))
    for phase in (WF.QUEUED, WF.RUNNING, WF.SUCCEEDED):
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))  # beyond max_age
        stub.CreateWorkflowEvent(
            event_pb2.WorkflowExecutionEventRequest(
                request_id="r",
                event=ev.WorkflowExecutionEvent(
                    execution_id=run.id, producer_id="propeller", phase=phase, occurred_at=stamp
                ),
            )
        )
    off = dataclasses.replace(
        notify_settings,
        notifications=dataclasses.replace(notify_settings.notifications, enabled=False),
    )
    recent = Run(stub, "recent", notify("email", WF.SUCCEEDED, to="recent@x.org"))
    with operator(off):
        recent.finish(WF.SUCCEEDED)
    with operator(notify_settings):
        # Ended while notifications were off but recently: still owed. The old one is not.
        until_notified(kube_api, namespace, recent)
        later = Run(stub, "later", notify("email", WF.SUCCEEDED, to="later@x.org"))
        later.finish(WF.SUCCEEDED)  # seen after the initial listing: the old one was handled
        until_notified(kube_api, namespace, later)
    assert notified(kube_api, namespace, run) == []
    assert [m["To"] for m in smtp.messages] == ["recent@x.org", "later@x.org"]
