"""Execution phase notifications (docs/notifications.md): rendering (``messages``), what an
execution is owed (``due``), senders (``senders``, ``smtp``, ``webhook``) and the background
delivery with retries and a record on the execution (``notifier``), and the request checks
(``validation``). The operator drives the delivery."""

from flyteadmin.core.notifications.due import Delivery, due, may_be_owed
from flyteadmin.core.notifications.messages import Message, render
from flyteadmin.core.notifications.notifier import Notifier
from flyteadmin.core.notifications.senders import DeliveryError, Sender, build_routes
from flyteadmin.core.notifications.validation import validate_notifications

__all__ = [
    "Delivery",
    "DeliveryError",
    "Message",
    "Notifier",
    "Sender",
    "build_routes",
    "due",
    "may_be_owed",
    "render",
    "validate_notifications",
]
