"""Whether a record may wait for the writer: the bound that keeps requests from waiting.

The proxy hands each record to a writer thread through a queue bounded in records and in
bytes. A record that does not fit is dropped on the spot and counted, by reason: the
request it describes has already been answered and is never held back because the disk
or the writer is slow. ``too_large`` is a record that could never fit, however empty the
queue; ``queue_full`` one that would fit once the writer catches up.
"""

from __future__ import annotations

from dataclasses import dataclass

DROP_QUEUE_FULL = "queue_full"
DROP_TOO_LARGE = "too_large"
DROP_WRITE_ERROR = "write_error"
DROP_SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class BacklogLimits:
    max_records: int
    max_bytes: int


def refusal(limits: BacklogLimits, *, records: int, queued_bytes: int, size: int) -> str | None:
    """Why a record of ``size`` bytes cannot join the queue, or ``None`` if it can."""
    if size > limits.max_bytes:
        return DROP_TOO_LARGE
    if records >= limits.max_records or queued_bytes + size > limits.max_bytes:
        return DROP_QUEUE_FULL
    return None
