"""The Webhook notifier: a flat JSON document POSTed to a URL.

The document has the fields ``event``, ``namespace``, ``name``, ``model``, ``version``,
``phase``, ``message`` and ``time`` (see :func:`modelrollout.core.notifications.payload`).
Any answer but a 2xx is an error.
"""

from __future__ import annotations

from modelrollout.services.notifiers._http import JsonPostNotifier


class WebhookNotifier(JsonPostNotifier):
    kind = "Webhook"
