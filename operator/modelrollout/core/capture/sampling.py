"""Which requests are captured: a fraction, decided by the inference id.

The decision hashes the inference id with a seed instead of drawing a random number, so
it is a property of the request, not of the proxy that sees it. Two proxies with the
same fraction and seed, the stable track's and the candidate's for instance, keep the
same requests when the same inference ids reach both (a mirrored request, a retry that
carries its id), and the kept sets of a smaller fraction are contained in those of a
larger one. For ids the proxy generates, the decision is as good as random.
"""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


class Sampler:
    """``keep(id)`` is true for about ``fraction`` of all ids; 1 keeps all, 0 none."""

    def __init__(self, fraction: float = 1.0, seed: int = 0) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"sample fraction {fraction!r} must be between 0 and 1")
        if not 0 <= seed < 1 << 64:
            raise ValueError(f"sample seed {seed!r} must be between 0 and 2^64 - 1")
        self.fraction = fraction
        self._key = seed.to_bytes(16, "big")

    def position(self, inference_id: str) -> float:
        """Where an id falls in [0, 1): it is kept when this is below the fraction."""
        digest = hashlib.blake2b(inference_id.encode(), digest_size=8, key=self._key).digest()
        return int.from_bytes(digest, "big") / _SCALE

    def keep(self, inference_id: str) -> bool:
        if self.fraction >= 1.0:
            return True
        if self.fraction <= 0.0:
            return False
        return self.position(inference_id) < self.fraction
