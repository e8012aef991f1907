import pytest

from modelrollout.core import names


@pytest.mark.parametrize(
    ("name", "limit"),
    [("a" * 10, 63), ("a" * 63, 63), ("a" * 64, 63), ("b" * 300, 63), ("c" * 60, 52)],
)
def test_bounded_names_fit_and_are_deterministic(name, limit):
    result = names.bounded(name, limit)
    assert len(result) <= limit
    assert result == names.bounded(name, limit)
    if len(name) <= limit:
        assert result == name


def test_long_names_that_share_a_prefix_do_not_collide():
    a = names.bounded("x" * 70 + "a")
    b = names.bounded("x" * 70 + "b")
    assert a != b


@pytest.mark.parametrize(
    ("version", "expected_prefix"),
    [("v2", "fraud-v2-"), ("2026.11.20", "fraud-2026-11-20-"), ("V_3", "fraud-v-3-")],
)
def test_replay_test_names_are_dns_labels(version, expected_prefix):
    name = names.replay_test_name("fraud", version, "abcdef1234")
    assert name.startswith(expected_prefix)
    assert name.endswith("abcdef")
    assert len(name) <= 63
