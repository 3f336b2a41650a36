"""A JSON POST per notification (aiohttp client), e.g. to a Slack incoming webhook."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from flyteadmin.core.config import WebhookSettings
from flyteadmin.core.notifications.messages import Message
from flyteadmin.core.notifications.senders import DeliveryError

# Client errors that may pass: request timeout, too many requests.
_RETRYABLE_4XX = frozenset({408, 425, 429})


class WebhookSender:
    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
                headers=self.settings.headers,
            )
        return self._session

    async def send(self, message: Message) -> None:
        url = self.settings.url
        # Only the origin in errors: the path of a Slack webhook URL is its secret.
        where = "{0.scheme}://{0.netloc}/...".format(urlsplit(url))
        try:
            async with self._client().post(url, json=message.payload()) as response:
                if response.status < 300:
                    return
                text = (await response.text())[:200]
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"POST {where}: {exc!r}") from exc
        permanent = 400 <= response.status < 500 and response.status not in _RETRYABLE_4XX
        raise DeliveryError(f"POST {where}: HTTP {response.status} {text}", permanent=permanent)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
