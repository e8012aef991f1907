"""The dashboard reads what a newer operator wrote: status fields this version does not
know are left out, and one object it cannot read does not blank a listing; a succeeded
Job's shard logs are read once. The cluster is a stand-in that answers from a dict, so no
server is needed."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from factories import BASE, replay_test_spec, shard_result
from modelrollout.core.api.replaytest import ReplayTest, ReplayTestStatus
from modelrollout.services import dashboard
from modelrollout.services.dashboard import Dashboard
from modelrollout.services.kube import Kube

NEWER_STATUS = {
    "phase": "Baking",
    "stableVersion": "v1",
    "candidateVersion": "v2",
    "fieldOfANewerOperator": {"x": 1},
    "kopf": {"progress": {}},
}


def replay_test(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ReplayTest",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": spec,
        "status": {"phase": "Running", "fieldOfANewerOperator": True},
    }


GOOD_SPEC = {
    "events": {"configMapKeyRef": {"name": "ev", "key": "e.jsonl"}},
    "target": {"url": "http://t/p"},
    "rate": {"rate": 100, "count": 40},
}


class Cluster:
    """Answers reads from fixed objects."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects

    def list_custom(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        return copy.deepcopy(self.objects.get(plural, []))

    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = [o for o in self.objects.get(plural, []) if o["metadata"]["name"] == name]
        return copy.deepcopy(found[0]) if found else None

    def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        return []


def newer_md() -> dict[str, Any]:
    return {**copy.deepcopy(BASE), "status": dict(NEWER_STATUS)}


def test_a_model_deployment_with_a_status_field_this_version_does_not_know_is_read() -> None:
    board = Dashboard(cast(Kube, Cluster({"modeldeployments": [newer_md()]})), "ml")
    md, _ = board._read_md("ml", "fraud")
    assert md.status is not None
    assert md.status.phase == "Baking"
    assert md.status.candidate_version == "v2"


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    bad_spec = {**GOOD_SPEC, "rate": {"rate": -1, "count": 40}}
    cluster = Cluster(
        {
            "modeldeployments": [newer_md()],
            "replaytests": [replay_test("good", GOOD_SPEC), replay_test("broken", bad_spec)],
        }
    )
    board = Dashboard(cast(Kube, cluster), "ml")
    async with TestClient(TestServer(board.app(), host="127.0.0.1")) as served:
        port = served.server.port
        assert port is not None
        board.allow("127.0.0.1", port)
        yield served


async def test_the_detail_page_shows_a_status_from_a_newer_operator(
    client: TestClient[Any, Any],
) -> None:
    answer = await client.get("/md/ml/fraud")
    assert answer.status == 200
    text = await answer.text()
    assert "v2" in text
    assert "fieldOfANewerOperator" not in text


async def test_one_unreadable_replay_test_does_not_blank_the_listing(
    client: TestClient[Any, Any],
) -> None:
    answer = await client.get("/replaytests")
    assert answer.status == 200
    text = await answer.text()
    assert 'href="/replaytests/ml/good"' in text  # the readable one is listed
    assert 'href="/replaytests/ml/broken"' not in text
    assert "ml/broken: not a valid object" in text  # the other is named, with why


class Jobs(Cluster):
    """Every Job exists, with the UID ``uid-<name>``."""

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        return {"metadata": {"namespace": namespace, "name": name, "uid": f"uid-{name}"}}


def succeeded(job: str) -> ReplayTest:
    return ReplayTest(
        metadata={"name": "t", "namespace": "ml"},
        spec=replay_test_spec(),
        status=ReplayTestStatus.model_validate({"phase": "Succeeded", "jobName": job}),
    )


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The UIDs of the Jobs whose shard logs were read, in order."""
    uids: list[str] = []

    def outcomes(kube: Kube, job: dict[str, Any]) -> list[SimpleNamespace]:
        uids.append(job["metadata"]["uid"])
        return [SimpleNamespace(result=shard_result(i, 2, 0.01)) for i in range(2)]

    monkeypatch.setattr(dashboard, "shard_outcomes", outcomes)
    return uids


def test_a_succeeded_jobs_merged_result_is_read_from_the_logs_once(read: list[str]) -> None:
    board = Dashboard(cast(Kube, Jobs({})), "ml")
    first = board._full_result(succeeded("a"))
    assert first is not None
    assert first.counts.sent == 40  # both shards merged
    assert board._full_result(succeeded("a")) is first
    assert read == ["uid-a"]
    assert board._full_result(succeeded("b")) is not None  # another Job: its own logs
    assert read == ["uid-a", "uid-b"]


def test_the_kept_results_are_bounded_and_the_oldest_go_first(read: list[str]) -> None:
    board = Dashboard(cast(Kube, Jobs({})), "ml")
    kept = dashboard.RESULTS_KEPT
    for n in range(kept + 1):
        board._full_result(succeeded(str(n)))
    assert len(board.results) == kept
    assert len(read) == kept + 1
    board._full_result(succeeded(str(kept)))  # the newest is kept
    assert len(read) == kept + 1
    board._full_result(succeeded("0"))  # the oldest was dropped: read again
    assert read[-1] == "uid-0"
