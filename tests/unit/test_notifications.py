"""Notifications without a cluster: rendering with flyteadmin's placeholders, which deliveries
an execution is owed (phase matching, routes, what is recorded, age), backoff, the email and
webhook payloads, and configuration errors."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.core import execution_pb2 as core_execution
from flyteidl.core import identifier_pb2

from flyteadmin.core.config import (
    ConfigError,
    NotificationRetrySettings,
    NotificationRoute,
    NotificationSettings,
    SmtpSettings,
    WebhookSettings,
    load_settings,
)
from flyteadmin.core.crmap.executions import ExecutionCodec, ExecutionRecord
from flyteadmin.core.errors import AdminError, Code
from flyteadmin.core.notifications import (
    Delivery,
    Notifier,
    build_routes,
    due,
    may_be_owed,
    render,
)
from flyteadmin.core.notifications.due import recorded
from flyteadmin.core.notifications.messages import substitute
from flyteadmin.core.notifications.notifier import backoff
from flyteadmin.core.notifications.smtp import SmtpSender, email_of
from flyteadmin.core.notifications.validation import validate_notifications

WF = core_execution.WorkflowExecution.Phase
RT = identifier_pb2.ResourceType
T_END = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def notification(kind: str, *phases: int, recipients=("a@x.org",), template: str = ""):
    n = common_pb2.Notification(phases=list(phases))
    getattr(n, kind).recipients_email.extend(recipients)
    getattr(n, kind).template = template
    return n


def record(phase: int, *notifications, error: str = "", notified=()) -> ExecutionRecord:
    ex = execution_pb2.Execution(
        id=identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="e1"),
        spec=execution_pb2.ExecutionSpec(
            launch_plan=identifier_pb2.Identifier(
                resource_type=RT.LAUNCH_PLAN, project="p", domain="d", name="lp", version="v1"
            )
        ),
    )
    closure = ex.closure
    closure.phase = phase
    closure.updated_at.FromDatetime(T_END)
    closure.workflow_id.CopyFrom(
        identifier_pb2.Identifier(
            resource_type=RT.WORKFLOW, project="wp", domain="wd", name="wf", version="v2"
        )
    )
    closure.notifications.extend(notifications)
    if error:
        closure.error.message = error
    return ExecutionRecord(
        execution=ex,
        launch_plan_id=ex.spec.launch_plan,
        workflow_id=closure.workflow_id,
        notified=tuple(notified),
    )


# ----------------------------------------------------------------------------- rendering

PLACEHOLDERS = [
    ("{{ project }}", "p"),
    ("{{ domain }}", "d"),
    ("{{ name }}", "e1"),
    ("{{ phase }}", "failed"),
    ("{{ error }}", " The execution failed with error: [boom]."),
    ("{{ workflow.project }}", "wp"),
    ("{{ workflow.domain }}", "wd"),
    ("{{ workflow.name }}", "wf"),
    ("{{ workflow.version }}", "v2"),
    ("{{ launch_plan.project }}", "p"),
    ("{{ launch_plan.domain }}", "d"),
    ("{{ launch_plan.name }}", "lp"),
    ("{{ launch_plan.version }}", "v1"),
    ("{{name}}", "e1"),  # flyteadmin also replaces the spelling without spaces
    ("{{ name}}", "{{ name}}"),  # ... but no mixed spelling
    ("{{ unknown }}", "{{ unknown }}"),  # unknown placeholders stay
    ("a {{ name }} b {{name}} c", "a e1 b e1 c"),
]


@pytest.mark.parametrize(("template", "expected"), PLACEHOLDERS)
def test_placeholders(template, expected):
    assert substitute(template, record(WF.FAILED, error="boom").execution) == expected


def test_no_error_renders_empty_and_phase_is_lower_case():
    ex = record(WF.TIMED_OUT).execution
    assert substitute("[{{ error }}] {{ phase }}", ex) == "[] timed_out"


def test_render_uses_configured_subject_body_and_sender():
    settings = NotificationSettings(sender="me@x.org", subject="S {{ name }}", body="B {{ phase }}")
    n = notification("slack", WF.SUCCEEDED, recipients=("c@x.org", "d@x.org"))
    message = render(n, record(WF.SUCCEEDED, n).execution, settings)
    assert (message.kind, message.phase, message.sender) == ("slack", "SUCCEEDED", "me@x.org")
    assert message.recipients == ("c@x.org", "d@x.org")
    assert (message.subject, message.body) == ("S e1", "B succeeded")


@pytest.mark.parametrize("kind", ["email", "pager_duty", "slack"])
def test_a_notification_template_replaces_the_body(kind):
    n = notification(kind, WF.FAILED, template="custom {{ name }}{{ error }}")
    message = render(n, record(WF.FAILED, n, error="x").execution, NotificationSettings())
    assert message.body == "custom e1 The execution failed with error: [x]."
    assert message.subject == 'Notice: Execution "wf" has failed in "d".'


def test_default_templates():
    n = notification("email", WF.FAILED)
    message = render(n, record(WF.FAILED, n, error="oops").execution, NotificationSettings())
    assert message.subject == 'Notice: Execution "wf" has failed in "d".'
    assert message.body == (
        'Execution "wf [e1]" has failed in "d" (project p). '
        "The execution failed with error: [oops]."
    )


def test_webhook_payload_and_email():
    n = notification("email", WF.FAILED, recipients=("a@x.org", "b@x.org"))
    message = render(n, record(WF.FAILED, n, error="e").execution, NotificationSettings())
    payload = message.payload()
    assert payload["text"] == f"{message.subject}\n{message.body}"
    assert payload["execution"] == {"project": "p", "domain": "d", "name": "e1"}
    assert (payload["kind"], payload["phase"], payload["error"]) == ("email", "FAILED", "e")
    assert payload["recipients"] == ["a@x.org", "b@x.org"]
    email = email_of(message)
    assert email["To"] == "a@x.org, b@x.org"
    assert email["Subject"] == message.subject
    assert email.get_content_type() == "text/html"
    assert email.get_content().strip() == message.body


# ----------------------------------------------------------------------------- what is due

ROUTES = {"email": ("smtp",), "pager_duty": ("smtp",), "slack": ("smtp", "webhook")}
EMAIL_ON_FAIL = notification("email", WF.FAILED)
SLACK_ON_END = notification("slack", WF.SUCCEEDED, WF.FAILED)
PD_ON_ABORT = notification("pager_duty", WF.ABORTED, WF.TIMED_OUT)

DUE_TABLE = [
    # phase, notifications, expected deliveries
    (WF.RUNNING, (EMAIL_ON_FAIL,), []),
    (WF.FAILING, (EMAIL_ON_FAIL,), []),
    (WF.SUCCEEDED, (EMAIL_ON_FAIL,), []),
    (WF.FAILED, (EMAIL_ON_FAIL,), [(0, "FAILED", "smtp")]),
    (
        WF.FAILED,
        (EMAIL_ON_FAIL, SLACK_ON_END),
        [(0, "FAILED", "smtp"), (1, "FAILED", "smtp"), (1, "FAILED", "webhook")],
    ),
    (
        WF.SUCCEEDED,
        (EMAIL_ON_FAIL, SLACK_ON_END),
        [(1, "SUCCEEDED", "smtp"), (1, "SUCCEEDED", "webhook")],
    ),
    (WF.TIMED_OUT, (SLACK_ON_END, PD_ON_ABORT), [(1, "TIMED_OUT", "smtp")]),
    (WF.ABORTED, (PD_ON_ABORT,), [(0, "ABORTED", "smtp")]),
    (WF.ABORTED, (), []),
    (WF.FAILED, (common_pb2.Notification(phases=[WF.FAILED]),), []),  # no type: nothing
    # a non-terminal phase listed by a notification is never notified (flyteadmin neither)
    (WF.RUNNING, (notification("email", WF.RUNNING),), []),
]


@pytest.mark.parametrize(("phase", "notifications", "expected"), DUE_TABLE)
def test_due(phase, notifications, expected):
    owed = due(record(phase, *notifications), ROUTES)
    assert owed == [Delivery(*d) for d in expected]


@pytest.mark.parametrize(
    ("phase", "notifications", "may"),
    [
        (WF.RUNNING, (EMAIL_ON_FAIL,), False),  # the operator skips propeller's progress
        (WF.SUCCEEDED, (), False),  # and executions with no notifications
        (WF.SUCCEEDED, (EMAIL_ON_FAIL,), True),  # (due decides: nothing, here)
        (WF.FAILED, (EMAIL_ON_FAIL,), True),
    ],
)
def test_may_be_owed_is_what_due_needs_before_it_looks(phase, notifications, may):
    assert may_be_owed(record(phase, *notifications)) is may


def test_recorded_deliveries_are_not_due_again():
    entries = [
        {"index": 1, "phase": "FAILED", "sender": "smtp", "outcome": "Delivered"},
        {"index": 1, "phase": "FAILED", "sender": "webhook", "outcome": "Failed"},
        {"garbage": True},
    ]
    r = record(WF.FAILED, EMAIL_ON_FAIL, SLACK_ON_END, notified=entries)
    assert due(r, ROUTES) == [Delivery(0, "FAILED", "smtp")]
    assert due(r, ROUTES, done=recorded(entries) | {Delivery(0, "FAILED", "smtp")}) == []


def test_routes_decide_the_senders():
    r = record(WF.FAILED, EMAIL_ON_FAIL, SLACK_ON_END)
    assert due(r, {"slack": ("webhook",)}) == [Delivery(1, "FAILED", "webhook")]
    assert due(r, {}) == []


@pytest.mark.parametrize(
    ("age", "max_age", "owed"),
    [
        (dt.timedelta(minutes=5), dt.timedelta(hours=1), True),
        (dt.timedelta(hours=2), dt.timedelta(hours=1), False),
        (dt.timedelta(days=400), None, True),
    ],
)
def test_old_executions_are_not_notified(age, max_age, owed):
    r = record(WF.FAILED, EMAIL_ON_FAIL)
    assert bool(due(r, ROUTES, now=T_END + age, max_age=max_age)) is owed


def test_notified_round_trips_through_the_codec():
    entry = {"index": 0, "phase": "FAILED", "sender": "smtp", "outcome": "Delivered"}
    r = record(WF.FAILED, EMAIL_ON_FAIL, notified=[entry])
    codec = ExecutionCodec()
    body = codec.encode(r)
    assert body["status"]["notified"] == [entry]
    body["spec"]["id"] = {"project": "p", "domain": "d", "name": "e1"}
    assert codec.decode(body).notified == (entry,)
    assert "notified" not in codec.encode(dataclasses.replace(r, notified=()))["status"]


# ----------------------------------------------------------------------------- retries, config


def test_backoff_doubles_up_to_the_cap():
    retry = NotificationRetrySettings(initial_backoff_seconds=2, max_backoff_seconds=10)
    assert [backoff(retry, n) for n in range(1, 6)] == [2, 4, 8, 10, 10]


def test_routes_from_config():
    settings = NotificationSettings(
        enabled=True,
        smtp=SmtpSettings(host="mail.example.org"),
        slack=NotificationRoute(smtp=False, webhook=WebhookSettings(url="https://hooks/x")),
    )
    routes = build_routes(settings)
    assert {k: [s.name for s in v] for k, v in routes.items()} == {
        "email": ["smtp"],
        "pager_duty": ["smtp"],
        "slack": ["webhook"],
    }
    assert routes["email"][0] is routes["pager_duty"][0]  # one SMTP sender


def test_smtp_route_without_a_host_is_a_config_error():
    with pytest.raises(ConfigError, match=r"notifications.email.smtp is true"):
        build_routes(NotificationSettings(enabled=True))
    only_webhooks = NotificationRoute(smtp=False, webhook=WebhookSettings(url="http://h/"))
    settings = NotificationSettings(
        email=only_webhooks, pager_duty=only_webhooks, slack=NotificationRoute(smtp=False)
    )
    assert [len(v) for v in build_routes(settings).values()] == [1, 1, 0]


def test_bad_tls_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="notifications.smtp.tls"):
        SmtpSender(SmtpSettings(host="h", tls="maybe"))


def test_settings_from_yaml_and_environment(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "notifications:\n  enabled: true\n  slack:\n    webhook:\n      url: http://h/\n"
    )
    env = {
        "FLYTEADMIN__NOTIFICATIONS__SMTP__PASSWORD": "s3cret",
        "FLYTEADMIN__NOTIFICATIONS__SLACK__WEBHOOK__HEADERS__AUTHORIZATION": "Bearer t",
    }
    n = load_settings(path, env).notifications
    assert n.enabled and n.smtp.password == "s3cret"
    assert n.slack.webhook.url == "http://h/"
    assert n.slack.webhook.headers == {"authorization": "Bearer t"}


# ----------------------------------------------------------------------------- the notifier


class _SlowSender:
    name = "smtp"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.closed = False

    async def send(self, message) -> None:
        self.started.set()
        await asyncio.sleep(3600)

    async def close(self) -> None:
        self.closed = True


class _Cache:
    """The part of a store collection ``offer`` reads (no delivery gets to record here)."""

    def get(self, name):
        return None


def test_offer_returns_at_once_and_never_doubles_a_delivery():
    async def scenario() -> None:
        sender = _SlowSender()
        settings = NotificationSettings(max_age_seconds=0)
        notifier = Notifier(settings, _Cache(), {"email": (sender,)})
        r = record(WF.FAILED, EMAIL_ON_FAIL, SLACK_ON_END)  # slack: no route, nothing owed
        assert notifier.offer("e1", r) == [Delivery(0, "FAILED", "smtp")]
        assert notifier.offer("e1", r) == []  # in flight: not started twice
        assert notifier.offer("e1", record(WF.RUNNING, EMAIL_ON_FAIL)) == []
        await sender.started.wait()  # the slow send runs in the background
        assert notifier.in_flight == 1
        await notifier.close()
        assert notifier.in_flight == 0 and sender.closed

    asyncio.run(scenario())


# ----------------------------------------------------------------------------- validation

VALIDATION_TABLE = [
    ([], None),
    ([notification("email", WF.FAILED)], None),
    ([notification("slack", WF.SUCCEEDED, WF.ABORTED, WF.TIMED_OUT)], None),
    ([notification("pager_duty")], None),  # no phases: valid, and never sent
    ([common_pb2.Notification(phases=[WF.FAILED])], "invalid value for notification type"),
    ([notification("email", WF.FAILED, recipients=())], "missing recipients"),
    ([notification("slack", WF.FAILED, recipients=("a@x.org", ""))], "missing recipient"),
    ([notification("email", WF.RUNNING)], "invalid value for phase"),
    (
        [notification("email", WF.FAILED), notification("email", WF.ABORTING)],
        "invalid value for phase",
    ),
]


@pytest.mark.parametrize(("notifications", "error"), VALIDATION_TABLE)
def test_validation(notifications, error):
    if error is None:
        validate_notifications(notifications)
        return
    with pytest.raises(AdminError) as info:
        validate_notifications(notifications)
    assert (info.value.code, info.value.message) == (Code.INVALID_ARGUMENT, error)
