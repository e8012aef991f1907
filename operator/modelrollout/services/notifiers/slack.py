"""The Slack notifier: one sentence POSTed to a Slack incoming webhook.

The body is ``{"text": ...}`` (see :func:`modelrollout.core.notifications.payload`), which
incoming webhooks and most chat tools that mimic them accept. The URL of an incoming
webhook is a secret; keep it in a Secret and use ``urlSecretRef``.
"""

from __future__ import annotations

from modelrollout.services.notifiers._http import JsonPostNotifier


class SlackNotifier(JsonPostNotifier):
    kind = "Slack"
