"""Deterministic names within Kubernetes' length limits.

Names derived from user names can overflow the 63-character limit of labels and Service
names. A too-long name is cut and given a short hash of the whole, so that two long names
never collide and the same input always yields the same name (which is what makes
"AlreadyExists means success" safe after a restart).
"""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63


def short_hash(*parts: str, length: int = 8) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:length]


def bounded(name: str, limit: int = MAX_LABEL) -> str:
    """``name`` if it fits, else a prefix of it plus a hash of the whole."""
    if len(name) <= limit:
        return name
    suffix = short_hash(name)
    return f"{name[: limit - len(suffix) - 1].rstrip('-.')}-{suffix}"


def stable_name(md: str) -> str:
    return bounded(f"{md}-stable")


def candidate_name(md: str) -> str:
    return bounded(f"{md}-candidate")


def live_service_name(md: str) -> str:
    return bounded(md)


def replay_test_name(md: str, version: str, template_hash: str, attempt: int = 1) -> str:
    """One ReplayTest per candidate and attempt: the version plus a hash of what is being
    tested, and the attempt number from the second attempt on."""
    safe_version = "".join(c if c.isalnum() or c == "-" else "-" for c in version.lower())
    suffix = f"-{attempt}" if attempt > 1 else ""
    return bounded(f"{md}-{safe_version}-{template_hash[:6]}".strip("-") + suffix)


def job_name(replay_test: str, generation: int) -> str:
    # Job names feed the pod label job-name (63 max); Indexed Jobs append -<index>-<rand>
    # to pod names, so keep room.
    suffix = f"-g{generation}"
    return bounded(replay_test, limit=52 - len(suffix)) + suffix


LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def is_label_value(value: str) -> bool:
    """Whether ``value`` can be a label value (at most 63 characters of the allowed set)."""
    return len(value) <= MAX_LABEL and LABEL_VALUE.match(value) is not None
