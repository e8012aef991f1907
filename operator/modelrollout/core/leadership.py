"""Leader election on a coordination.k8s.io Lease: which replica acts.

Several replicas of the operator run for availability; exactly one of them reconciles. They
share one Lease (as kube-controller-manager and controller-runtime do). The holder renews it
every few seconds; the others watch it and take it over once it has not been renewed for the
lease duration. The decision is a pure function of the Lease as last read:

* no Lease yet: create it, naming ourselves;
* we hold it: renew it;
* someone else holds it and renewed it within the lease duration: follow;
* someone else holds it but it has expired (or names nobody): take it over.

A holder that cannot renew stops acting after the *renew deadline*, which is shorter than the
lease duration, so an old leader has stopped before a new one can start: there is no moment
with two actors, only a short one with none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["Create", "Renew", "TakeOver", "Follow"]


@dataclass(frozen=True)
class LeaseView:
    """What matters of a Lease's spec."""

    holder: str | None
    renewed_at: datetime | None
    duration_seconds: int
    transitions: int = 0


@dataclass(frozen=True)
class Timing:
    """Lease duration > renew deadline > retry period, as in client-go."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                "leader election needs lease duration > renew deadline > retry period > 0, not "
                f"{self.lease_duration} / {self.renew_deadline} / {self.retry_period}"
            )


def decide(lease: LeaseView | None, me: str, now: datetime) -> Action:
    """What `me` does with the Lease as read at `now`."""
    if lease is None:
        return "Create"
    if lease.holder == me:
        return "Renew"
    if lease.holder is None or lease.renewed_at is None:
        return "TakeOver"
    if now > lease.renewed_at + timedelta(seconds=lease.duration_seconds):
        return "TakeOver"
    return "Follow"


def still_leading(last_renewal: float | None, now: float, timing: Timing) -> bool:
    """Whether a holder whose last successful renewal was at `last_renewal` (monotonic
    seconds) may still act at `now`."""
    return last_renewal is not None and now - last_renewal < timing.renew_deadline
