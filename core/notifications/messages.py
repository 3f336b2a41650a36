"""Rendering a notification into a message, with flyteadmin's placeholders (spec §12).

A placeholder is written ``{{ x }}`` or ``{{x}}`` (exactly those two spellings, as flyteadmin
replaces them); unknown ones are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.core import execution_pb2 as core_execution

from flyteadmin.core.config import NotificationSettings

Phase = core_execution.WorkflowExecution.Phase
KINDS = ("email", "pager_duty", "slack")
"""The `type` oneof of admin.Notification; each kind carries recipient emails."""

_ERROR = " The execution failed with error: [{}]."


@dataclass(frozen=True)
class Message:
    """One notification of one execution, ready for a sender."""

    kind: str
    phase: str
    """Upper-case phase name, e.g. SUCCEEDED."""
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    project: str
    domain: str
    name: str
    error: str = ""
    """The execution's error message, if it has one."""

    def payload(self) -> dict[str, object]:
        """The JSON a webhook gets: ``text`` for Slack-style receivers, and the fields."""
        return {
            "text": f"{self.subject}\n{self.body}",
            "subject": self.subject,
            "body": self.body,
            "kind": self.kind,
            "phase": self.phase,
            "recipients": list(self.recipients),
            "execution": {"project": self.project, "domain": self.domain, "name": self.name},
            "error": self.error,
        }


Getter = Callable[[execution_pb2.Execution], str]


def _error(execution: execution_pb2.Execution) -> str:
    closure = execution.closure
    return _ERROR.format(closure.error.message) if closure.HasField("error") else ""


_VALUES: dict[str, Getter] = {
    "project": lambda e: e.id.project,
    "domain": lambda e: e.id.domain,
    "name": lambda e: e.id.name,
    "phase": lambda e: Phase.Name(e.closure.phase).lower(),
    "error": _error,
    "workflow.project": lambda e: e.closure.workflow_id.project,
    "workflow.domain": lambda e: e.closure.workflow_id.domain,
    "workflow.name": lambda e: e.closure.workflow_id.name,
    "workflow.version": lambda e: e.closure.workflow_id.version,
    "launch_plan.project": lambda e: e.spec.launch_plan.project,
    "launch_plan.domain": lambda e: e.spec.launch_plan.domain,
    "launch_plan.name": lambda e: e.spec.launch_plan.name,
    "launch_plan.version": lambda e: e.spec.launch_plan.version,
}
PLACEHOLDERS = tuple(_VALUES)

# "{{ x }}" or "{{x}}": the backreference makes both spaces present or both absent.
_PLACEHOLDER = re.compile(r"\{\{( ?)([a-z_.]+)\1\}\}")


def substitute(template: str, execution: execution_pb2.Execution) -> str:
    def value(match: re.Match[str]) -> str:
        getter = _VALUES.get(match.group(2))
        return getter(execution) if getter else match.group(0)

    return _PLACEHOLDER.sub(value, template)


def kind_of(notification: common_pb2.Notification) -> str:
    """``email``, ``pager_duty``, ``slack``, or "" when no type is set."""
    return notification.WhichOneof("type") or ""


def render(
    notification: common_pb2.Notification,
    execution: execution_pb2.Execution,
    settings: NotificationSettings,
) -> Message:
    """The message for ``notification`` in the execution's current phase.

    The notification's own ``template`` replaces the configured body. (flyteadmin dropped it
    when it converted a notification into an email; the IDL documents it, so we honour it.)"""
    kind = kind_of(notification)
    target = getattr(notification, kind)
    closure = execution.closure
    return Message(
        kind=kind,
        phase=Phase.Name(closure.phase),
        sender=settings.sender,
        recipients=tuple(target.recipients_email),
        subject=substitute(settings.subject, execution),
        body=substitute(target.template or settings.body, execution),
        project=execution.id.project,
        domain=execution.id.domain,
        name=execution.id.name,
        error=closure.error.message if closure.HasField("error") else "",
    )
