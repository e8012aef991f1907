"""Writing a steering decision: read, decide, write with the resourceVersion, retry.

The decision (:mod:`modelrollout.core.steering`) is made on the status as last read, and
the write carries that read's resourceVersion, so a command never overwrites a status the
operator wrote in between: on a conflict the object is read again and the decision made
again on what is there now. The command line and the dashboard both steer through
:func:`steer`, so what they write cannot differ.
"""

from __future__ import annotations

from modelrollout.core import errors
from modelrollout.core.api import modeldeployment
from modelrollout.core.steering import Decide, Steer, status_of
from modelrollout.services.kube import Kube

ATTEMPTS = 5


class Refused(Exception):
    """Nothing was written; the message says why."""


def steer(kube: Kube, namespace: str, name: str, decide: Decide) -> Steer:
    """Write what ``decide`` makes of the ModelDeployment's status; the written
    :class:`Steer`, or :class:`Refused` with the reason."""
    for _ in range(ATTEMPTS):
        raw = kube.get_custom(modeldeployment.PLURAL, namespace, name)
        if raw is None:
            raise Refused(f"ModelDeployment {namespace}/{name} not found")
        decision = decide(status_of(raw))
        if isinstance(decision, str):
            raise Refused(decision)
        try:
            kube.patch_status(
                modeldeployment.PLURAL,
                namespace,
                name,
                decision.patch,
                resource_version=raw["metadata"]["resourceVersion"],
            )
        except errors.Conflict:
            continue
        return decision
    raise Refused("the object kept changing; try again")
