"""No coordinated omission: a server that stalls for a second shows it in full.

The server below answers in a moment, except that the first request to arrive after one
second of traffic holds it for a whole second: every request in flight or arriving
meanwhile waits too. An open-loop replay at 100 requests per second intends ~100 sends
during the stall; each should count the wait from its intended send time, so about a
sixth of all latencies lie spread between 0 and 1 s, whatever the concurrency and the
client. A closed-loop client, or one that timed from the actual send, would report the
stall as one slow request (or, with concurrency 1, as a handful) and a clean p90.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.replaying import replay_cli
from support.serving import QuietHandler, serving

RATE = 100
SECONDS = 3
STALL = 1.0


class _StallingServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: float | None = None
        self.stalled = False

    def handler(self) -> type[QuietHandler]:
        state = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with state.lock:
                    now = time.monotonic()
                    if state.first is None:
                        state.first = now
                    if not state.stalled and now - state.first >= 1.0:
                        state.stalled = True
                        time.sleep(STALL)
                body = b'{"predictions": [0.5]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def stalling() -> Iterator[tuple[str, _StallingServer]]:
    state = _StallingServer()
    with serving(state.handler()) as address:
        yield f"http://{address}/v1/models/m:predict", state


@pytest.mark.parametrize(
    ("client", "concurrency"), [("lean", 1), ("lean", 64), ("aiohttp", 1), ("aiohttp", 64)]
)
def test_a_one_second_stall_shows_in_full_in_the_latency(
    tmp_path: Path, stalling: tuple[str, Any], client: str, concurrency: int
) -> None:
    url, state = stalling
    events = tmp_path / "events.jsonl"
    events.write_text('{"payload": {"instances": [[1, 2, 3, 4]]}}\n' * 10)
    code, result = replay_cli(
        tmp_path,
        *("--events", str(events), "--target", url, "--client", client),
        *("--rate", str(RATE), "--duration", f"{SECONDS}s", "--max-lag", "10s"),
        *("--concurrency", str(concurrency)),
    )
    assert code == 0
    assert state.stalled
    assert result is not None
    assert result.client == client
    counts = result.counts
    assert (counts.sent, counts.ok, counts.dropped) == (RATE * SECONDS, RATE * SECONDS, 0)
    latency = result.latency_ms
    assert latency.p99 is not None
    assert latency.p90 is not None
    assert latency.mean is not None
    # ~100 of 300 sends intended during the stall wait between 0 and 1 s: the top 10 %
    # waited at least ~0.7 s, the top 1 % nearly the whole second, the mean ~1/6 s.
    assert latency.p99 >= 900
    assert latency.p90 >= 550
    assert 100 <= latency.mean <= 400
    if concurrency == 1:
        # From the actual send, a queued request does not see the stall: only the
        # latency, from the intended send time, tells the truth.
        service = result.service_time_ms
        assert service.p90 is not None
        assert service.p90 < 200
