"""The notifier seam: where rollout decisions are announced.

One small Protocol, one module per implementation, and a factory that rejects unknown
kinds. ``Webhook`` (:mod:`.webhook`) POSTs a flat JSON document, ``Slack`` (:mod:`.slack`)
a sentence. A failed delivery raises :class:`NotifyError`; a notification is not worth
holding a rollout for, so callers record the error and carry on.
"""

from __future__ import annotations

from typing import Protocol

from modelrollout.core.api.modeldeployment import Notifier as NotifierSpec
from modelrollout.core.errors import InvalidSpec
from modelrollout.core.notifications import KINDS, Notification
from modelrollout.services.notifiers._http import TIMEOUT_SECONDS, NotifyError
from modelrollout.services.notifiers.slack import SlackNotifier
from modelrollout.services.notifiers.webhook import WebhookNotifier

FIELD = "spec.notifications"


class Notifier(Protocol):
    """Delivers notifications to one endpoint."""

    name: str
    kind: str

    def post(self, notification: Notification) -> None:
        """Deliver one notification; raise :class:`NotifyError` if it was not accepted."""


def make_notifier(spec: NotifierSpec, *, url: str, timeout: float = TIMEOUT_SECONDS) -> Notifier:
    """The notifier ``spec.kind`` names, posting to ``url``.

    The caller resolves ``url`` from ``spec.url`` or the Secret in ``spec.urlSecretRef``.
    Unknown kinds raise :class:`~modelrollout.core.errors.InvalidSpec`; a URL that is not
    http or https (a Secret can hold anything) raises :class:`NotifyError`.
    """
    if spec.kind not in KINDS:
        raise InvalidSpec(
            FIELD,
            f"notifier {spec.name}: unknown kind {spec.kind!r}; choose one of {', '.join(KINDS)}",
        )
    if not url.startswith(("http://", "https://")):
        raise NotifyError(spec.name, "the URL must start with http:// or https://")
    if spec.kind == "Slack":
        return SlackNotifier(spec.name, url, timeout=timeout)
    return WebhookNotifier(spec.name, url, timeout=timeout)


__all__ = ["KINDS", "Notifier", "NotifyError", "make_notifier"]
