"""Capturing live traffic, the I/O part: the proxy, the writer thread and the files.

The record format and the rotation, retention and sampling decisions live in
:mod:`modelrollout.core.capture`; this package listens and forwards (:mod:`.lean` for the
common exchange, :mod:`.proxy` with aiohttp for the rest), hands records to a thread that
writes them (:mod:`.writer`) into rotated files (:mod:`.files`), and counts everything
(:mod:`.metrics`). :func:`running_capture` runs it all.
"""

from modelrollout.services.capture.files import CaptureFiles, DirectoryError
from modelrollout.services.capture.metrics import CaptureMetrics
from modelrollout.services.capture.server import (
    ListenError,
    ProxySettings,
    RunningCapture,
    running_capture,
)
from modelrollout.services.capture.writer import CaptureWriter

__all__ = [
    "CaptureFiles",
    "CaptureMetrics",
    "CaptureWriter",
    "DirectoryError",
    "ListenError",
    "ProxySettings",
    "RunningCapture",
    "running_capture",
]
