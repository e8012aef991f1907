"""The Webhook notifier: a flat JSON document POSTed to a URL.

The document has the fields ``event``, ``namespace``, ``name``, ``model``, ``version``,
``phase``, ``message`` and ``time`` (see :func:`modelrollout.core.notifications.payload`).
Any answer but a 2xx is an error.
"""

from __future__ import annotations

from modelrollout.core.notifications import Notification, payload
from modelrollout.services.notifiers._http import TIMEOUT_SECONDS, post_json


class WebhookNotifier:
    kind = "Webhook"

    def __init__(self, name: str, url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout

    def post(self, notification: Notification) -> None:
        post_json(self.name, self.url, payload(self.kind, notification), timeout=self.timeout)
