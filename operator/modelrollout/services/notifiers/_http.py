"""Posting one JSON document, shared by the notifier kinds."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from modelrollout.core.errors import ModelRolloutError
from modelrollout.core.notifications import Notification, payload

TIMEOUT_SECONDS = 5.0


class NotifyError(ModelRolloutError):
    """A notification was not delivered. The message names the notifier, never the URL's
    path or query, which often hold a token."""

    def __init__(self, notifier: str, message: str) -> None:
        super().__init__(f"notifier {notifier}: {message}")
        self.notifier = notifier


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: enough to recognise it, without its secrets."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an invalid URL"
    return f"{parts.scheme}://{host}{port}"


def post_json(notifier: str, url: str, body: dict[str, Any], *, timeout: float) -> None:
    """POST ``body`` as JSON; any answer but a 2xx, and any transport error, raises
    :class:`NotifyError`. Redirects are not followed."""
    where = origin(url)
    try:
        response = httpx.post(url, json=body, timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        raise NotifyError(notifier, f"POST to {where} timed out after {timeout:g}s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        reason = type(exc).__name__
        raise NotifyError(notifier, f"POST to {where} failed: {reason}") from None
    if not response.is_success:
        raise NotifyError(
            notifier,
            f"POST to {where} answered HTTP {response.status_code} {response.reason_phrase}",
        )


class JsonPostNotifier:
    """A notifier that POSTs the payload of its ``kind`` as JSON; subclasses set the kind."""

    kind = ""

    def __init__(self, name: str, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout

    def post(self, notification: Notification) -> None:
        post_json(self.name, self.url, payload(self.kind, notification), timeout=self.timeout)
