"""Sampling by inference id, and the ids themselves."""

from __future__ import annotations

import uuid

import pytest

from modelrollout.core.capture import ids
from modelrollout.core.capture.sampling import Sampler

IDS = [f"req-{i}" for i in range(20_000)]


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.9])
def test_about_the_fraction_is_kept(fraction: float):
    kept = sum(Sampler(fraction).keep(i) for i in IDS)
    assert kept / len(IDS) == pytest.approx(fraction, abs=0.01)


def test_all_or_nothing():
    assert all(Sampler(1.0).keep(i) for i in IDS[:100])
    assert not any(Sampler(0.0).keep(i) for i in IDS[:100])


def test_the_decision_belongs_to_the_id():
    first = [i for i in IDS if Sampler(0.3, seed=5).keep(i)]
    again = [i for i in IDS if Sampler(0.3, seed=5).keep(i)]
    assert first == again


def test_a_smaller_fraction_keeps_a_subset():
    small = {i for i in IDS if Sampler(0.1, seed=2).keep(i)}
    large = {i for i in IDS if Sampler(0.4, seed=2).keep(i)}
    assert small < large


def test_the_seed_changes_the_selection():
    a = {i for i in IDS if Sampler(0.5, seed=0).keep(i)}
    b = {i for i in IDS if Sampler(0.5, seed=1).keep(i)}
    assert a != b
    assert len(a & b) / len(a) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize(("fraction", "seed"), [(-0.1, 0), (1.5, 0), (0.5, -1), (0.5, 1 << 64)])
def test_bad_settings(fraction: float, seed: int):
    with pytest.raises(ValueError, match="sample"):
        Sampler(fraction, seed)


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("abc-1", True),
        ("3f0c2a4e-1b7d-4c59-9e0f-aa5d3b2c1e00", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("with space", False),
        ("tab\there", False),
        ("caf\u00e9", False),
        ("line\nbreak", False),
        ("!#$%&'*+-.^_`|~:/@", True),
    ],
)
def test_which_client_ids_are_kept(value: str, kept: bool):
    assert ids.acceptable(value) is kept


def test_generated_ids_are_version_4_uuids():
    for random16 in (bytes(16), b"\xff" * 16, bytes(range(16))):
        text = ids.from_random(random16)
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    with pytest.raises(ValueError, match="16 random bytes"):
        ids.from_random(b"short")
