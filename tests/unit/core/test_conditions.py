from datetime import UTC, datetime, timedelta

import pytest

from modelrollout.core.conditions import get_condition, is_true, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def _set(conditions, status, reason="R", message="m", now=T0, generation=1):
    return set_condition(
        conditions,
        type="Ready",
        status=status,
        reason=reason,
        message=message,
        generation=generation,
        now=now,
    )


@pytest.mark.parametrize(
    ("first", "second", "expected_time"),
    [
        ("True", "True", "2026-01-01T00:00:00Z"),  # same status keeps the old time
        ("True", "False", "2026-01-01T00:05:00Z"),  # a change moves it
        ("False", "Unknown", "2026-01-01T00:05:00Z"),
    ],
)
def test_last_transition_time_moves_only_on_status_change(first, second, expected_time):
    conditions = _set([], first)
    conditions = _set(conditions, second, reason="Other", message="changed", now=T1, generation=2)
    (cond,) = conditions
    assert cond.last_transition_time == expected_time
    assert cond.reason == "Other"
    assert cond.message == "changed"
    assert cond.observed_generation == 2


def test_other_conditions_are_kept_in_order():
    conditions = set_condition(
        [], type="A", status="True", reason="X", message="", generation=1, now=T0
    )
    conditions = set_condition(
        conditions, type="B", status="False", reason="Y", message="", generation=1, now=T0
    )
    conditions = set_condition(
        conditions, type="A", status="False", reason="Z", message="", generation=1, now=T1
    )
    assert [c.type for c in conditions] == ["A", "B"]
    assert get_condition(conditions, "A").reason == "Z"
    assert not is_true(conditions, "A")
    assert not is_true(conditions, "missing")
