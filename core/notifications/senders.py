"""The pluggable delivery side: a ``Sender`` sends one message; routes say which senders each
notification kind (email, pager_duty, slack) goes to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from flyteadmin.core.config import ConfigError, NotificationSettings
from flyteadmin.core.notifications.messages import KINDS, Message


class DeliveryError(Exception):
    """A failed delivery. ``permanent``: retrying cannot help (the receiver refused the
    message itself, e.g. an SMTP 5xx or an HTTP 4xx); otherwise it is retried with backoff."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    name: str
    """Recorded with each delivery (``smtp``, ``webhook``): unique among a kind's senders."""

    async def send(self, message: Message) -> None:
        """Deliver ``message`` or raise DeliveryError (anything else counts as transient)."""
        ...

    async def close(self) -> None: ...


Routes = Mapping[str, tuple[Sender, ...]]
"""Notification kind -> its senders."""


def build_routes(settings: NotificationSettings) -> Routes:
    """The senders of every kind from the configuration.

    A kind routed to SMTP without an SMTP host is a configuration error, raised at start-up
    rather than discovered at the first failed execution."""
    # Imported here: both import DeliveryError from this module.
    from flyteadmin.core.notifications.smtp import SmtpSender
    from flyteadmin.core.notifications.webhook import WebhookSender

    smtp: SmtpSender | None = None
    routes: dict[str, tuple[Sender, ...]] = {}
    for kind in KINDS:
        route = getattr(settings, kind)
        senders: list[Sender] = []
        if route.smtp:
            if not settings.smtp.host:
                raise ConfigError(
                    f"notifications.{kind}.smtp is true but notifications.smtp.host is empty "
                    f"(set the mail server, or set notifications.{kind}.smtp to false)"
                )
            if smtp is None:
                smtp = SmtpSender(settings.smtp)
            senders.append(smtp)
        if route.webhook.url:
            senders.append(WebhookSender(route.webhook))
        routes[kind] = tuple(senders)
    return routes
