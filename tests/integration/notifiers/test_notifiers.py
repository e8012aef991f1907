"""The notifiers against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from modelrollout.core.api.modeldeployment import Notifier as NotifierSpec
from modelrollout.core.errors import InvalidSpec
from modelrollout.core.notifications import Notification, payload
from modelrollout.services.notifiers import NotifyError, make_notifier
from modelrollout.services.notifiers.slack import SlackNotifier
from modelrollout.services.notifiers.webhook import WebhookNotifier

NOTE = Notification(
    event="Promoted",
    namespace="ml",
    name="fraud",
    model="fraud-scorer",
    version="v3",
    phase="Production",
    message="all SLOs met for 3 steps",
    time=datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
)
SECRET_PATH = "/hooks/T000/B000/s3cr3t"


@dataclass
class Received:
    path: str
    content_type: str
    body: Any


@dataclass
class Receiver:
    """Records every POST and answers with ``status``; with ``hang`` set, answers only once
    ``release`` is set."""

    port: int = 0
    status: int = 200
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    requests: queue.Queue[Received] = field(default_factory=queue.Queue)

    def url(self, path: str = SECRET_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next(self) -> Received:
        return self.requests.get(timeout=5)


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            receiver.requests.put(Received(self.path, self.headers["Content-Type"], body))
            if receiver.hang:
                receiver.release.wait(timeout=10)
            self.send_response(receiver.status)
            if receiver.status in (301, 302):
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(found))
    found.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="receiver", daemon=True
    )
    thread.start()
    try:
        yield found
    finally:
        found.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def spec(kind: str, name: str = "ops") -> NotifierSpec:
    return NotifierSpec.model_validate({"name": name, "kind": kind, "url": "http://unused"})


def test_webhook_posts_the_flat_document(receiver: Receiver) -> None:
    notifier = make_notifier(spec("Webhook"), url=receiver.url("/rollouts"))
    assert (notifier.name, notifier.kind) == ("ops", "Webhook")
    notifier.post(NOTE)
    got = receiver.next()
    assert got.path == "/rollouts"
    assert got.content_type == "application/json"
    assert got.body == payload("Webhook", NOTE)
    assert got.body["event"] == "Promoted"


def test_slack_posts_a_sentence(receiver: Receiver) -> None:
    notifier = make_notifier(spec("Slack", "team"), url=receiver.url())
    notifier.post(NOTE)
    got = receiver.next()
    assert got.path == SECRET_PATH
    assert got.body == {
        "text": "fraud-scorer v3 (ml/fraud) was promoted to production: all SLOs met for 3 steps."
    }


@pytest.mark.parametrize("kind", ["Webhook", "Slack"])
@pytest.mark.parametrize(
    ("status", "answer"),
    [(500, "HTTP 500 Internal Server Error"), (404, "HTTP 404 Not Found"), (302, "HTTP 302")],
)
def test_an_error_answer_raises_notify_error(
    receiver: Receiver, kind: str, status: int, answer: str
) -> None:
    receiver.status = status
    notifier = make_notifier(spec(kind), url=receiver.url())
    with pytest.raises(NotifyError, match=answer) as raised:
        notifier.post(NOTE)
    message = str(raised.value)
    assert message.startswith("notifier ops: POST to http://127.0.0.1:")
    assert "s3cr3t" not in message
    assert raised.value.notifier == "ops"
    assert receiver.next().path == SECRET_PATH


@pytest.mark.parametrize("kind", ["Webhook", "Slack"])
def test_an_unreachable_endpoint_raises_notify_error(kind: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notifier = make_notifier(spec(kind), url=f"http://127.0.0.1:{port}{SECRET_PATH}")
    with pytest.raises(NotifyError, match=r"notifier ops: POST to http://127\.0\.0\.1:\d+ failed"):
        notifier.post(NOTE)


def test_a_slow_endpoint_times_out(receiver: Receiver) -> None:
    receiver.hang = True
    notifier = make_notifier(spec("Webhook"), url=receiver.url(), timeout=0.3)
    with pytest.raises(NotifyError, match=r"timed out after 0\.3s"):
        notifier.post(NOTE)
    assert receiver.next().body["event"] == "Promoted"


@pytest.mark.parametrize(
    ("kind", "implementation"), [("Webhook", WebhookNotifier), ("Slack", SlackNotifier)]
)
def test_the_factory_builds_each_kind_with_a_five_second_timeout(
    kind: str, implementation: type[WebhookNotifier | SlackNotifier]
) -> None:
    notifier = make_notifier(spec(kind), url="https://hooks.example.com/x")
    assert isinstance(notifier, implementation)
    assert notifier.timeout == 5.0


def test_unknown_kinds_are_rejected() -> None:
    unknown = NotifierSpec.model_construct(name="ops", kind="Teams", url="http://x")
    with pytest.raises(InvalidSpec, match="notifier ops: unknown kind 'Teams'; choose one of"):
        make_notifier(unknown, url="http://x")


@pytest.mark.parametrize("url", ["ftp://files.example.com/hook", "hooks.example.com/x", ""])
def test_urls_that_are_not_http_are_rejected(url: str) -> None:
    with pytest.raises(NotifyError, match="notifier ops: the URL must start with http"):
        make_notifier(spec("Webhook"), url=url)
