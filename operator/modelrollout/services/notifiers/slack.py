"""The Slack notifier: one sentence POSTed to a Slack incoming webhook.

The body is ``{"text": ...}`` (see :func:`modelrollout.core.notifications.payload`), which
incoming webhooks and most chat tools that mimic them accept. The URL of an incoming
webhook is a secret; keep it in a Secret and use ``urlSecretRef``.
"""

from __future__ import annotations

from modelrollout.core.notifications import Notification, payload
from modelrollout.services.notifiers._http import TIMEOUT_SECONDS, post_json


class SlackNotifier:
    kind = "Slack"

    def __init__(self, name: str, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout

    def post(self, notification: Notification) -> None:
        post_json(self.name, self.url, payload(self.kind, notification), timeout=self.timeout)
