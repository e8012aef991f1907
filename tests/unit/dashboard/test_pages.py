"""The dashboard's pages: every section there, every text from the cluster escaped, the
charts drawn with their points, the actions as forms carrying the CSRF token."""

from __future__ import annotations

import re
from typing import Any

import pytest

from factories import build_md, replay_test_spec, shard_result
from modelrollout.core import reasons
from modelrollout.core.api.common import Endpoint
from modelrollout.core.api.replaytest import ReplayTest
from modelrollout.core.dashboard import page, replays, rollouts, timeline
from modelrollout.core.dashboard.rollouts import Listed
from modelrollout.core.replay.result import merge_results

HOSTILE = '<script>alert("x")</script>&'
CSRF = "token-123"
STATUS: dict[str, Any] = {
    "phase": "Baking",
    "stableVersion": "v1",
    "candidateVersion": "v2",
    "currentStep": 0,
    "traffic": {"stableWeight": 80, "candidateWeight": 20},
    "message": HOSTILE,
    "conditions": [
        {
            "type": "Paused",
            "status": "True",
            "reason": "GateWaiting",
            "message": HOSTILE,
            "lastTransitionTime": "2026-01-01T00:00:02Z",
        }
    ],
    "analysis": [
        {
            "name": "p99",
            "successful": 1,
            "measurements": [
                {"phase": "Successful", "value": 12.5, "startedAt": "2026-01-01T00:00:05Z"},
                {
                    "phase": "Failed",
                    "value": 99.0,
                    "message": HOSTILE,
                    "startedAt": "2026-01-01T00:00:09Z",
                },
            ],
        }
    ],
    "history": [
        {"version": "v0", "outcome": "Promoted", "reason": "", "finishedAt": "2025-12-31T00:00:00Z"}
    ],
    "revisions": [
        {
            "version": "v0",
            "hash": "h",
            "template": {"spec": {"containers": []}},
            "retiredAt": "2026-01-01T00:00:00Z",
        }
    ],
}
EVENT = {
    "type": "Warning",
    "reason": "SLOFailed",
    "message": HOSTILE,
    "count": 2,
    "lastTimestamp": "2026-01-01T00:00:07Z",
}


def md(name: str = "fraud", **status: Any):
    return build_md({"metadata": {"name": name}, "status": {**STATUS, **status}})


def unescaped(text: str) -> bool:
    return "<script>alert" in text


def test_overview_shows_each_rollout_escaped() -> None:
    listed = [
        Listed("ml", HOSTILE, md(HOSTILE)),
        Listed("ml", "broken", None, "not a valid object: spec"),
    ]
    text = rollouts.overview(listed, scope="all namespaces")
    assert not unescaped(text)
    assert "&lt;script&gt;alert" in text
    row = text[text.index("<tbody>") :]
    for shown in ("Baking", "v1", "v2", "80 % / 20 %", "<td>1</td>", "Paused=True", "GateWaiting"):
        assert shown in row
    assert "not a valid object: spec" in row
    assert 'href="/md/ml/&lt;script&gt;' in text


def test_overview_says_what_could_not_be_read() -> None:
    text = rollouts.overview([], scope="namespace a", problem=f"forbidden {HOSTILE}")
    assert 'class="notice error"' in text
    assert not unescaped(text)
    assert "No ModelDeployment" not in text


@pytest.mark.parametrize(
    "section", ["status", "conditions", "analysis", "history", "timeline", "actions"]
)
def test_detail_has_every_section(section: str) -> None:
    found = md()
    entries = timeline.timeline(found.status, [EVENT])
    text = rollouts.detail(found, entries, csrf=CSRF, scope="all namespaces")
    assert f'id="{section}"' in text
    assert not unescaped(text)


def test_detail_forms_post_with_the_token() -> None:
    text = rollouts.detail(md(), [], csrf=CSRF, scope="s")
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', text)
    assert [action for action, _ in forms] == [
        f"/md/ml/fraud/{a}" for a in ("approve", "abort", "resume", "retry", "undo")
    ]
    for _, inner in forms:
        assert f'name="csrf" value="{CSRF}"' in inner
    assert '<option value="v0">v0</option>' in text  # undo offers the kept versions
    assert 'data-src="/md/ml/fraud/live"' in text
    assert "setTimeout(tick, 3000)" in text
    assert "http" not in text.split("<script>")[1]


@pytest.mark.parametrize(("kind", "role"), [("ok", "status"), ("error", "alert")])
def test_a_notice_shows_above_the_page(kind: page.NoticeKind, role: str) -> None:
    text = rollouts.detail(md(), [], csrf=CSRF, scope="s", told=page.Notice(kind, HOSTILE))
    assert f'class="notice {kind}" role="{role}"' in text
    assert not unescaped(text)


def test_timeline_is_newest_first_from_every_source() -> None:
    found = md(
        shadow={
            "run": "r1",
            "startedAt": "2026-01-01T00:00:01Z",
            "finishedAt": "2026-01-01T00:00:08Z",
            "outcome": "Pass",
            "pairs": 50,
        }
    )
    entries = timeline.timeline(found.status, [EVENT, {"reason": "NoTime"}])
    assert [(x.at, x.source) for x in entries] == [
        ("2026-01-01T00:00:09Z", "measurement"),
        ("2026-01-01T00:00:08Z", "shadow"),
        ("2026-01-01T00:00:07Z", "event"),
        ("2026-01-01T00:00:05Z", "measurement"),
        ("2026-01-01T00:00:01Z", "shadow"),
        ("2025-12-31T00:00:00Z", "history"),
    ]
    assert entries[2].text.endswith("(x2)")
    assert entries[0].text.startswith("p99 = 99")
    live = rollouts.live(found, entries)
    assert live.count("<li class=") == len(entries)
    assert not unescaped(live)


def test_event_times_are_cut_to_the_second() -> None:
    entry = timeline.event_entry({"eventTime": "2026-01-01T00:00:07.123456Z", "reason": "R"})
    assert entry is not None
    assert entry.at == "2026-01-01T00:00:07Z"


def replay_test(**status: Any) -> ReplayTest:
    spec = replay_test_spec().model_dump(by_alias=True, exclude_none=True)
    return ReplayTest.model_validate(
        {"metadata": {"name": HOSTILE, "namespace": "ml"}, "spec": spec, "status": status}
    )


def full_result(spacing: float = 0.01):
    return merge_results([shard_result(0, 2, 0.010, spacing), shard_result(1, 2, 0.012, spacing)])


def test_replay_page_draws_the_charts_with_points() -> None:
    result = full_result(spacing=0.1)  # 40 events over 4 seconds
    test = replay_test(
        phase="Succeeded", verdict="Passed", reasons=[HOSTILE], result=result.summary()
    )
    text = replays.page(test, result, scope="s")
    assert not unescaped(text)
    for section in ("state", "verdict", "summary", "rate", "latency", "errors"):
        assert f'id="{section}"' in text
    points = re.findall(r'<polyline[^>]* points="([^"]+)"', text)
    assert points
    assert all(len(p.split()) >= 2 for p in points)  # one point a second


def test_replay_page_without_the_full_result_shows_the_summary() -> None:
    result = full_result()
    test = replay_test(phase="Succeeded", verdict="Passed", result=result.summary())
    text = replays.page(test, None, scope="s")
    assert 'id="summary"' in text
    assert replays.NO_TIMELINE in text
    assert "<polyline" not in text
    assert "40 sent of 40 scheduled" in text


def test_replay_page_before_a_result() -> None:
    text = replays.page(replay_test(phase="Running"), None, scope="s")
    assert "No result yet." in text


def test_replay_listing_links_each_test() -> None:
    test = replay_test(phase="Succeeded", verdict="Failed", result=full_result().summary())
    text = replays.listing([test], scope="s")
    assert 'href="/replaytests/ml/&lt;script&gt;' in text
    assert not unescaped(text)
    assert "Failed" in text


def test_every_page_has_the_navigation() -> None:
    text = rollouts.overview([], scope="s")
    for label, path in page.NAV:
        assert f'href="{path}"' in text
        assert label in text
    assert 'class="here">rollouts<' in text


def test_approve_preselects_the_gate_waited_at() -> None:
    waiting = dict(
        STATUS["conditions"][0], message=f"{reasons.WAITING_FOR_APPROVAL}BeforeProduction "
    )
    text = rollouts.detail(md(conditions=[waiting]), [], csrf=CSRF, scope="s")
    assert '<option value="BeforeProduction" selected>' in text
    text = rollouts.detail(md(), [], csrf=CSRF, scope="s")
    assert " selected>" not in text


@pytest.mark.parametrize(
    ("endpoint", "text"),
    [
        ({"url": "http://m/p"}, "http://m/p"),
        (
            {"service": {"name": "md-stable", "port": 8080, "path": "/v1/p"}},
            "http://md-stable:8080/v1/p (Service md-stable)",
        ),
        (
            {"modelDeployment": {"name": "md", "track": "candidate"}},
            "the candidate track of ModelDeployment md",
        ),
    ],
)
def test_endpoints_in_words(endpoint: dict[str, Any], text: str) -> None:
    assert replays.endpoint_text(Endpoint.model_validate(endpoint)) == text
