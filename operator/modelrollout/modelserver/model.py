"""A small, real model: logistic regression over a fixed number of features.

The model server exists so that replay tests, benchmarks and demos exercise a genuine
prediction path (JSON decoding, a numpy computation, JSON encoding) rather than an echo.
Two built-in versions differ slightly, like a retrained model would, so that a replay
comparing ``v2`` against ``v1`` shows small but non-zero score differences and an
agreement rate a little below 1. A third, ``v3``, is a retraining gone wrong: its weights
have the opposite signs, so it answers almost every request differently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

BUILTIN_WEIGHTS: dict[str, tuple[list[float], float]] = {
    "v1": ([0.8, -0.5, 1.2, 0.3], -0.2),
    "v2": ([0.85, -0.45, 1.3, 0.25], -0.25),
    "v3": ([-0.8, 0.5, -1.2, -0.3], 0.2),
}
"""Weights and bias per built-in version; other versions use v1's."""


@dataclass(frozen=True)
class LogisticModel:
    weights: npt.NDArray[np.float64]
    bias: float
    version: str

    @property
    def features(self) -> int:
        return int(self.weights.shape[0])

    @classmethod
    def builtin(cls, version: str = "v1") -> LogisticModel:
        weights, bias = BUILTIN_WEIGHTS.get(version, BUILTIN_WEIGHTS["v1"])
        return cls(np.asarray(weights, dtype=np.float64), bias, version)

    @classmethod
    def from_file(cls, path: Path, version: str | None = None) -> LogisticModel:
        """``{"weights": [...], "bias": 0.1, "version": "v3"}`` (bias and version optional)."""
        document = json.loads(path.read_text())
        if not isinstance(document, dict) or not isinstance(document.get("weights"), list):
            raise ValueError(f"{path}: expected an object with a weights list")
        weights = np.asarray(document["weights"], dtype=np.float64)
        if weights.ndim != 1 or weights.size == 0:
            raise ValueError(f"{path}: weights must be a non-empty list of numbers")
        return cls(
            weights,
            float(document.get("bias", 0.0)),
            version or str(document.get("version", "custom")),
        )

    def predict(self, instances: npt.NDArray[np.float64]) -> list[float]:
        """Probability of the positive class for each row of ``instances``."""
        logits = instances @ self.weights + self.bias
        return [float(v) for v in 1.0 / (1.0 + np.exp(-logits))]
