"""Whether an owned object still carries what the operator would apply to it.

Server-side apply is idempotent, so the operator used to apply every owned object on every
reconcile: one write per object, even when nothing had changed. The I/O layer now skips an
apply when the object, as last seen by a watch, already carries the manifest. Two checks
decide that, and both are needed:

* **the manifest hash.** Each applied manifest carries its own hash in the annotation
  :data:`ANNOTATION`. An object whose annotation differs was last applied from another
  manifest. This is what notices a field the operator *stopped* setting: the next apply
  removes it from the object, and no comparison of the fields set now could tell.
* **the fields set.** :func:`carries` compares every field of the manifest with the live
  object. This is what notices another writer: ``kubectl scale``, an edit of the image, a
  label removed, a key added to a Service's selector. The live object has more than the
  manifest (defaults, status, fields of other managers), so the comparison is one-sided,
  with two exceptions that keep it on the safe side:

  - lists must have the same length (an atomic list with an extra item would be replaced
    by an apply; an extra item another manager owns in a keyed list is left alone by an
    apply, so there the check only costs an unneeded apply);
  - the maps an apply replaces whole (:data:`ATOMIC_MAPS`: a Service's selector, a
    Deployment's, a pod's node selector) must have exactly the same keys: an extra key
    changes what they select. Other maps may have more keys (labels and annotations that
    other tools add, defaults): an apply leaves the fields of other managers alone.

  A value the apiserver writes differently from the manifest (a quantity such as ``0.5``
  stored as ``500m``) never matches, so such an object is applied every time, as before:
  the comparison can cost an unneeded apply, never a missed one.

An empty value in the manifest (``[]``, ``{}``, ``""``, ``false``, ``0``, null) matches an
absent field, because the apiserver omits empty fields when it stores an object.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

ANNOTATION = "modelrollout.io/applied-hash"
ATOMIC_MAPS = frozenset({"selector", "matchLabels", "nodeSelector"})
"""Maps an apply replaces as a whole (``+mapType=atomic`` and ``+structType=atomic`` in the
Kubernetes API), by the name of their field."""


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """A hash of the manifest, leaving out :data:`ANNOTATION` itself."""
    body = copy.deepcopy(dict(manifest))
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations")
    if annotations and ANNOTATION in annotations:
        del annotations[ANNOTATION]
        if not annotations:
            del meta["annotations"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def with_hash(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the manifest with its hash in :data:`ANNOTATION`."""
    body = copy.deepcopy(dict(manifest))
    meta = body.setdefault("metadata", {})
    meta.setdefault("annotations", {})[ANNOTATION] = manifest_hash(manifest)
    return body


def carries(live: Any, desired: Any) -> bool:
    """Whether ``live`` has every field of ``desired`` with the same value (see above)."""
    return _carries(live, desired, key="", in_metadata=False)


def _empty(value: Any) -> bool:
    return value is None or value is False or value in ("", 0, [], {})


def _carries(live: Any, desired: Any, *, key: str, in_metadata: bool) -> bool:
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        if key in ATOMIC_MAPS and not in_metadata and set(live) != set(desired):
            return False
        for name, value in desired.items():
            if name not in live:
                if _empty(value):
                    continue
                return False
            inner = in_metadata or name == "metadata"
            if not _carries(live[name], value, key=name, in_metadata=inner):
                return False
        return True
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(
                _carries(a, b, key=key, in_metadata=in_metadata)
                for a, b in zip(live, desired, strict=True)
            )
        )
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    return bool(live == desired)
