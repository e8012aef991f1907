"""Replay tests, the pure part: datasets, schedules, measurements, results and verdicts.

Nothing here performs I/O. The service layer (``modelrollout.services.replay``) reads
datasets and sends requests; everything it measures is recorded into the accumulators
defined here, and everything it reports is derived from them. The public surface for
the operator is re-exported below.
"""

from modelrollout.core.replay.criteria import CheckResult, SuccessCriteria, Verdict
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.rates import RatePattern, RateSpec, RateStep, parse_pattern
from modelrollout.core.replay.result import (
    RESULT_LINE_PREFIX,
    SCHEMA_VERSION,
    ReplayResult,
    ReplaySummary,
    evaluate,
    format_result_line,
    merge_results,
    parse_result_line,
)
from modelrollout.core.replay.run import RUN_ENV, ReplayRun, RunSettings
from modelrollout.core.replay.selection import EventSelection

__all__ = [
    "RESULT_LINE_PREFIX",
    "RUN_ENV",
    "SCHEMA_VERSION",
    "CheckResult",
    "EventSelection",
    "RatePattern",
    "RateSpec",
    "RateStep",
    "ReplayOptions",
    "ReplayResult",
    "ReplayRun",
    "ReplaySummary",
    "RunSettings",
    "SuccessCriteria",
    "Verdict",
    "evaluate",
    "format_result_line",
    "merge_results",
    "parse_pattern",
    "parse_result_line",
]
