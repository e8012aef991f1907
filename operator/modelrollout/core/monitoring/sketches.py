"""Quantile sketches: Apache DataSketches' KLL sketch, typed and serialisable.

A baseline profile must summarise millions of values per feature in a few kilobytes, be
built in shards and merged, and still answer "which fraction of the baseline lies below
x" with a known error. The KLL sketch (Karnin, Lang and Liberty, 2016) does all three,
and Apache DataSketches ships a compiled implementation with no I/O, so it may live in
the pure core:

* **Rank error.** For a sketch with parameter ``k`` the normalised rank error of any
  CDF or quantile query is at most ``eps(k)`` with 99 % confidence, whatever the data and
  however many values went in: ``eps(200) = 1.33 %`` (single-sided, for ``F(x)``) and
  ``1.65 %`` for the mass of an interval (double-sided). :func:`rank_error` and
  :func:`mass_error` return the library's figures.
* **Mergeable.** Two sketches merge into a sketch of the union with the same guarantee,
  so shards can be profiled separately and merged in any order.
* **Small.** The sketch keeps about ``3k`` values plus at least 8 per level; at
  ``k = 200`` its serialisation is about 5 KB for 10⁶ values and grows by about 80 bytes
  each time the stream doubles. :func:`max_serialized_bytes` bounds it for any ``n``.

The sketch is a *weighted sample*: every retained value carries a weight (a power of
two), and its CDF is the weighted empirical CDF of those values. :meth:`QuantileSketch.items`
exposes them, so drift statistics can be computed on the sketch exactly as on raw
samples (see :mod:`.drift`).

Profiles store a sketch as base64 of its own serialisation: merging two profiles
deserialises both, merges them with the library's merge and serialises the result, so a
merged profile is exactly what merging the sketches gives.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterator
from typing import Protocol, cast

import datasketches  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DEFAULT_K = 200
"""DataSketches' default: 1.33 % rank error, about 5-6 KB per sketch."""
MIN_K = 8
MAX_K = 65535


class _Kll(Protocol):
    """The part of ``datasketches.kll_doubles_sketch`` used here."""

    @property
    def n(self) -> int: ...

    @property
    def k(self) -> int: ...

    @property
    def num_retained(self) -> int: ...

    def update(self, values: FloatArray) -> None: ...

    def merge(self, other: _Kll) -> None: ...

    def serialize(self) -> bytes: ...

    def is_empty(self) -> bool: ...

    def get_min_value(self) -> float: ...

    def get_max_value(self) -> float: ...

    def get_quantiles(self, ranks: list[float], inclusive: bool = False) -> list[float]: ...

    def normalized_rank_error(self, as_pmf: bool) -> float: ...

    def __iter__(self) -> Iterator[tuple[float, int]]: ...


def _new(k: int) -> _Kll:
    return cast(_Kll, datasketches.kll_doubles_sketch(k))


def rank_error(k: int) -> float:
    """Single-sided normalised rank error of a KLL sketch with parameter ``k`` (99 %)."""
    return float(datasketches.kll_doubles_sketch.get_normalized_rank_error(k, False))


def mass_error(k: int) -> float:
    """Double-sided error of the mass of an interval, ``F(b) - F(a)`` (99 %)."""
    return float(datasketches.kll_doubles_sketch.get_normalized_rank_error(k, True))


def max_serialized_bytes(k: int, n: int) -> int:
    """An upper bound of the serialised size of a sketch of ``n`` values.

    A KLL sketch with ``L`` levels retains at most ``Σ_d max(8, ⌈k (2/3)^d⌉)`` values over
    the depths ``d = 0 … L-1``, and a value at level ``h`` stands for ``2^h`` values, so a
    sketch of ``n`` values has ``L ≤ ⌊log2 n⌋ + 1`` levels. Its serialisation is 36 bytes
    of header, minimum and maximum, 4 bytes per level and 8 per retained value.
    """
    if n <= 1:
        return 36 + 4 + 8
    levels = math.floor(math.log2(n)) + 1
    capacity = sum(max(8, math.ceil(k * (2 / 3) ** depth)) for depth in range(levels))
    return 36 + 4 * levels + 8 * min(n, capacity)


class SketchError(ValueError):
    """A serialised sketch that cannot be read."""


class QuantileSketch:
    """A KLL sketch of float64 values; see the module documentation."""

    __slots__ = ("_sketch",)

    def __init__(self, k: int = DEFAULT_K) -> None:
        if not MIN_K <= k <= MAX_K:
            raise ValueError(f"sketch k must be in [{MIN_K}, {MAX_K}], got {k}")
        self._sketch = _new(k)

    @classmethod
    def _wrap(cls, sketch: _Kll) -> QuantileSketch:
        self = cls.__new__(cls)
        self._sketch = sketch
        return self

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        try:
            sketch = datasketches.kll_doubles_sketch.deserialize(data)
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise SketchError(f"not a KLL doubles sketch: {error}") from None
        return cls._wrap(cast(_Kll, sketch))

    @classmethod
    def from_base64(cls, text: str) -> QuantileSketch:
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise SketchError("not valid base64") from None
        return cls.from_bytes(data)

    @classmethod
    def of(cls, values: FloatArray, k: int = DEFAULT_K) -> QuantileSketch:
        sketch = cls(k)
        sketch.update(values)
        return sketch

    def update(self, values: FloatArray) -> None:
        """Add values; the caller drops NaN and infinities first."""
        if values.size:
            self._sketch.update(np.ascontiguousarray(values, dtype=np.float64))

    def merge(self, other: QuantileSketch) -> None:
        self._sketch.merge(other._sketch)

    def copy(self) -> QuantileSketch:
        return QuantileSketch.from_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        return bytes(self._sketch.serialize())

    def to_base64(self) -> str:
        return base64.b64encode(self.to_bytes()).decode("ascii")

    @property
    def n(self) -> int:
        """Number of values that went in."""
        return int(self._sketch.n)

    @property
    def k(self) -> int:
        return int(self._sketch.k)

    @property
    def retained(self) -> int:
        return int(self._sketch.num_retained)

    @property
    def rank_error(self) -> float:
        """This sketch's single-sided rank error (0 while every value is still kept)."""
        if self.retained == self.n:
            return 0.0
        return float(self._sketch.normalized_rank_error(False))

    @property
    def mass_error(self) -> float:
        """This sketch's error on the mass of an interval (0 while exact)."""
        if self.retained == self.n:
            return 0.0
        return float(self._sketch.normalized_rank_error(True))

    @property
    def min(self) -> float:
        return float(self._sketch.get_min_value())

    @property
    def max(self) -> float:
        return float(self._sketch.get_max_value())

    def quantiles(self, ranks: list[float]) -> list[float]:
        return [float(v) for v in self._sketch.get_quantiles(ranks, True)]

    def items(self) -> tuple[FloatArray, FloatArray]:
        """The retained values, sorted, and their weights: a weighted sample of the stream."""
        pairs = list(self._sketch)
        if not pairs:
            return np.empty(0), np.empty(0)
        data = np.asarray(pairs, dtype=np.float64)
        order = np.argsort(data[:, 0], kind="stable")
        return data[order, 0].copy(), data[order, 1].copy()
