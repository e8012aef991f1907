"""The capture sidecar's live window, served, and its labels, followed.

* :func:`window_routes`: ``GET /monitoring/window?seconds=N`` answers the window of the
  last N seconds (:meth:`modelrollout.core.monitoring.live.LiveWindow.answer`), which the
  operator merges over a track's pods.
* :class:`LabelsFollower`: delayed labels, JSON Lines of ``{"inferenceId", "label"}``, from a
  file (a ConfigMap mounted in the pod, which the kubelet rewrites when it changes) or an
  http(s) URL, read again every ``interval`` seconds. Each inference id is joined once;
  a line that is not a label is counted and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from modelrollout.core.monitoring.live import LiveWindow

log = logging.getLogger("modelrollout.capture.labels")

WINDOW_PATH = "/monitoring/window"
MAX_WINDOW_SECONDS = 7 * 86_400.0
SEEN_LIMIT = 1_000_000


class SharedWindow:
    """A :class:`LiveWindow` shared by the capture writer's thread (records), the labels
    follower and the window endpoint, behind one lock."""

    def __init__(self, live: LiveWindow, clock: Callable[[], float] = time.time) -> None:
        self.live = live
        self.clock = clock
        self.lock = threading.Lock()

    def observe(self, line: bytes) -> None:
        """One line the capture writer wrote (a capture event); never raises."""
        try:
            record = json.loads(line)
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        inference_id = record.get("inferenceId")
        with self.lock:
            self.live.record(self.clock(), record, str(inference_id) if inference_id else None)

    def observe_event(self, record: dict[str, Any]) -> None:
        """One record the capture writer wrote, as the event its line reads back as."""
        inference_id = record.get("inferenceId")
        with self.lock:
            self.live.record(self.clock(), record, str(inference_id) if inference_id else None)

    def label(self, now: float, inference_id: str, label: object) -> bool:
        with self.lock:
            return self.live.label(now, inference_id, label)

    def answer(self, now: float, seconds: float) -> dict[str, object]:
        with self.lock:
            return self.live.answer(now, seconds)


def window_routes(
    live: SharedWindow | LiveWindow, clock: Callable[[], float] = time.time
) -> list[web.RouteDef]:
    async def window(request: web.Request) -> web.Response:
        text = request.query.get("seconds", "300")
        try:
            seconds = float(text)
        except ValueError:
            raise web.HTTPBadRequest(text=f"seconds: {text!r} is not a number") from None
        if not 0 < seconds <= MAX_WINDOW_SECONDS:
            raise web.HTTPBadRequest(text=f"seconds: {text} is not in (0, {MAX_WINDOW_SECONDS:g}]")
        answer = await asyncio.to_thread(live.answer, clock(), seconds)
        return web.json_response(answer)

    return [web.get(WINDOW_PATH, window)]


class LabelsFollower:
    """Reads the labels again and again, and joins the new ones."""

    def __init__(
        self,
        live: SharedWindow | LiveWindow,
        *,
        path: Path | None = None,
        url: str | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path and url")
        self.live = live
        self.path = path
        self.url = url
        self.interval = interval
        self.clock = clock
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.joined = 0
        self.invalid = 0
        self.read_errors = 0

    def ingest(self, text: str) -> int:
        """Join every label of ``text`` not joined before; the number joined now."""
        joined = 0
        now = self.clock()
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                inference_id = str(record["inferenceId"])
                label = record["label"]
            except (ValueError, KeyError, TypeError):
                self.invalid += 1
                continue
            if inference_id in self.seen:
                continue
            self.seen[inference_id] = None
            if len(self.seen) > SEEN_LIMIT:
                self.seen.popitem(last=False)
            if self.live.label(now, inference_id, label):
                joined += 1
        self.joined += joined
        return joined

    async def read(self) -> str:
        if self.path is not None:
            return await asyncio.to_thread(self.path.read_text)
        assert self.url is not None
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(self.url)
            response.raise_for_status()
            return response.text

    async def follow(self) -> None:
        """Read, join, wait; until cancelled. A source that cannot be read is retried."""
        while True:
            try:
                self.ingest(await self.read())
            except (OSError, httpx.HTTPError) as exc:
                self.read_errors += 1
                log.warning("labels from %s: %s", self.path or self.url, exc)
            await asyncio.sleep(self.interval)
