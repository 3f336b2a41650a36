"""Email through an SMTP server: the standard library's smtplib, in a worker thread."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage

from flyteadmin.core.config import ConfigError, SmtpSettings
from flyteadmin.core.notifications.messages import Message
from flyteadmin.core.notifications.senders import DeliveryError

log = logging.getLogger(__name__)
TLS_MODES = ("none", "starttls", "ssl")


def email_of(message: Message) -> EmailMessage:
    """The email flyteadmin's SMTP emailer sends: From, To, Subject and an HTML body."""
    email = EmailMessage()
    email["From"] = message.sender
    email["To"] = ", ".join(message.recipients)
    email["Subject"] = message.subject
    email.set_content(message.body, subtype="html")
    return email


class SmtpSender:
    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        if settings.tls not in TLS_MODES:
            raise ConfigError(
                f"notifications.smtp.tls: expected one of {', '.join(TLS_MODES)}, "
                f"got {settings.tls!r}"
            )
        self.settings = settings

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._send, email_of(message), message.recipients)

    async def close(self) -> None:
        """One connection per message: nothing is kept open."""

    def _send(self, email: EmailMessage, recipients: tuple[str, ...]) -> None:
        s = self.settings
        try:
            if s.tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_seconds, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            with smtp:
                if s.tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password)
                refused = smtp.send_message(email, to_addrs=list(recipients))
        except smtplib.SMTPRecipientsRefused as exc:
            # Every recipient refused: permanent only if every refusal is (5xx).
            permanent = all(code >= 500 for code, _ in exc.recipients.values())
            raise DeliveryError(
                f"SMTP refused every recipient: {exc.recipients}", permanent=permanent
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=exc.smtp_code >= 500
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {s.host}:{s.port}: {exc}") from exc
        if refused:
            # Like flyteadmin: the others got it; a refused address will not start working.
            log.warning("SMTP refused some recipients: %s", refused)
