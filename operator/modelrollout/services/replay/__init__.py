"""Replay tests, the I/O part: reading datasets and sending requests on schedule.

The pure planning and measuring lives in :mod:`modelrollout.core.replay`; this package
opens files and URLs (:mod:`.dataset`), talks HTTP (:mod:`.transport`) and runs the
open-loop sender (:mod:`.runner`).
"""

from modelrollout.services.replay.dataset import DatasetError, DatasetFetchError
from modelrollout.services.replay.runner import Progress, run_replay

__all__ = ["DatasetError", "DatasetFetchError", "Progress", "run_replay"]
