"""The model server's injected faults, including a regression that starts later."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from modelrollout.modelserver.app import ServerConfig, create_app

PREDICT = "/v1/models/model:predict"
BODY = {"instances": [[0.1, 0.2, 0.3, 0.4]]}


async def _statuses(config: ServerConfig, n: int = 20) -> list[int]:
    async with TestClient(TestServer(create_app(config))) as client:
        return [(await client.post(PREDICT, json=BODY)).status for _ in range(n)]


@pytest.mark.parametrize(
    ("error_rate", "faults_after", "expected"),
    [
        (0.0, 0, [200] * 6),  # no faults configured
        (1.0, 0, [500] * 6),  # every request fails from the start
        (1.0, 4, [200] * 4 + [500] * 2),  # the regression starts with the fifth request
        (1.0, 100, [200] * 6),  # not yet
    ],
)
async def test_errors_start_after_the_healthy_requests(
    error_rate: float, faults_after: int, expected: list[int]
) -> None:
    config = ServerConfig(error_rate=error_rate, faults_after_requests=faults_after)
    assert await _statuses(config, 6) == expected
