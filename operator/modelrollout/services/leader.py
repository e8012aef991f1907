"""Hold or follow the operator's Lease (the decisions are in :mod:`modelrollout.core.leadership`).

The elector reads the Lease every retry period and creates, renews or takes it over with an
update guarded by the resourceVersion it read, so two replicas that try at once cannot both
win: one of the writes is refused with a conflict. :meth:`LeaderElector.is_leader` is what
the schedulers ask before each reconcile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modelrollout.core import errors, leadership
from modelrollout.core.clock import parse_rfc3339
from modelrollout.services import metrics
from modelrollout.services.kube import Kube

log = logging.getLogger("modelrollout.leader")

DEFAULT_TIMING = leadership.Timing()


def _micro_time(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_view(lease: dict[str, Any]) -> leadership.LeaseView:
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime")
    return leadership.LeaseView(
        holder=spec.get("holderIdentity") or None,
        renewed_at=parse_rfc3339(renewed) if renewed else None,
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


class LeaderElector:
    """One replica's part in the election for the Lease `namespace/name`."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        timing: leadership.Timing = DEFAULT_TIMING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self.clock = clock
        self.last_renewal: float | None = None
        self.leading = False

    def is_leader(self) -> bool:
        return leadership.still_leading(self.last_renewal, self.clock(), self.timing)

    def try_once(self, now: datetime | None = None) -> leadership.Action:
        """Read the Lease and act on it once; returns what was decided."""
        now = now or datetime.now(UTC)
        started = self.clock()
        raw = self.kube.get_lease(self.namespace, self.name)
        action = leadership.decide(lease_view(raw) if raw else None, self.identity, now)
        if action == "Follow":
            return action
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.timing.lease_duration),
            "renewTime": _micro_time(now),
        }
        if action == "Create":
            spec["acquireTime"] = spec["renewTime"]
            body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
            self.kube.create_lease(self.namespace, body)
        else:
            assert raw is not None
            if action == "TakeOver":
                spec["acquireTime"] = spec["renewTime"]
                spec["leaseTransitions"] = lease_view(raw).transitions + 1
            body = {
                "metadata": {
                    "name": self.name,
                    "resourceVersion": raw["metadata"]["resourceVersion"],
                },
                "spec": spec,
            }
            # Refused (Conflict) if someone else wrote the Lease since we read it.
            self.kube.patch_lease(self.namespace, self.name, body)
        self.last_renewal = started
        return action

    async def run(self) -> None:
        """Take part in the election until cancelled."""
        while True:
            try:
                action = await asyncio.to_thread(self.try_once)
            except errors.Conflict:
                action = "Follow"  # another replica wrote it first
            except errors.ModelRolloutError as err:
                action = "Follow"
                log.warning("lease %s/%s: %s", self.namespace, self.name, err)
            except Exception:  # a network error: keep trying, as a follower meanwhile
                action = "Follow"
                log.exception("lease %s/%s", self.namespace, self.name)
            leading = self.is_leader()
            if leading != self.leading:
                log.warning(
                    "%s %s the lease %s/%s (%s)",
                    self.identity,
                    "acquired" if leading else "lost",
                    self.namespace,
                    self.name,
                    action,
                )
                self.leading = leading
            metrics.LEADER.set(1.0 if leading else 0.0)
            await asyncio.sleep(self.timing.retry_period)
