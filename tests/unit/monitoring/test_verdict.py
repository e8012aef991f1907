"""Verdicts: no false alarms on identical data, insufficient windows never drift, real
shifts do, and drift.json has the documented shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelrollout.core.monitoring import drift
from modelrollout.core.monitoring.builder import ProfileBuilder, WindowSample
from modelrollout.core.monitoring.drift import CategoryCounts, NumericStatistics, TwoSampleTest
from modelrollout.core.monitoring.profile import Profile, ProfileSource
from modelrollout.core.monitoring.sketches import QuantileSketch
from modelrollout.core.monitoring.verdict import (
    ComparisonError,
    DriftThresholds,
    _judge,
    compare,
)

SOURCE = ProfileSource(format="jsonl")
DEFAULTS = DriftThresholds()


def _profile(
    columns: dict[str, np.ndarray], categories: dict[str, list[str]] | None = None
) -> Profile:
    builder = ProfileBuilder(SOURCE)
    builder.add_arrays(columns)
    for name, values in (categories or {}).items():
        for value in values:
            builder.add({name: value})
    return builder.profile()


def _window(baseline: Profile, columns: dict[str, np.ndarray]) -> WindowSample:
    builder = ProfileBuilder(SOURCE, against=baseline, keep_raw=True)
    builder.add_arrays(columns)
    return builder.window()


# -- no false alarms ----------------------------------------------------------------------------


@pytest.mark.parametrize("dist", ["normal", "lognormal", "poisson"])
def test_a_million_identical_values_never_drift(dist: str) -> None:
    rng = np.random.default_rng(0)
    draw = {
        "normal": lambda n: rng.normal(size=n),
        "lognormal": lambda n: rng.lognormal(size=n),
        "poisson": lambda n: rng.poisson(3, size=n).astype(float),
    }[dist]
    baseline = _profile({"x": draw(1_000_000)})
    fresh = draw(1_000_000)
    as_profile = compare(baseline, _profile({"x": fresh}), DEFAULTS)
    as_samples = compare(baseline, _window(baseline, {"x": fresh}), DEFAULTS)
    for comparison in (as_profile, as_samples):
        (feature,) = comparison.features
        assert feature.status == "stable", feature.reasons
        assert comparison.drifted == []
        s = feature.statistics
        assert isinstance(s, NumericStatistics)
        # Two samples of a million differ by ~0.001 in KS; the rest is the sketches' error.
        eps = 2 * baseline.rank_error
        assert s.ks.statistic <= eps + 0.003
        assert s.linf <= eps
        # Bin masses are off by at most the mass error: psi and js stay small.
        assert s.psi < 0.01
        assert s.jensen_shannon < 0.05
        # The discounted p-value shows no evidence: no distance can raise an alarm.
        assert s.ks.p_value > 0.5


def test_a_raw_ks_test_alone_would_have_cried_wolf() -> None:
    rng = np.random.default_rng(1)
    baseline = QuantileSketch.of(rng.normal(size=1_000_000))
    same = rng.normal(size=1_000_000)
    f = drift.ecdf_of_sketch(baseline)
    statistic = drift.compare_cdfs(f, drift.ecdf_of_samples(same)).ks
    assert drift.ks_p_value(statistic, baseline.n, same.size) < 1e-6  # undiscounted
    assert drift.ks(baseline, same).p_value > 0.5


@pytest.mark.parametrize("m", [1000, 2000])
def test_identical_windows_at_the_minimum_size_rarely_drift(m: int) -> None:
    rng = np.random.default_rng(2)
    f = drift.ecdf_of_sketch(QuantileSketch.of(rng.normal(size=1_000_000)))
    flagged = sum(
        _judge(
            "x", "numeric", 10**6, m, drift.numeric_statistics(f, rng.normal(size=m)), DEFAULTS
        ).status
        == "drifted"
        for _ in range(300)
    )
    assert flagged <= 3  # at most 1 % false alarms per feature


def test_without_the_significance_gate_small_windows_would_drift() -> None:
    rng = np.random.default_rng(3)
    f = drift.ecdf_of_sketch(QuantileSketch.of(rng.normal(size=1_000_000)))
    loose = DriftThresholds(min_samples=1, alpha=None)
    gated = DriftThresholds(min_samples=1)
    stats = [drift.numeric_statistics(f, rng.normal(size=100)) for _ in range(200)]
    loose_flags = sum(
        _judge("x", "numeric", 10**6, 100, s, loose).status == "drifted" for s in stats
    )
    gated_flags = sum(
        _judge("x", "numeric", 10**6, 100, s, gated).status == "drifted" for s in stats
    )
    assert loose_flags > 100  # distances are noisy on 100 values
    assert gated_flags < 15


# -- insufficient, drifted, the thresholds --------------------------------------------------------


STATS = NumericStatistics(
    ks=TwoSampleTest(0.3, 1e-9),
    psi=0.3,
    jensen_shannon=0.2,
    wasserstein=0.5,
    cdf_distance=0.4,
    linf=0.2,
)
QUIET = NumericStatistics(
    ks=TwoSampleTest(0.01, 1e-9),
    psi=0.01,
    jensen_shannon=0.02,
    wasserstein=0.05,
    cdf_distance=0.3,
    linf=0.0,
)


@pytest.mark.parametrize(
    ("statistics", "n", "m", "thresholds", "status", "reason"),
    [
        (STATS, 10**6, 999, DEFAULTS, "insufficient", "window has 999 values"),
        (STATS, 500, 10**6, DEFAULTS, "insufficient", "baseline has 500 values"),
        (STATS, 10**6, 10, DriftThresholds(min_samples=10), "drifted", "wasserstein 0.5 > 0.1"),
        (QUIET, 10**6, 10**6, DEFAULTS, "stable", None),
        (
            QUIET,
            10**6,
            10**6,
            DriftThresholds(max_cdf_distance=0.25),
            "drifted",
            "cdfDistance 0.3 > 0.25",
        ),
        (
            NumericStatistics(TwoSampleTest(0.2, 0.2), 0.3, 0.2, 0.5, 0.4, 0.2),
            10**6,
            10**6,
            DEFAULTS,
            "stable",
            "not significant: p 0.2 >= alpha 0.05",
        ),
        (
            NumericStatistics(TwoSampleTest(0.2, 0.2), 0.3, 0.2, 0.5, 0.4, 0.2),
            10**6,
            10**6,
            DriftThresholds(alpha=None),
            "drifted",
            "linf 0.2 > 0.1",
        ),
        (
            STATS,
            10**6,
            10**6,
            DriftThresholds(
                max_wasserstein=None, max_linf=None, max_jensen_shannon=None, max_psi=None
            ),
            "stable",
            None,
        ),
        (
            STATS,
            10**6,
            10**6,
            DriftThresholds(max_wasserstein=None, max_linf=None, max_jensen_shannon=None),
            "drifted",
            "psi 0.3 > 0.25",
        ),
    ],
)
def test_verdicts(
    statistics: NumericStatistics,
    n: int,
    m: int,
    thresholds: DriftThresholds,
    status: str,
    reason: str | None,
) -> None:
    result = _judge("x", "numeric", n, m, statistics, thresholds)
    assert result.status == status
    assert result.drifted is (None if status == "insufficient" else status == "drifted")
    if reason is None:
        assert result.reasons == []
    else:
        assert any(reason in r for r in result.reasons), result.reasons


def test_shifts_and_new_categories_are_found_in_a_thousand_values() -> None:
    rng = np.random.default_rng(4)
    regions = ["eu"] * 600 + ["us"] * 400
    baseline = _profile(
        {"same": rng.normal(size=100_000), "shifted": rng.normal(size=100_000)},
        {"region": regions * 20},
    )
    window = _window(
        baseline, {"same": rng.normal(size=1000), "shifted": rng.normal(0.25, 1, size=1000)}
    )
    window.categorical["region"] = CategoryCounts({"eu": 500, "us": 300}, other=200)
    comparison = compare(baseline, window, DEFAULTS)
    assert comparison.drifted == ["region", "shifted"]
    statuses = {f.name: f.status for f in comparison.features}
    assert statuses == {"same": "stable", "shifted": "drifted", "region": "drifted"}


def test_a_feature_absent_from_the_window_is_insufficient() -> None:
    rng = np.random.default_rng(5)
    baseline = _profile({"x": rng.normal(size=5000)}, {"c": ["a", "b"] * 1000})
    comparison = compare(baseline, _window(baseline, {"y": rng.normal(size=5000)}), DEFAULTS)
    assert {f.name: f.status for f in comparison.features} == {
        "x": "insufficient",
        "c": "insufficient",
    }
    assert comparison.ignored == ["y"]
    report = comparison.report()
    assert report.features["x"].drifted is None
    assert report.drifted == []


def test_profiles_of_different_kinds_cannot_be_compared() -> None:
    baseline = _profile({"x": np.arange(10.0)})
    other = _profile({}, {"x": ["a", "b"]})
    with pytest.raises(ComparisonError, match="feature x: numeric in the baseline"):
        compare(baseline, other, DEFAULTS)


def test_drift_json_has_exactly_the_documented_keys() -> None:
    rng = np.random.default_rng(6)
    baseline = _profile({"x": rng.normal(size=5000)}, {"c": ["a", "b"] * 2500})
    window = _profile({"x": rng.normal(1, 1, size=5000)}, {"c": ["a"] * 5000})
    document = json.loads(compare(baseline, window, DEFAULTS).report().to_json())
    assert set(document) == {"features", "drifted"}
    assert document["drifted"] == ["c", "x"]
    assert set(document["features"]["x"]) == {
        "ks",
        "psi",
        "jensenShannon",
        "wasserstein",
        "cdfDistance",
        "linf",
        "drifted",
    }
    assert set(document["features"]["x"]["ks"]) == {"statistic", "pValue"}
    assert set(document["features"]["c"]) == {"chiSquare", "linf", "jensenShannon", "drifted"}
    assert set(document["features"]["c"]["chiSquare"]) == {"statistic", "pValue"}
    assert document["features"]["x"]["drifted"] is True
