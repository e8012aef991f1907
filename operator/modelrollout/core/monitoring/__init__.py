"""Monitoring, the pure part: baseline profiles, drift statistics and verdicts.

A *profile* (:mod:`.profile`) summarises a dataset feature by feature: exact moments and
a KLL quantile sketch (:mod:`.sketches`) for numbers, capped frequencies for categories.
It is small enough for a ConfigMap and mergeable, so a large dataset is profiled in
shards. :mod:`.drift` computes the drift statistics between a baseline profile and a
window (another profile, or raw samples), and :mod:`.verdict` turns them into a verdict
per feature and the ``drift.json`` report. Nothing here performs I/O; reading files is
:mod:`modelrollout.services.monitoring`.
"""

from modelrollout.core.monitoring.builder import ProfileBuilder, WindowSample
from modelrollout.core.monitoring.profile import (
    LABEL,
    PREDICTION,
    SCHEMA_VERSION,
    Profile,
    merge_profiles,
)
from modelrollout.core.monitoring.verdict import (
    Comparison,
    DriftReport,
    DriftThresholds,
    compare,
)

__all__ = [
    "LABEL",
    "PREDICTION",
    "SCHEMA_VERSION",
    "Comparison",
    "DriftReport",
    "DriftThresholds",
    "Profile",
    "ProfileBuilder",
    "WindowSample",
    "compare",
    "merge_profiles",
]
