"""The replay executor seam: where the shards of a ReplayTest run.

One small Protocol, one module per implementation, and a factory that rejects unknown
kinds. ``job`` runs the shards as the pods of an Indexed Job (the default, and the only
choice in a real cluster); ``local`` runs the very same command as local processes, for
development clusters that have no nodes. Both hand back :class:`ShardOutcome` lists, and
the merge and the verdict that follow are the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.replayjob import ShardOutcome


@dataclass(frozen=True)
class ReplayRun:
    """One execution of a ReplayTest generation."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: ReplayTestSpec
    body: dict[str, object]
    args: list[str]


@dataclass(frozen=True)
class Observation:
    shards: list[ShardOutcome]
    failure: tuple[str, str] | None = None
    job_name: str | None = None


class ReplayExecutor(Protocol):
    name: str

    def events(self, namespace: str, name: str, spec: ReplayTestSpec) -> str:
        """Where the shards read the events (a path or URL), preparing them if needed."""

    def endpoint(self, namespace: str, service: str, port: int, path: str, scheme: str) -> str:
        """The URL at which the shards reach a Service."""

    def start(self, run: ReplayRun) -> None:
        """Start the shards; calling it again for a started run changes nothing."""

    def observe(self, run: ReplayRun) -> Observation:
        """The shards' state now."""

    def stop(self, run: ReplayRun) -> None:
        """Stop and forget every run of this ReplayTest other than ``run``."""

    def close(self) -> None:
        """The operator is stopping: release what the executor holds."""


KINDS = ("job", "local")


class UnknownExecutor(ValueError):
    pass
