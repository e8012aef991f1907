"""What a capture proxy records, and within which limits.

Kept as an API model, like the replay's options, so that the command's flags and a
resource that will one day ask for a capture sidecar mean the same thing. Sizes are
text with an optional unit (``64Mi``, ``1Gi``, ``500k``, plain bytes) and durations are
the usual ``30s``, ``1h``; the properties give them as numbers. Where the proxy listens
and forwards to is not here: that belongs to the pod, not to the recording policy.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from modelrollout.core.api.base import DURATION_PATTERN, ApiModel, parse_duration
from modelrollout.core.capture import ids
from modelrollout.core.capture.rotation import RotationPolicy

SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?([kKMGT]i?)?B?$"
"""Sizes: ``1048576``, ``500k``, ``64Mi``, ``1Gi``, ``2GB`` (k, M, G, T: powers of 1000;
Ki, Mi, Gi, Ti: powers of 1024; a trailing B is allowed)."""

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kKMGT]i?)?B?")
_UNITS = {
    None: 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "ki": 1024,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def parse_size(text: str) -> int:
    """``64Mi`` → 67108864. Raises :class:`ValueError` naming the text."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"size {text!r} is not valid: use forms like 1048576, 500k, 64Mi, 1Gi")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit])


def parse_listen(text: str) -> tuple[str | None, int]:
    """``:8081`` (every interface), ``127.0.0.1:8081``, ``[::1]:8081`` or ``8081``.

    Returns ``(host, port)``, host ``None`` for every interface. Port 0 picks a free one.
    """
    value = text.strip()
    host: str | None
    if value.startswith("["):
        address, bracket, rest = value[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"address {text!r} is not valid: use [::1]:8081")
        host, port_text = address, rest[1:]
    elif ":" in value:
        host, _, port_text = value.rpartition(":")
        if ":" in host:
            raise ValueError(f"address {text!r} is not valid: write IPv6 hosts as [::1]:8081")
    else:
        host, port_text = "", value
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"address {text!r} is not valid: expected HOST:PORT or :PORT")
    return (host or None), int(port_text)


class CaptureOptions(ApiModel):
    """How requests are recorded: sampling, files, limits."""

    sample: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description=(
            "Fraction of requests recorded (0 to 1), decided by hashing the inference id "
            "with the seed; 0 forwards everything and records nothing."
        ),
    )
    seed: int = Field(default=0, ge=0, le=2**64 - 1, description="Seed of the sampling decision.")
    max_file_bytes: str = Field(
        default="64Mi",
        pattern=SIZE_PATTERN,
        description="Close a file once it holds this much on disk (0: no size limit).",
    )
    rotate_interval: str = Field(
        default="1h",
        pattern=DURATION_PATTERN,
        description="Close a file once it has been open this long (0: no age limit).",
    )
    max_total_bytes: str = Field(
        default="1Gi",
        pattern=SIZE_PATTERN,
        description=(
            "Most disk the capture files of this proxy may use; the oldest closed files are "
            "deleted to stay within it (and counted)."
        ),
    )
    gzip: bool = Field(default=False, description="Write gzip-compressed files (.jsonl.gz).")
    queue_records: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description=(
            "Most records waiting for the writer. A record that finds the queue full is "
            "dropped and counted; the request itself is never delayed."
        ),
    )
    queue_bytes: str = Field(
        default="64Mi",
        pattern=SIZE_PATTERN,
        description="Most bytes of request and response bodies waiting for the writer.",
    )
    flush_interval: str = Field(
        default="1s",
        pattern=DURATION_PATTERN,
        description=(
            "How often compressed data is flushed to the file, so that it can be read "
            "before the file is closed (plain files are written as records come)."
        ),
    )
    id_header: str = Field(
        default=ids.DEFAULT_HEADER,
        pattern=ids.HEADER_PATTERN,
        description="Request and response header carrying the inference id.",
    )
    record_headers: list[str] = Field(
        default_factory=list,
        description=(
            "Request headers recorded with each request (and sent again by a replay). None "
            "by default: headers often carry credentials."
        ),
    )
    max_body_bytes: str = Field(
        default="16Mi",
        pattern=SIZE_PATTERN,
        description="Largest request body accepted (a larger one is answered 413).",
    )

    @field_validator("record_headers")
    @classmethod
    def _header_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if re.fullmatch(ids.HEADER_PATTERN, name) is None:
                raise ValueError(f"{name!r} is not a header name")
        return value

    @field_validator("queue_bytes", "max_total_bytes", "max_body_bytes")
    @classmethod
    def _positive_size(cls, value: str) -> str:
        if parse_size(value) <= 0:
            raise ValueError("must be positive")
        return value

    @field_validator("flush_interval")
    @classmethod
    def _positive_duration(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("must be a positive duration")
        return value

    @model_validator(mode="after")
    def _limits_fit(self) -> CaptureOptions:
        if self.file_bytes_limit is None and self.file_age_limit is None:
            raise ValueError("max_file_bytes and rotate_interval cannot both be 0")
        if self.file_bytes_limit is not None and self.file_bytes_limit > self.total_bytes_limit:
            raise ValueError("max_file_bytes must not exceed max_total_bytes")
        return self

    @property
    def file_bytes_limit(self) -> int | None:
        return parse_size(self.max_file_bytes) or None

    @property
    def file_age_limit(self) -> float | None:
        return parse_duration(self.rotate_interval) or None

    @property
    def total_bytes_limit(self) -> int:
        return parse_size(self.max_total_bytes)

    @property
    def queue_bytes_limit(self) -> int:
        return parse_size(self.queue_bytes)

    @property
    def flush_seconds(self) -> float:
        return parse_duration(self.flush_interval)

    @property
    def body_bytes_limit(self) -> int:
        return parse_size(self.max_body_bytes)

    @property
    def rotation(self) -> RotationPolicy:
        return RotationPolicy(self.file_bytes_limit, self.file_age_limit)
