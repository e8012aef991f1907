"""What is announced about a rollout, and how each notifier kind words it.

A :class:`Notification` is one decision (a stage change, a promotion, a rollback...) about
one ModelDeployment. :func:`payload` turns it into the JSON document a notifier kind
posts: a flat document with every field for a Webhook, a short sentence for Slack.
:func:`wanted` says whether a notifier announces an event at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from modelrollout.core.api.modeldeployment import NotificationEvent, Notifier
from modelrollout.core.clock import rfc3339

KINDS: tuple[str, ...] = get_args(Notifier.model_fields["kind"].annotation)
"""The notifier kinds the API accepts: Webhook and Slack."""
MAX_SLACK_MESSAGE = 300


@dataclass(frozen=True)
class Notification:
    """One decision about one ModelDeployment."""

    event: NotificationEvent
    namespace: str
    name: str
    model: str
    version: str
    phase: str
    """The phase of the ModelDeployment after the decision (Baking, RolledBack...)."""
    message: str
    time: datetime
    """When the decision was made; payloads write it in RFC 3339 (UTC)."""


def wanted(notifier: Notifier, event: NotificationEvent) -> bool:
    """Whether ``notifier`` announces ``event`` (it is listed in its ``events``)."""
    return event in notifier.events


def payload(kind: str, notification: Notification) -> dict[str, Any]:
    """The JSON document a notifier of ``kind`` posts for ``notification``.

    * ``Webhook``: ``{"event", "namespace", "name", "model", "version", "phase",
      "message", "time"}``, all strings, ``time`` in RFC 3339 (UTC).
    * ``Slack``: ``{"text": ...}``, one sentence naming the model, the version and the
      ModelDeployment, followed by the message (cut to 300 characters).

    Raises :class:`ValueError` for any other kind.
    """
    if kind == "Webhook":
        return {
            "event": notification.event,
            "namespace": notification.namespace,
            "name": notification.name,
            "model": notification.model,
            "version": notification.version,
            "phase": notification.phase,
            "message": notification.message,
            "time": rfc3339(notification.time),
        }
    if kind == "Slack":
        return {"text": _slack_escape(sentence(notification))}
    raise ValueError(f"unknown notifier kind {kind!r}; choose one of {', '.join(KINDS)}")


def sentence(notification: Notification) -> str:
    """A short sentence about the decision, for people."""
    n = notification
    subject = f"{n.model} {n.version} ({n.namespace}/{n.name})"
    opening = {
        "StageChanged": f"{subject} entered {n.phase}",
        "StepAdvanced": f"{subject} moved to the next bake step",
        "GateWaiting": f"{subject} is waiting for approval",
        "Promoted": f"{subject} was promoted to production",
        "RolledBack": f"{subject} was rolled back",
        "Failed": f"The rollout of {subject} failed",
    }[n.event]
    message = " ".join(n.message.split())
    if len(message) > MAX_SLACK_MESSAGE:
        message = message[: MAX_SLACK_MESSAGE - 1].rstrip() + "\u2026"
    if not message:
        return f"{opening}."
    return f"{opening}: {message}" + ("" if message.endswith((".", "!", "?", "\u2026")) else ".")


def _slack_escape(text: str) -> str:
    """Slack reads ``&``, ``<`` and ``>`` as markup; these are the escapes it documents."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
