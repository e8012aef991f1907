"""One replay run, as a single serialized model.

Everything a run needs travels in one :class:`ReplayRun`: the events, the endpoints, the
rate, the selection, the request options, the success criteria and the shard. The
``modelrollout replay`` command builds it from its flags; the operator builds it from a
ReplayTest and hands it to each shard as JSON in the ``MODELROLLOUT_REPLAY_RUN``
environment variable (the Job's pods and the local executor's processes alike), so there
is no mapping of settings to command-line flags and back. A run copied from a Job
(``kubectl get job ... -o jsonpath='{..env[0].value}'``) runs the same way on a laptop
with ``modelrollout replay --run run.json``.

The result echoes the run's :class:`RunSettings` (``settings`` in ``result.json``).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from modelrollout.core.api.base import ApiModel
from modelrollout.core.replay.criteria import SuccessCriteria
from modelrollout.core.replay.options import ReplayOptions
from modelrollout.core.replay.rates import RateSpec
from modelrollout.core.replay.selection import EventSelection

RUN_ENV = "MODELROLLOUT_REPLAY_RUN"
"""The environment variable that carries a shard's run as JSON."""

ClientName = Literal["auto", "lean", "aiohttp", "httpx"]
"""The HTTP client that sends the requests: ``auto`` is the lean HTTP/1.1 client when every
endpoint is plain ``http://``, aiohttp otherwise."""


class RunSettings(ApiModel):
    """What was replayed and how: the part of a run that its result echoes."""

    events: str = Field(min_length=1, description="The dataset path or URL.")
    rate: RateSpec = Field(
        default_factory=lambda: RateSpec(speed=1.0), description="Rate and run length."
    )
    selection: EventSelection = Field(
        default_factory=EventSelection, description="Event selection."
    )
    options: ReplayOptions = Field(default_factory=ReplayOptions, description="Request settings.")


class ReplayRun(RunSettings):
    """Everything one replay run (or one shard of it) needs."""

    target: str = Field(pattern=r"^https?://", description="The endpoint under test.")
    baseline: str | None = Field(
        default=None, pattern=r"^https?://", description="The endpoint to compare with."
    )
    criteria: SuccessCriteria | None = Field(
        default=None, description="Thresholds the result must meet."
    )
    shard_index: int | None = Field(
        default=None,
        ge=0,
        description="This shard; unset, it is $JOB_COMPLETION_INDEX (an Indexed Job's pod) or 0.",
    )
    shard_count: int = Field(default=1, ge=1, le=1024, description="Number of shards.")
    client: ClientName = Field(
        default="auto",
        description="The HTTP client: auto (lean for http://, aiohttp for https://), "
        "lean, aiohttp or httpx.",
    )

    @model_validator(mode="after")
    def _shard_in_range(self) -> Self:
        if self.shard_index is not None and self.shard_index >= self.shard_count:
            raise ValueError(
                f"shardIndex {self.shard_index} is not in [0, {self.shard_count}) (shardCount)"
            )
        return self

    @property
    def index(self) -> int:
        """The shard index, 0 when unset."""
        return self.shard_index or 0

    def settings(self) -> RunSettings:
        return RunSettings(
            events=self.events, rate=self.rate, selection=self.selection, options=self.options
        )

    def to_json(self) -> str:
        """Compact JSON without defaults: what a shard receives."""
        return self.model_dump_json(by_alias=True, exclude_defaults=True)
