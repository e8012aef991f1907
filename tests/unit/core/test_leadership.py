"""Leader election decisions, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelrollout.core.leadership import LeaseView, Timing, decide, still_leading

NOW = datetime(2026, 12, 2, 6, 0, 0, tzinfo=UTC)


def lease(holder: str | None, renewed_ago: float | None, duration: int = 15) -> LeaseView:
    renewed = None if renewed_ago is None else NOW - timedelta(seconds=renewed_ago)
    return LeaseView(holder=holder, renewed_at=renewed, duration_seconds=duration)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, "Create"),  # nobody has ever held it
        (lease("me", 3), "Renew"),  # ours, fresh
        (lease("me", 60), "Renew"),  # ours even if stale: renew it back
        (lease("other", 3), "Follow"),  # theirs and fresh
        (lease("other", 15), "Follow"),  # theirs, exactly at the end of its duration
        (lease("other", 15.001), "TakeOver"),  # theirs and expired
        (lease("other", 3, duration=2), "TakeOver"),  # a short lease, expired
        (lease(None, 3), "TakeOver"),  # released
        (lease("other", None), "TakeOver"),  # never renewed
    ],
)
def test_decide(current: LeaseView | None, expected: str) -> None:
    assert decide(current, "me", NOW) == expected


@pytest.mark.parametrize(
    ("last_renewal", "now", "leading"),
    [
        (None, 100.0, False),  # never renewed
        (100.0, 100.0, True),
        (100.0, 109.9, True),  # within the renew deadline
        (100.0, 110.0, False),  # at the deadline it stops acting
    ],
)
def test_a_holder_stops_acting_at_the_renew_deadline(
    last_renewal: float | None, now: float, leading: bool
) -> None:
    assert still_leading(last_renewal, now, Timing()) is leading


def test_the_holder_stops_before_anyone_may_take_over() -> None:
    timing = Timing()
    assert timing.renew_deadline < timing.lease_duration


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"), [(10, 10, 2), (15, 10, 10), (15, 10, 0), (5, 10, 2)]
)
def test_timing_must_be_ordered(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match="lease duration > renew deadline > retry period"):
        Timing(duration, deadline, retry)
