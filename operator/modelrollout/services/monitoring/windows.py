"""Live windows: what the capture sidecars of one track saw recently, merged.

Each capture sidecar keeps the recent window of its pod as mergeable state and serves it at
``GET /monitoring/window?seconds=N`` on its own port: the profile of the requests'
features and the predictions, and the quality counts of the answers whose labels have
arrived. The operator asks every ready pod of a track and merges the answers, exactly as
shard results are merged: the result is what one sidecar in front of all the pods would
have seen.

A pod that does not answer makes the whole window an error (a measurement of phase
Error, counted against the trigger's consecutive-error limit), never a smaller window that
looks complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import Field, ValidationError

from modelrollout.core import workloads
from modelrollout.core.api.base import ApiModel
from modelrollout.core.monitoring.profile import Profile, ProfileMergeError, merge_profiles
from modelrollout.core.replay.quality import QualityAccumulator, QualityState
from modelrollout.services.kube import Kube

WINDOW_PATH = "/monitoring/window"
TIMEOUT = 5.0


class WindowAnswer(ApiModel):
    """What one sidecar answers for its window."""

    seconds: float = Field(ge=0, description="How far back the window reaches.")
    events: int = Field(ge=0, description="Requests answered in the window.")
    profile: Profile | None = Field(
        default=None, description="Features and predictions; null when nothing was seen."
    )
    quality: QualityState = Field(
        default_factory=QualityState, description="Quality counts of the labelled answers."
    )


@dataclass(frozen=True)
class Window:
    """A track's window, merged over its pods."""

    pods: int
    events: int
    profile: Profile | None
    quality: QualityState


class WindowError(Exception):
    """A window could not be read; the message names the pod."""


class WindowSource(Protocol):
    """Where the live windows come from."""

    def window(self, namespace: str, md_name: str, track: str, seconds: float) -> Window:
        """The merged window of a track; raises :class:`WindowError`."""
        ...


class CaptureSidecars:
    """Windows read from the capture sidecars of a track's ready pods."""

    def __init__(self, kube: Kube, *, port: int) -> None:
        self.kube = kube
        self.port = port

    def window(self, namespace: str, md_name: str, track: str, seconds: float) -> Window:
        selector = f"{workloads.LABEL_NAME}={md_name},{workloads.LABEL_TRACK}={track}"
        pods = [p for p in self.kube.list_pods(namespace, selector) if ready(p)]
        answers = []
        with httpx.Client(timeout=TIMEOUT) as client:
            for pod in pods:
                answers.append(self._ask(client, pod, seconds))
        return merge_windows(answers)

    def _ask(self, client: httpx.Client, pod: dict[str, Any], seconds: float) -> WindowAnswer:
        name = pod["metadata"]["name"]
        ip = pod["status"]["podIP"]
        url = f"http://{ip}:{self.port}{WINDOW_PATH}"
        try:
            response = client.get(url, params={"seconds": f"{seconds:g}"})
            response.raise_for_status()
            return WindowAnswer.model_validate_json(response.content)
        except httpx.HTTPError as exc:
            raise WindowError(f"pod {name}: the capture sidecar did not answer: {exc}") from exc
        except ValidationError as exc:
            raise WindowError(f"pod {name}: not a capture window: {exc.errors()[0]}") from exc


def ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def merge_windows(answers: list[WindowAnswer]) -> Window:
    """The windows of several pods as one; raises :class:`WindowError` when their profiles
    cannot be merged (pods of different versions profile differently)."""
    profiles = [a.profile for a in answers if a.profile is not None]
    quality = QualityAccumulator()
    for answer in answers:
        quality.merge(QualityAccumulator.from_state(answer.quality))
    try:
        profile = merge_profiles(profiles) if profiles else None
    except ProfileMergeError as exc:
        raise WindowError(f"the pods' windows do not merge: {exc}") from exc
    return Window(
        pods=len(answers),
        events=sum(a.events for a in answers),
        profile=profile,
        quality=quality.to_state(),
    )
