"""The dashboard server's guard: the Host must be the bound address, an action must be a
POST from the dashboard's own page with the process's CSRF token. Every request refused
here is refused before the cluster is asked anything, so no cluster is needed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import urllib3
from aiohttp.test_utils import TestClient, TestServer

from modelrollout.services.dashboard import Dashboard
from modelrollout.services.kube import Kube


class NoCluster:
    """Any call to the cluster fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the cluster was asked ({name}) for a request to refuse")


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient[Any, Any], Dashboard, str]]:
    board = Dashboard(cast(Kube, NoCluster()), "ml")
    async with TestClient(TestServer(board.app(), host="127.0.0.1")) as client:
        port = client.server.port
        assert port is not None
        board.allow("127.0.0.1", port)
        yield client, board, f"127.0.0.1:{port}"


async def test_a_foreign_host_is_refused(
    served: tuple[TestClient[Any, Any], Dashboard, str],
) -> None:
    client, _, _ = served
    answer = await client.get("/", headers={"Host": "evil.example:3200"})
    assert answer.status == 403
    assert "unexpected Host" in await answer.text()


@pytest.mark.parametrize(
    ("headers", "token", "why"),
    [
        ({}, "good", "did not come from this page"),
        ({"Origin": "http://evil.example"}, "good", "did not come from this page"),
        ({"Referer": "http://evil.example/md/ml/md"}, "good", "did not come from this page"),
        ({"Origin": "SELF"}, "", "CSRF token"),
        ({"Origin": "SELF"}, "forged", "CSRF token"),
    ],
)
async def test_an_action_without_origin_or_token_is_refused(
    served: tuple[TestClient[Any, Any], Dashboard, str],
    headers: dict[str, str],
    token: str,
    why: str,
) -> None:
    client, board, host = served
    headers = {k: v.replace("SELF", f"http://{host}") for k, v in headers.items()}
    form = {"csrf": board.csrf if token == "good" else token}
    answer = await client.post("/md/ml/md/abort", data=form, headers=headers)
    assert answer.status == 403
    assert why in await answer.text()


async def test_an_action_from_the_page_with_the_token_passes_the_guard(
    served: tuple[TestClient[Any, Any], Dashboard, str],
) -> None:
    client, board, host = served
    for origin in ({"Origin": f"http://{host}"}, {"Referer": f"http://{host}/md/ml/md"}):
        answer = await client.post("/md/ml/md/explode", data={"csrf": board.csrf}, headers=origin)
        assert answer.status == 404  # past the guard: no such action, nothing asked
        assert "no such action" in await answer.text()


async def test_actions_are_post_only(served: tuple[TestClient[Any, Any], Dashboard, str]) -> None:
    client, _, _ = served
    answer = await client.get("/md/ml/md/abort")
    assert answer.status == 405


def test_two_processes_have_different_tokens() -> None:
    one, two = Dashboard(cast(Kube, NoCluster()), None), Dashboard(cast(Kube, NoCluster()), None)
    assert one.csrf != two.csrf
    assert len(one.csrf) >= 32
    assert one.scope == "all namespaces"


def test_loopback_also_answers_localhost_and_any_address_answers_any_host() -> None:
    board = Dashboard(cast(Kube, NoCluster()), None)
    board.allow("127.0.0.1", 3200)
    assert board.hosts == {"127.0.0.1:3200", "localhost:3200"}
    board.allow("::1", 3200)
    assert "[::1]:3200" in board.hosts
    assert not board.any_host
    board.allow("0.0.0.0", 3200)
    assert board.any_host


class Unreachable:
    """A cluster that cannot be reached."""

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise urllib3.exceptions.MaxRetryError(
                urllib3.HTTPConnectionPool("127.0.0.1", 1), "/apis", ConnectionRefusedError(111)
            )

        return call


async def test_an_unreachable_cluster_is_said_on_the_page() -> None:
    board = Dashboard(cast(Kube, Unreachable()), None)
    async with TestClient(TestServer(board.app(), host="127.0.0.1")) as client:
        assert client.server.port is not None
        board.allow("127.0.0.1", client.server.port)
        for path in ("/", "/md/ml/md", "/md/ml/md/live", "/replaytests/ml/rt"):
            answer = await client.get(path)
            assert answer.status == 502, path
            assert "cannot reach the Kubernetes API server" in await answer.text()
