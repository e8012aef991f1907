"""Accumulating rows into a profile, or into the raw samples of a window.

Rows arrive one at a time as flat mappings (``{"age": 41, "country": "fr", ...}``, see
:mod:`.rows`). Each column buffers its numbers in a Python list and hands them to the
sketch and to the moments in chunks of :data:`CHUNK` values, so the per-value cost is an
``append`` and the sketch sees numpy arrays.

**Kinds.** A column's kind is fixed by its first present value: a number makes it
numeric, text or a boolean categorical (in a CSV, where everything is text, text that
reads as a number makes it numeric). ``categorical`` names columns to treat as
categorical whatever they hold (zip codes, numeric class ids); ``only`` restricts the
profile to the named features (the prediction and the label are always kept). Later
values that do not fit the kind are counted as ``invalid``: text that is not a number in
a numeric column, an object or a list anywhere. A window is read against the baseline
(``against``): with its kinds, so the same value is read the same way on both sides, and
with its categories.

**Categories.** Counts are exact up to ``4 x categoryLimit`` distinct values per column;
beyond that the column keeps the ``2 x categoryLimit`` most frequent and adds the rest to
``other``, which bounds memory for identifier-like columns. The profile keeps the
``categoryLimit`` most frequent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from modelrollout.core.monitoring import sketches
from modelrollout.core.monitoring.drift import CategoryCounts
from modelrollout.core.monitoring.profile import (
    DEFAULT_CATEGORY_LIMIT,
    LABEL,
    MAX_CATEGORY_CHARS,
    RESERVED_NAMES,
    CategoricalProfile,
    Kind,
    NumericProfile,
    Profile,
    ProfileSource,
    combine_moments,
    top_values,
)
from modelrollout.core.monitoring.sketches import FloatArray, QuantileSketch

CHUNK = 65_536
DEFAULT_MAX_FEATURES = 1_000


class TooManyFeaturesError(ValueError):
    """More distinct fields than the profile may hold."""


def category_text(value: object) -> str | None:
    """A value as a category; None for a missing value (null, NaN)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_CATEGORY_CHARS else value[:MAX_CATEGORY_CHARS]
    raise TypeError(type(value).__name__)


_MISSING = object()
_INVALID = object()


def number(value: object) -> float | object:
    """A value as a finite float, or ``_MISSING`` (null, NaN) or ``_INVALID``."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return _INVALID
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return _MISSING
        try:
            result = float(text)
        except ValueError:
            return _INVALID
    else:
        return _INVALID
    if math.isnan(result):
        return _MISSING
    if math.isinf(result):
        return _INVALID
    return result


class NumericColumn:
    """Numbers: a sketch, exact moments and, for a window, the raw values."""

    __slots__ = ("_buffer", "_chunks", "_moments", "invalid", "keep_raw", "max", "min", "sketch")

    def __init__(self, k: int, keep_raw: bool = False) -> None:
        self.sketch = QuantileSketch(k)
        self.keep_raw = keep_raw
        self.invalid = 0
        self.min = math.inf
        self.max = -math.inf
        self._moments: tuple[int, float, float] = (0, 0.0, 0.0)
        self._buffer: list[float] = []
        self._chunks: list[FloatArray] = []

    def add(self, value: object) -> None:
        if type(value) is float or type(value) is int:  # the common case, checked quickly
            plain = float(value)
            if plain - plain == 0.0:  # finite (NaN and infinities give NaN)
                self._buffer.append(plain)
                if len(self._buffer) >= CHUNK:
                    self._flush()
                return
        result = number(value)
        if isinstance(result, float):
            self._buffer.append(result)
            if len(self._buffer) >= CHUNK:
                self._flush()
        elif result is _INVALID:
            self.invalid += 1

    def add_array(self, values: FloatArray) -> None:
        """Add many values at once; NaN counts as missing, infinities as invalid."""
        self._flush()
        values = np.asarray(values, dtype=np.float64)
        finite = values[np.isfinite(values)]
        self.invalid += int(np.count_nonzero(np.isinf(values)))
        self._absorb(finite)

    def _flush(self) -> None:
        if self._buffer:
            values = np.fromiter(self._buffer, dtype=np.float64, count=len(self._buffer))
            self._buffer.clear()
            self._absorb(values)

    def _absorb(self, values: FloatArray) -> None:
        if not values.size:
            return
        self.sketch.update(values)
        mean = float(values.mean())
        m2 = float(np.square(values - mean).sum())
        self._moments = combine_moments(self._moments, (int(values.size), mean, m2))
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        if self.keep_raw:
            self._chunks.append(values)

    @property
    def count(self) -> int:
        self._flush()
        return self._moments[0]

    def profile(self, rows: int) -> NumericProfile:
        self._flush()
        count, mean, m2 = self._moments
        return NumericProfile(
            count=count,
            missing=rows - count - self.invalid,
            invalid=self.invalid,
            mean=mean if count else None,
            std=math.sqrt(m2 / count) if count else None,
            min=self.min if count else None,
            max=self.max if count else None,
            sketch=self.sketch.to_base64(),
        )

    def samples(self) -> FloatArray:
        self._flush()
        if not self._chunks:
            return np.empty(0)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0]


class CategoricalColumn:
    """Counts of values, bounded; see the module documentation.

    With ``known`` (a window read against a baseline) only the baseline's values are
    counted one by one, everything else goes straight to ``other``: that is all a
    comparison with the baseline can use.
    """

    __slots__ = ("counts", "invalid", "known", "limit", "other")

    def __init__(self, limit: int, known: frozenset[str] | None = None) -> None:
        self.limit = limit
        self.known = known
        self.counts: dict[str, int] = {}
        self.other = 0
        self.invalid = 0

    def add(self, value: object) -> None:
        try:
            text = category_text(value)
        except TypeError:
            self.invalid += 1
            return
        if text is None:
            return
        if self.known is not None and text not in self.known:
            self.other += 1
            return
        counts = self.counts
        counts[text] = counts.get(text, 0) + 1
        if len(counts) > 4 * self.limit:
            kept, folded = top_values(counts, 2 * self.limit)
            self.counts = kept
            self.other += folded

    @property
    def count(self) -> int:
        return sum(self.counts.values()) + self.other

    def profile(self, rows: int) -> CategoricalProfile:
        kept, folded = top_values(self.counts, self.limit)
        count = self.count
        return CategoricalProfile(
            count=count,
            missing=rows - count - self.invalid,
            invalid=self.invalid,
            frequencies=kept,
            other=self.other + folded,
        )


Column = NumericColumn | CategoricalColumn


@dataclass
class WindowSample:
    """A window's raw values per feature, read with the baseline's kinds."""

    rows: int
    numeric: dict[str, FloatArray] = field(default_factory=dict)
    categorical: dict[str, CategoryCounts] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    """Fields of the window that the baseline does not have."""


class ProfileBuilder:
    """Rows in, a :class:`~.profile.Profile` (or a :class:`WindowSample`) out."""

    def __init__(
        self,
        source: ProfileSource,
        *,
        k: int = sketches.DEFAULT_K,
        category_limit: int = DEFAULT_CATEGORY_LIMIT,
        categorical: Iterable[str] = (),
        only: Iterable[str] | None = None,
        numbers_in_text: bool = False,
        against: Profile | None = None,
        keep_raw: bool = False,
        max_features: int = DEFAULT_MAX_FEATURES,
    ) -> None:
        self.source = source
        self.k = k
        self.category_limit = category_limit
        self.categorical = frozenset(categorical) | {LABEL}
        self.only = None if only is None else frozenset(only) | RESERVED_NAMES
        self.numbers_in_text = numbers_in_text
        self.kinds = against.kinds() if against is not None else None
        self.known = {
            name: frozenset(column.frequencies)
            for name, column in (against.features.items() if against is not None else ())
            if isinstance(column, CategoricalProfile)
        }
        self.keep_raw = keep_raw
        self.max_features = max_features
        self.rows = 0
        self.malformed = 0
        self.columns: dict[str, Column] = {}
        self.ignored: set[str] = set()

    def add(self, row: Mapping[str, object]) -> None:
        """One row of flat values; raises :class:`TooManyFeaturesError`."""
        self.rows += 1
        columns = self.columns
        for name, value in row.items():
            column = columns.get(name)
            if column is None:
                if value is None:
                    continue
                column = self._new_column(name, value)
                if column is None:
                    continue
            column.add(value)

    def add_arrays(self, arrays: Mapping[str, FloatArray]) -> None:
        """Rows given as numeric columns of equal length (the fast path for numpy data)."""
        lengths = {int(np.asarray(a).shape[0]) for a in arrays.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        for name, values in arrays.items():
            column = self.columns.get(name)
            if column is None:
                column = self._new_column(name, 0.0)
            if isinstance(column, NumericColumn):
                column.add_array(values)
            elif column is not None:
                for value in np.asarray(values).tolist():
                    column.add(value)
        self.rows += lengths.pop() if lengths else 0

    def _new_column(self, name: str, value: object) -> Column | None:
        kind = self._kind_of(name, value)
        if kind is None:
            self.ignored.add(name)
            return None
        if len(self.columns) >= self.max_features:
            raise TooManyFeaturesError(
                f"{name}: more than {self.max_features} fields; choose features to profile "
                "or raise the limit"
            )
        column: Column
        if kind == "numeric":
            column = NumericColumn(self.k, keep_raw=self.keep_raw)
        else:
            column = CategoricalColumn(self.category_limit, self.known.get(name))
        self.columns[name] = column
        return column

    def _kind_of(self, name: str, value: object) -> Kind | None:
        if self.kinds is not None:
            return self.kinds.get(name)
        if self.only is not None and name not in self.only:
            return None
        if name in self.categorical:
            return "categorical"
        if isinstance(value, bool | dict | list):
            return "categorical"
        if isinstance(value, int | float):
            return "numeric"
        if isinstance(value, str) and self.numbers_in_text and isinstance(number(value), float):
            return "numeric"
        return "categorical"

    def profile(self) -> Profile:
        features = {name: self.columns[name].profile(self.rows) for name in sorted(self.columns)}
        return Profile(
            rows=self.rows,
            malformed=self.malformed,
            sketch_k=self.k,
            rank_error=sketches.rank_error(self.k),
            category_limit=self.category_limit,
            source=self.source,
            features=features,
        )

    def window(self) -> WindowSample:
        """The raw values (needs ``keep_raw``) per feature."""
        sample = WindowSample(rows=self.rows, ignored=sorted(self.ignored))
        for name, column in self.columns.items():
            sample.invalid[name] = column.invalid
            if isinstance(column, NumericColumn):
                sample.numeric[name] = column.samples()
            else:
                sample.categorical[name] = CategoryCounts(dict(column.counts), column.other)
        return sample
