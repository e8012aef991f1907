"""Profiles: what the builder counts, how profiles merge, and how big they get."""

from __future__ import annotations

import math

import numpy as np
import pytest

from factories import categorical_feature as _categorical
from factories import numeric_feature as _numeric
from modelrollout.core.monitoring import sketches
from modelrollout.core.monitoring.builder import (
    ProfileBuilder,
    TooManyFeaturesError,
    category_text,
)
from modelrollout.core.monitoring.drift import CategoryCounts
from modelrollout.core.monitoring.profile import (
    CONFIGMAP_BYTES,
    CONFIGMAP_FEATURES,
    FEATURE_BYTES,
    LABEL,
    MAX_CATEGORY_CHARS,
    PROFILE_OVERHEAD_BYTES,
    CategoricalProfile,
    NumericProfile,
    Profile,
    ProfileMergeError,
    ProfileSource,
    feature_bytes,
    merge_profiles,
)
from modelrollout.core.monitoring.sketches import QuantileSketch, SketchError

SOURCE = ProfileSource(format="jsonl", prediction_field="response.score", label_field="label")


def _builder(**kwargs: object) -> ProfileBuilder:
    return ProfileBuilder(SOURCE, **kwargs)  # type: ignore[arg-type]


# -- the builder --------------------------------------------------------------------------


def test_counts_missing_and_invalid_add_up_to_the_rows() -> None:
    builder = _builder()
    rows: list[dict[str, object]] = [
        {"x": 1.5, "c": "eu"},
        {"x": "2.5", "c": "us"},  # text that reads as a number counts
        {"x": None, "c": None},
        {"x": float("nan"), "c": True},
        {"x": "n/a", "c": 3},
        {"x": float("inf"), "c": 3.0},
        {"x": True},
        {},
        {"x": 4},
    ]
    for row in rows:
        builder.add(row)
    profile = builder.profile()
    x = _numeric(profile, "x")
    assert (x.count, x.missing, x.invalid) == (3, 3, 3)
    assert (x.mean, x.min, x.max) == pytest.approx((8 / 3, 1.5, 4.0))
    assert x.std == pytest.approx(float(np.std([1.5, 2.5, 4.0])))
    c = _categorical(profile, "c")
    assert (c.count, c.missing, c.invalid) == (5, 4, 0)
    assert c.frequencies == {"3": 2, "eu": 1, "true": 1, "us": 1}
    assert profile.rows == len(rows)


def test_the_first_value_fixes_the_kind_unless_named_categorical() -> None:
    builder = _builder(categorical=["zip"])
    builder.add({"zip": 75001, "n": 3, "flag": False, "name": "a", LABEL: "1"})
    builder.add({"zip": 10115, "n": "x", "flag": 1, "name": 2, LABEL: "0"})
    kinds = builder.profile().kinds()
    assert kinds == {
        "zip": "categorical",
        "n": "numeric",
        "flag": "categorical",
        "name": "categorical",
        LABEL: "categorical",
    }


def test_csv_text_that_reads_as_numbers_is_numeric() -> None:
    builder = ProfileBuilder(ProfileSource(format="csv"), numbers_in_text=True)
    builder.add({"a": "1.5", "b": "x"})
    builder.add({"a": "2", "b": "y"})
    assert builder.profile().kinds() == {"a": "numeric", "b": "categorical"}


def test_only_restricts_the_features_but_keeps_prediction_and_label() -> None:
    builder = _builder(only=["a"])
    builder.add({"a": 1, "b": 2, "@prediction": 0.3, LABEL: "1"})
    assert sorted(builder.profile().features) == ["@label", "@prediction", "a"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (3, "3"),
        (3.0, "3"),
        (0.25, "0.25"),
        (float("nan"), None),
        (None, None),
        ("x" * 100, "x" * MAX_CATEGORY_CHARS),
    ],
)
def test_category_text(value: object, text: str | None) -> None:
    assert category_text(value) == text


def test_categories_beyond_the_limit_go_to_other() -> None:
    builder = _builder(category_limit=3)
    for value, times in [("a", 50), ("b", 40), ("c", 30), ("d", 20), ("e", 10)]:
        for _ in range(times):
            builder.add({"c": value})
    c = _categorical(builder.profile(), "c")
    assert c.frequencies == {"a": 50, "b": 40, "c": 30}
    assert c.other == 30
    assert c.count == 150


def test_identifier_like_columns_stay_bounded() -> None:
    builder = _builder(category_limit=10)
    for i in range(10_000):
        builder.add({"id": f"user-{i}", "kind": "a" if i % 3 else "b"})
    column = builder.columns["id"]
    assert len(column.counts) <= 40  # type: ignore[union-attr]
    profile = builder.profile()
    ids = _categorical(profile, "id")
    assert len(ids.frequencies) == 10
    assert sum(ids.frequencies.values()) + ids.other == 10_000
    assert _categorical(profile, "kind").frequencies == {"a": 6666, "b": 3334}


def test_too_many_fields_are_refused_naming_the_field() -> None:
    builder = _builder(max_features=2)
    builder.add({"a": 1, "b": 2})
    with pytest.raises(TooManyFeaturesError, match=r"^c: more than 2 fields"):
        builder.add({"c": 3})


def test_arrays_and_rows_give_the_same_profile() -> None:
    x = np.random.default_rng(0).normal(size=1000)
    by_rows = _builder()
    for value in x:
        by_rows.add({"x": float(value)})
    by_arrays = _builder()
    by_arrays.add_arrays({"x": np.concatenate([x, [np.nan, np.inf]])})
    a, b = _numeric(by_rows.profile(), "x"), _numeric(by_arrays.profile(), "x")
    assert (a.count, a.min, a.max) == (b.count, b.min, b.max)
    assert (b.missing, b.invalid) == (1, 1)
    assert a.mean == pytest.approx(b.mean, rel=1e-12)
    assert a.std == pytest.approx(b.std, rel=1e-12)


def test_a_window_is_read_with_the_baselines_kinds_and_categories() -> None:
    baseline = _builder()
    baseline.add({"x": 1.0, "c": "eu", "gone": 1})
    baseline.add({"x": 2.0, "c": "us", "gone": 2})
    window = _builder(against=baseline.profile(), keep_raw=True)
    window.add({"x": "3.5", "c": "apac", "new": 1})
    window.add({"x": "bad", "c": "eu"})
    sample = window.window()
    assert sample.numeric["x"].tolist() == [3.5]
    assert sample.invalid["x"] == 1
    assert sample.categorical["c"] == CategoryCounts({"eu": 1}, other=1)
    assert sample.ignored == ["new"]
    assert "gone" not in sample.numeric
    assert sample.rows == 2


# -- merging --------------------------------------------------------------------------------


def _profile_of(rows: list[dict[str, object]], **kwargs: object) -> Profile:
    builder = _builder(**kwargs)
    for row in rows:
        builder.add(row)
    return builder.profile()


def test_shards_merge_into_the_profile_of_the_whole() -> None:
    rng = np.random.default_rng(1)
    rows: list[dict[str, object]] = [
        {"x": float(v), "c": str(rng.choice(["a", "b", "c"]))} for v in rng.normal(size=30_000)
    ]
    rows[5] = {"c": "a"}
    rows[7] = {"x": "oops"}
    whole = _profile_of(rows)
    shards = [_profile_of(rows[i::3]) for i in range(3)]
    merged = merge_profiles(shards)
    assert merged.rows == whole.rows
    assert merged.shards == 3
    mx, wx = _numeric(merged, "x"), _numeric(whole, "x")
    assert (mx.count, mx.missing, mx.invalid, mx.min, mx.max) == (
        wx.count,
        wx.missing,
        wx.invalid,
        wx.min,
        wx.max,
    )
    assert mx.mean == pytest.approx(wx.mean, rel=1e-9, abs=1e-12)
    assert mx.std == pytest.approx(wx.std, rel=1e-12)
    assert merged.features["c"] == whole.features["c"]
    # The merged sketch is the library's merge of the shard sketches (KLL compaction flips
    # random coins, so two merges of the same sketches agree in shape, not bit for bit).
    expected = QuantileSketch.from_base64(_numeric(shards[0], "x").sketch)
    for shard in shards[1:]:
        expected.merge(QuantileSketch.from_base64(_numeric(shard, "x").sketch))
    got = mx.quantile_sketch()
    assert (got.n, got.k, got.retained, got.min, got.max) == (
        expected.n,
        expected.k,
        expected.retained,
        expected.min,
        expected.max,
    )
    # And it answers like the whole, within the rank error.
    whole_sketch = wx.quantile_sketch()
    merged_sketch = mx.quantile_sketch()
    values = np.sort([r["x"] for r in rows if isinstance(r.get("x"), float)])
    ranks = [0.01, 0.1, 0.5, 0.9, 0.99]
    for rank, q in zip(ranks, merged_sketch.quantiles(ranks), strict=True):
        true_rank = np.searchsorted(values, q, side="right") / values.size
        assert abs(true_rank - rank) <= merged_sketch.rank_error
    assert merged_sketch.n == whole_sketch.n == wx.count


def test_a_feature_missing_from_a_shard_is_missing_in_its_rows() -> None:
    merged = merge_profiles(
        [_profile_of([{"x": 1.0}, {"x": 2.0}]), _profile_of([{"y": "a"}, {"y": "b"}, {}])]
    )
    assert (_numeric(merged, "x").count, _numeric(merged, "x").missing) == (2, 3)
    assert (_categorical(merged, "y").count, _categorical(merged, "y").missing) == (2, 3)


def test_category_counts_merge_and_keep_the_limit() -> None:
    a = _profile_of([{"c": v} for v in "aaab"], category_limit=2)
    b = _profile_of([{"c": v} for v in "bbcccc"], category_limit=2)
    merged = _categorical(merge_profiles([a, b]), "c")
    # a and b tie at 3 for the last place: the tie is broken by value, b goes to other.
    assert merged.frequencies == {"c": 4, "a": 3}
    assert merged.other == 3
    assert merged.count == 10


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        ([], "no profile"),
        (
            [_profile_of([{"x": 1}]), _profile_of([{"x": "a"}])],
            "feature x: numeric in one profile, categorical in another",
        ),
        (
            [
                _profile_of([{"x": 1}]),
                Profile(rows=1, source=ProfileSource(format="csv"), features={}),
            ],
            "read differently",
        ),
    ],
)
def test_profiles_that_cannot_merge_are_refused(profiles: list[Profile], message: str) -> None:
    with pytest.raises(ProfileMergeError, match=message):
        merge_profiles(profiles)


def test_json_round_trip_is_lossless_and_camel_case() -> None:
    profile = _profile_of([{"x": 1.25, "c": "eu", "@prediction": 0.5}, {"x": 2.0}])
    text = profile.to_json()
    assert '"schemaVersion": "modelrollout.io/profile/v1"' in text
    assert '"sketchK": 200' in text
    assert '"categoryLimit": 100' in text
    assert Profile.model_validate_json(text) == profile
    assert profile.rank_error == pytest.approx(0.0133, abs=1e-4)


# -- sketches and sizes ------------------------------------------------------------------------


def test_sketch_serialisation_round_trips_and_bad_text_is_named() -> None:
    sketch = QuantileSketch.of(np.arange(10_000, dtype=float))
    copy = QuantileSketch.from_base64(sketch.to_base64())
    assert (copy.n, copy.k, copy.retained) == (sketch.n, sketch.k, sketch.retained)
    assert copy.quantiles([0.5]) == sketch.quantiles([0.5])
    with pytest.raises(SketchError, match="base64"):
        QuantileSketch.from_base64("***")
    with pytest.raises(SketchError, match="not a KLL"):
        QuantileSketch.from_base64("AAAA")
    with pytest.raises(ValueError, match="sketch k"):
        QuantileSketch(4)


def test_rank_error_is_zero_until_the_sketch_compacts() -> None:
    small = QuantileSketch.of(np.arange(50, dtype=float))
    assert (small.rank_error, small.mass_error) == (0.0, 0.0)
    big = QuantileSketch.of(np.arange(100_000, dtype=float))
    assert big.rank_error == pytest.approx(sketches.rank_error(200))
    assert big.mass_error == pytest.approx(sketches.mass_error(200))
    assert sketches.rank_error(200) == pytest.approx(0.0133, abs=1e-4)


@pytest.mark.parametrize("n", [1, 100, 1_000, 30_000, 1_000_000, 5_000_000])
def test_serialised_size_stays_under_the_bound(n: int) -> None:
    values = np.random.default_rng(n).lognormal(size=n)
    sketch = QuantileSketch.of(values)
    assert len(sketch.to_bytes()) <= sketches.max_serialized_bytes(200, n)
    merged = QuantileSketch.of(values[: n // 2])
    merged.merge(QuantileSketch.of(values[n // 2 :]))
    assert len(merged.to_bytes()) <= sketches.max_serialized_bytes(200, n)


def test_a_numeric_feature_fits_the_bound_up_to_a_billion_values() -> None:
    # The largest sketch of 10^9 values, in base64, with the widest moments and name.
    size = sketches.max_serialized_bytes(sketches.DEFAULT_K, 10**9)
    column = NumericProfile(
        count=10**9,
        missing=10**11,
        invalid=10**11,
        mean=-1.2345678901234567e-300,
        std=1.2345678901234567e300,
        min=-1.7976931348623157e308,
        max=1.7976931348623157e308,
        sketch="A" * (4 * math.ceil(size / 3)),
    )
    assert feature_bytes("f" * 100, column) <= FEATURE_BYTES


def test_a_categorical_feature_fits_the_bound_at_the_limit() -> None:
    column = CategoricalProfile(
        count=10**12,
        missing=10**11,
        invalid=10**11,
        frequencies={f"{i:03d}" + "v" * (MAX_CATEGORY_CHARS - 3): 10**11 + i for i in range(100)},
        other=10**11,
    )
    assert feature_bytes("f" * 100, column) <= FEATURE_BYTES


def test_the_documented_number_of_features_fits_a_configmap() -> None:
    assert CONFIGMAP_FEATURES * FEATURE_BYTES + PROFILE_OVERHEAD_BYTES < CONFIGMAP_BYTES
    # A real profile of that many features (a million values each) is well under.
    rng = np.random.default_rng(2)
    builder = _builder()
    data = rng.normal(size=(20_000, 1))
    builder.add_arrays({f"feature.{i:03d}": data[:, 0] * (i + 1) for i in range(100)})
    for i in range(CONFIGMAP_FEATURES - 100):
        for value in range(150):
            builder.add({f"category.{i}": f"value-{value:03d}-" + "x" * 50})
    profile = builder.profile()
    assert len(profile.features) == CONFIGMAP_FEATURES
    size = len(profile.to_json().encode())
    assert size < CONFIGMAP_BYTES
    empty = Profile(rows=profile.rows, malformed=10**9, source=SOURCE)
    assert len(empty.to_json().encode()) <= PROFILE_OVERHEAD_BYTES
