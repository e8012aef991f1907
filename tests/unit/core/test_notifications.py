import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from modelrollout.core.api.modeldeployment import Notifier
from modelrollout.core.notifications import Notification, payload, wanted

NOTE = Notification(
    event="RolledBack",
    namespace="ml",
    name="fraud",
    model="fraud-scorer",
    version="v3",
    phase="RolledBack",
    message="SLO latency-p99 failed 2 times (limit 1)",
    time=datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
)


def test_webhook_payload_is_flat_and_complete():
    assert payload("Webhook", NOTE) == {
        "event": "RolledBack",
        "namespace": "ml",
        "name": "fraud",
        "model": "fraud-scorer",
        "version": "v3",
        "phase": "RolledBack",
        "message": "SLO latency-p99 failed 2 times (limit 1)",
        "time": "2026-03-01T12:00:00Z",
    }


@pytest.mark.parametrize(
    ("event", "phase", "message", "text"),
    [
        (
            "StageChanged",
            "Baking",
            "replay passed",
            "fraud-scorer v3 (ml/fraud) entered Baking: replay passed.",
        ),
        (
            "StepAdvanced",
            "Baking",
            "weight 20",
            "fraud-scorer v3 (ml/fraud) moved to the next bake step: weight 20.",
        ),
        (
            "GateWaiting",
            "Baking",
            "gate BeforeProduction needs an approval.",
            "fraud-scorer v3 (ml/fraud) is waiting for approval: "
            "gate BeforeProduction needs an approval.",
        ),
        ("Promoted", "Production", "", "fraud-scorer v3 (ml/fraud) was promoted to production."),
        (
            "RolledBack",
            "RolledBack",
            "SLO latency failed",
            "fraud-scorer v3 (ml/fraud) was rolled back: SLO latency failed.",
        ),
        (
            "Failed",
            "Failed",
            "pods not ready\nafter 10m",
            "The rollout of fraud-scorer v3 (ml/fraud) failed: pods not ready after 10m.",
        ),
        (
            "RolledBack",
            "RolledBack",
            "p99 > 250ms & errors < 1%",
            "fraud-scorer v3 (ml/fraud) was rolled back: p99 &gt; 250ms &amp; errors &lt; 1%.",
        ),
    ],
)
def test_slack_payload_is_one_sentence(event, phase, message, text):
    note = dataclasses.replace(NOTE, event=event, phase=phase, message=message)
    assert payload("Slack", note) == {"text": text}


def test_slack_payload_cuts_long_messages():
    text = payload("Slack", dataclasses.replace(NOTE, message="x" * 5000))["text"]
    assert len(text) < 400
    assert text.endswith("x\u2026")


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown notifier kind 'Teams'"):
        payload("Teams", NOTE)


def notifier(**extra):
    return Notifier.model_validate({"name": "ops", "kind": "Webhook", "url": "http://x", **extra})


@pytest.mark.parametrize(
    ("events", "event", "expected"),
    [
        (None, "Promoted", True),
        (None, "RolledBack", True),
        (None, "Failed", True),
        (None, "GateWaiting", True),
        (None, "StageChanged", False),
        (None, "StepAdvanced", False),
        (["StepAdvanced"], "StepAdvanced", True),
        (["StepAdvanced"], "Promoted", False),
        ([], "Failed", False),
    ],
)
def test_wanted(events, event, expected):
    spec = notifier() if events is None else notifier(events=events)
    assert wanted(spec, event) is expected
