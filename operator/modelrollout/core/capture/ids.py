"""Inference ids: the key that joins a captured request with the label that comes later.

A client that already names its requests sends the name in a header (``X-Inference-Id``
by default) and the proxy keeps it; otherwise the proxy makes one up. Either way the id
goes to the model in the same header and back to the client in the response, so the
application can store it next to whatever outcome it learns later, and the labels can be
joined to the capture files on ``inferenceId``.

An id from a client is kept only when it is a plausible key: 1 to 128 visible ASCII
characters. Anything else (empty, very long, spaces, control characters) is replaced by a
generated id, and the response tells the client which one was used.
"""

from __future__ import annotations

import re

DEFAULT_HEADER = "X-Inference-Id"
MAX_LENGTH = 128
HEADER_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$"
"""An HTTP header name (an RFC 9110 token)."""

_ACCEPTABLE = re.compile(rf"[\x21-\x7e]{{1,{MAX_LENGTH}}}")


def acceptable(value: str) -> bool:
    """Whether a client's id is kept (1 to 128 visible ASCII characters)."""
    return _ACCEPTABLE.fullmatch(value) is not None


def from_random(random16: bytes) -> str:
    """A version-4 UUID in its usual text form, from 16 random bytes."""
    if len(random16) != 16:
        raise ValueError("an inference id needs 16 random bytes")
    raw = bytearray(random16)
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
