"""Baseline profiles: what a dataset looked like, small enough for a ConfigMap.

A profile summarises every feature of a dataset (and the model's predictions and the
ground-truth labels, under the reserved names ``@prediction`` and ``@label``) so that a
later window of production traffic can be compared with it without keeping the dataset:

* a **numeric** feature keeps count, missing, invalid, mean, standard deviation, min and
  max, exactly, and a KLL quantile sketch (:mod:`.sketches`) of its values, serialised as
  base64 of the sketch's own bytes;
* a **categorical** feature keeps the counts of its most frequent values (at most
  ``categoryLimit``, default 100) and one ``other`` count for the rest.

Profiles are **mergeable**: :func:`merge_profiles` adds counts, combines means and
variances with Chan's formulas and merges the sketches with the library's merge, so the
shards of a large dataset can be profiled separately and merged into the profile of the
whole. Category counts are exact as long as the whole dataset has at most
``categoryLimit`` distinct values; beyond that the rarest values are folded into
``other``, and a value that was folded in one shard but kept in another keeps only part
of its count.

**Size.** A ConfigMap holds at most 1 MiB. At the defaults a feature takes at most
:data:`FEATURE_BYTES` (9,000 bytes) of JSON, name included (up to 100 bytes): a numeric
feature's sketch of up to 10⁹ values is at most 6.2 KB, 8.3 KB in base64
(:func:`~.sketches.max_serialized_bytes`), plus the moments; a categorical feature
holds 100 values of at most :data:`MAX_CATEGORY_CHARS` characters (printable ASCII; other
characters take up to 6 bytes each in JSON) with their counts. A profile of ``N``
features therefore takes at most ``N x 9,000 + 1,000`` bytes, so
:data:`CONFIGMAP_FEATURES` = 115 features always fit in one ConfigMap. The test suite
checks both bounds, and ``modelrollout profile`` warns when a profile is larger.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from modelrollout.core.api.base import ApiModel
from modelrollout.core.monitoring import sketches
from modelrollout.core.monitoring.sketches import QuantileSketch

SCHEMA_VERSION = "modelrollout.io/profile/v1"
PREDICTION = "@prediction"
"""The profile's name for the model's predictions."""
LABEL = "@label"
"""The profile's name for the ground-truth labels."""
RESERVED_NAMES = frozenset({PREDICTION, LABEL})

DEFAULT_CATEGORY_LIMIT = 100
MAX_CATEGORY_CHARS = 64
"""Longer category values are cut to this many characters (a ConfigMap size guarantee)."""

CONFIGMAP_BYTES = 1024 * 1024
FEATURE_BYTES = 9_000
"""Upper bound of one feature's JSON at the defaults; see the module documentation."""
PROFILE_OVERHEAD_BYTES = 1_000
"""Upper bound of a profile's JSON outside its features."""
CONFIGMAP_FEATURES = 115
"""Features that always fit in one ConfigMap at the defaults: 115 x 9,000 + 1,000 < 1 MiB."""

Kind = Literal["numeric", "categorical"]


class NumericProfile(ApiModel):
    """A numeric feature: exact moments and a quantile sketch of its values."""

    kind: Literal["numeric"] = Field(default="numeric", description="Always numeric.")
    count: int = Field(ge=0, description="Values profiled: present, finite numbers.")
    missing: int = Field(ge=0, description="Rows where the field was absent, null or NaN.")
    invalid: int = Field(
        default=0,
        ge=0,
        description="Rows where the field held something else: text that is not a number, "
        "a boolean, an infinity.",
    )
    mean: float | None = Field(default=None, description="Mean of the values.")
    std: float | None = Field(
        default=None, description="Population standard deviation (ddof 0) of the values."
    )
    min: float | None = Field(default=None, description="Smallest value, exact.")
    max: float | None = Field(default=None, description="Largest value, exact.")
    sketch: str = Field(
        description="Base64 of the KLL sketch's own serialisation (Apache DataSketches, "
        "kll_doubles_sketch)."
    )

    def quantile_sketch(self) -> QuantileSketch:
        return QuantileSketch.from_base64(self.sketch)


class CategoricalProfile(ApiModel):
    """A categorical feature: counts of its most frequent values."""

    kind: Literal["categorical"] = Field(default="categorical", description="Always categorical.")
    count: int = Field(ge=0, description="Values profiled (present and not null).")
    missing: int = Field(ge=0, description="Rows where the field was absent or null.")
    invalid: int = Field(
        default=0, ge=0, description="Rows where the field held an object or a list."
    )
    frequencies: dict[str, int] = Field(
        default_factory=dict,
        description="Count of each value, the most frequent first, at most categoryLimit.",
    )
    other: int = Field(
        default=0, ge=0, description="Values counted together because the limit was reached."
    )


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class ProfileSource(ApiModel):
    """How the rows were read, so that a window is read the same way."""

    format: Literal["jsonl", "csv"] = Field(
        description="jsonl (replay events) or csv (a header line, one record per line)."
    )
    prediction_field: str | None = Field(
        default=None,
        description="Where the prediction was read: a path in each event, or a CSV column.",
    )
    label_field: str | None = Field(
        default=None, description="Where the label was read: a path or a CSV column."
    )


class Profile(ApiModel):
    """A baseline profile: a summary of every feature, the predictions and the labels."""

    schema_version: Literal["modelrollout.io/profile/v1"] = Field(
        default="modelrollout.io/profile/v1", description="The format of this document."
    )
    rows: int = Field(ge=0, description="Rows profiled (events or CSV records).")
    malformed: int = Field(default=0, ge=0, description="Lines skipped as unreadable.")
    shards: int = Field(default=1, ge=1, description="Profiles merged into this one.")
    sketch_k: int = Field(
        default=sketches.DEFAULT_K,
        ge=sketches.MIN_K,
        le=sketches.MAX_K,
        description="KLL parameter k of the numeric sketches (the smallest, after a merge).",
    )
    rank_error: float = Field(
        default=0.0,
        ge=0,
        description="Normalised rank error of the numeric sketches at sketchK, with 99 % "
        "confidence (0.0133 at k = 200).",
    )
    category_limit: int = Field(
        default=DEFAULT_CATEGORY_LIMIT,
        ge=1,
        description="Most values a categorical feature keeps before counting the rest as other.",
    )
    source: ProfileSource = Field(description="How the dataset was read.")
    features: dict[str, ColumnProfile] = Field(
        default_factory=dict,
        description="Each feature by name (dotted paths into the payload; @prediction, @label).",
    )

    def kinds(self) -> dict[str, Kind]:
        return {name: column.kind for name, column in self.features.items()}

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=1) + "\n"


class ProfileMergeError(ValueError):
    """Profiles that cannot be merged; the message names the feature or the setting."""


def merge_profiles(profiles: Sequence[Profile]) -> Profile:
    """One profile of all the rows of ``profiles``; see the module documentation."""
    if not profiles:
        raise ProfileMergeError("no profile to merge")
    first = profiles[0]
    for other in profiles[1:]:
        if other.source.format != first.source.format or (
            other.source.prediction_field,
            other.source.label_field,
        ) != (first.source.prediction_field, first.source.label_field):
            raise ProfileMergeError(
                "the profiles were read differently (source: format, predictionField, "
                "labelField must match)"
            )
    rows = sum(p.rows for p in profiles)
    limit = min(p.category_limit for p in profiles)
    k = min(p.sketch_k for p in profiles)
    names = sorted({name for p in profiles for name in p.features})
    features: dict[str, NumericProfile | CategoricalProfile] = {}
    for name in names:
        present = [p.features[name] for p in profiles if name in p.features]
        kinds = {column.kind for column in present}
        if len(kinds) > 1:
            raise ProfileMergeError(
                f"feature {name}: numeric in one profile, categorical in another"
            )
        if isinstance(present[0], NumericProfile):
            features[name] = _merge_numeric(
                [c for c in present if isinstance(c, NumericProfile)], rows
            )
        else:
            features[name] = _merge_categorical(
                [c for c in present if isinstance(c, CategoricalProfile)], rows, limit
            )
    return Profile(
        rows=rows,
        malformed=sum(p.malformed for p in profiles),
        shards=sum(p.shards for p in profiles),
        sketch_k=k,
        rank_error=sketches.rank_error(k),
        category_limit=limit,
        source=first.source,
        features=features,
    )


def combine_moments(
    a: tuple[int, float, float], b: tuple[int, float, float]
) -> tuple[int, float, float]:
    """Chan et al.'s parallel update of ``(count, mean, sum of squared deviations)``."""
    n_a, mean_a, m2_a = a
    n_b, mean_b, m2_b = b
    n = n_a + n_b
    if n_b == 0:
        return a
    if n_a == 0:
        return b
    delta = mean_b - mean_a
    mean = mean_a + delta * n_b / n
    return n, mean, m2_a + m2_b + delta * delta * n_a * n_b / n


def _merge_numeric(columns: list[NumericProfile], rows: int) -> NumericProfile:
    moments = (0, 0.0, 0.0)
    sketch: QuantileSketch | None = None
    for column in columns:
        if column.count and column.mean is not None and column.std is not None:
            moments = combine_moments(
                moments, (column.count, column.mean, column.std**2 * column.count)
            )
        part = column.quantile_sketch()
        if sketch is None:
            sketch = part
        else:
            sketch.merge(part)
    assert sketch is not None
    count, mean, m2 = moments
    invalid = sum(c.invalid for c in columns)
    lows = [c.min for c in columns if c.min is not None]
    highs = [c.max for c in columns if c.max is not None]
    return NumericProfile(
        count=count,
        missing=rows - count - invalid,
        invalid=invalid,
        mean=mean if count else None,
        std=math.sqrt(m2 / count) if count else None,
        min=min(lows) if lows else None,
        max=max(highs) if highs else None,
        sketch=sketch.to_base64(),
    )


def _merge_categorical(
    columns: list[CategoricalProfile], rows: int, limit: int
) -> CategoricalProfile:
    counts: dict[str, int] = {}
    other = 0
    for column in columns:
        other += column.other
        for value, count in column.frequencies.items():
            counts[value] = counts.get(value, 0) + count
    kept, folded = top_values(counts, limit)
    count = sum(c.count for c in columns)
    invalid = sum(c.invalid for c in columns)
    return CategoricalProfile(
        count=count,
        missing=rows - count - invalid,
        invalid=invalid,
        frequencies=kept,
        other=other + folded,
    )


def top_values(counts: dict[str, int], limit: int) -> tuple[dict[str, int], int]:
    """The ``limit`` most frequent values (ties by value, for determinism) and the rest's
    total."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ordered[:limit])
    return kept, sum(count for _, count in ordered[limit:])


def feature_bytes(name: str, column: NumericProfile | CategoricalProfile) -> int:
    """Bytes this feature adds to the profile's JSON (as :meth:`Profile.to_json` writes it)."""
    probe = Profile(source=ProfileSource(format="jsonl"), rows=0, features={name: column})
    empty = Profile(source=ProfileSource(format="jsonl"), rows=0)
    return len(probe.to_json().encode()) - len(empty.to_json().encode())
