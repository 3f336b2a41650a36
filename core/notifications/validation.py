"""Validation of notifications in CreateLaunchPlan (``spec.entity_metadata.notifications``) and
CreateExecution (``spec.notifications``), with flyteadmin's checks and wording (spec §12)."""

from __future__ import annotations

from collections.abc import Iterable

from flyteidl.admin import common_pb2

from flyteadmin.core.errors import invalid_value, missing
from flyteadmin.core.notifications.due import TERMINAL
from flyteadmin.core.notifications.messages import kind_of


def validate_notifications(notifications: Iterable[common_pb2.Notification]) -> None:
    """Raise InvalidArgument for the first bad notification: no kind, no or an empty
    recipient, or a phase that is not terminal (only terminal phases are ever notified)."""
    for notification in notifications:
        kind = kind_of(notification)
        if not kind:
            raise invalid_value("notification type")
        recipients = getattr(notification, kind).recipients_email
        if not recipients:
            raise missing("recipients")
        if any(not r for r in recipients):
            raise missing("recipient")
        if any(phase not in TERMINAL for phase in notification.phases):
            raise invalid_value("phase")
