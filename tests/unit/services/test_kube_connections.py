"""Every request of the narrow client gives its connection back: against a local HTTP/1.1
server that keeps connections alive, many requests share one connection."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kubernetes import client

from modelrollout.services.kube import Kube


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {"kind": "Status", "metadata": {"name": "x", "resourceVersion": "1"}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = do_POST = do_DELETE = _answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def kube() -> Iterator[Kube]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_port}"
    api = client.ApiClient(configuration)
    try:
        yield Kube(api)
    finally:
        api.close()
        server.shutdown()
        server.server_close()
        thread.join()


def opened(kube: Kube) -> int:
    pools = kube.api_client.rest_client.pool_manager.pools
    return sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118


def test_reads_and_writes_share_one_connection(kube: Kube) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"replicas": 1},
    }
    involved = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}
    for _ in range(5):
        kube.apply(deployment)
        kube.patch_status("modeldeployments", "ns", "md", {"phase": "Production"})
        kube.get_deployment("ns", "d")
        kube.delete_job("ns", "j")
        kube.event(involved, type_="Normal", reason="R", message="m", now=datetime.now(tz=UTC))
    assert opened(kube) == 1
