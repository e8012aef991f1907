"""Monitoring, the I/O part: reading datasets and profiles from files.

The profiles, statistics and verdicts are pure and live in
:mod:`modelrollout.core.monitoring`; this package opens files and walks their lines
(:mod:`.datasets`).
"""

from modelrollout.services.monitoring.datasets import (
    DataError,
    ReadOptions,
    load_profile,
    profile_dataset,
    read_window,
)

__all__ = ["DataError", "ReadOptions", "load_profile", "profile_dataset", "read_window"]
