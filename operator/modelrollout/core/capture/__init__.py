"""Capturing live traffic, the pure part: the record format, rotation and retention, sampling.

``modelrollout capture`` is a reverse proxy that runs beside a model container and writes
every request it forwards, with the model's answer, into rotated JSON Lines files that are
replay datasets as they stand. This package decides *what* is written and *when* a file
is closed or deleted; :mod:`modelrollout.services.capture` does the reading, forwarding
and writing. Keeping the decisions here means the format and the policies are tested as
tables, without sockets or files.
"""

from modelrollout.core.capture.options import CaptureOptions
from modelrollout.core.capture.record import Exchange, RecordContext, Unrecordable, encode_record
from modelrollout.core.capture.rotation import CaptureFile, RotationPolicy
from modelrollout.core.capture.sampling import Sampler

__all__ = [
    "CaptureFile",
    "CaptureOptions",
    "Exchange",
    "RecordContext",
    "RotationPolicy",
    "Sampler",
    "Unrecordable",
    "encode_record",
]
