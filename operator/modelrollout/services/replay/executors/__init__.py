"""The replay executor seam: where the shards of a ReplayTest run.

One small Protocol, one module per implementation, and a factory that rejects unknown
kinds. ``job`` runs the shards as the pods of an Indexed Job (the default, and the only
choice in a real cluster); ``local`` runs the very same run as local processes, for quick
work on a laptop. Both report the shards as :class:`~modelrollout.core.replay.decision.Shards`,
and the merge and the verdict that follow are the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.replay.decision import Shards
from modelrollout.core.replay.run import ReplayRun


@dataclass(frozen=True)
class Execution:
    """One generation of a ReplayTest, to be run by an executor."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: ReplayTestSpec
    body: dict[str, object]
    run: ReplayRun


class ReplayExecutor(Protocol):
    name: str

    def events(self, namespace: str, name: str, spec: ReplayTestSpec) -> str:
        """Where the shards read the events (a path or URL), preparing them if needed."""

    def endpoint(self, namespace: str, service: str, port: int, path: str, scheme: str) -> str:
        """The URL at which the shards reach a Service."""

    def start(self, execution: Execution) -> None:
        """Start the shards; calling it again for a started execution changes nothing."""

    def observe(self, execution: Execution) -> Shards:
        """The shards' state now."""

    def stop(self, execution: Execution) -> None:
        """Stop and forget every execution of this ReplayTest other than this one."""

    def close(self) -> None:
        """The operator is stopping: release what the executor holds."""


KINDS = ("job", "local")


class UnknownExecutor(ValueError):
    pass
