"""``profile --job``, the decisions: where the data is, the Job, where it stands, reading
and merging the shards' lines, and whether the result fits a ConfigMap."""

from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np
import pytest

from modelrollout.core import jobs
from modelrollout.core.jobs import PodState
from modelrollout.core.monitoring import profile_job
from modelrollout.core.monitoring.builder import ProfileBuilder
from modelrollout.core.monitoring.profile import (
    CONFIGMAP_BYTES,
    Profile,
    ProfileMergeError,
    ProfileSource,
    merge_profiles,
)
from modelrollout.core.monitoring.profile_job import BadReference, DataSource, TooLargeError

SOURCE = ProfileSource(format="jsonl")


def without_sketches(profile: Profile) -> dict[str, Any]:
    document = profile.model_dump()
    for column in document["features"].values():
        column.pop("sketch", None)
    return document


def shard_profile(index: int, count: int, n: int = 600) -> Profile:
    rng = np.random.default_rng(7)
    values = rng.normal(size=n)
    builder = ProfileBuilder(SOURCE)
    for i in range(index, n, count):
        builder.add({"x": float(values[i]), "c": "ab"[i % 2]})
    return builder.profile()


# -- where the data is -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "ref", "kind", "location", "described"),
    [
        (DataSource.from_url, "https://d.example/e.jsonl.gz", "url", None, None),
        (DataSource.from_url, "http://10.0.0.1:8080/e?x=1", "url", None, None),
        (
            DataSource.from_config_map,
            "events/e.jsonl",
            "configmap",
            "/data/e.jsonl",
            "ConfigMap events key e.jsonl",
        ),
        (DataSource.from_config_map, "events", "configmap", "/data", "ConfigMap events"),
        (
            DataSource.from_volume,
            "datasets/2024/big.csv.gz",
            "volume",
            "/data/2024/big.csv.gz",
            "PersistentVolumeClaim datasets path 2024/big.csv.gz",
        ),
    ],
)
def test_data_sources(make, ref: str, kind: str, location: str | None, described: str | None):
    source = make(ref)
    assert source.kind == kind
    assert source.location() == (location or ref)
    assert source.describe() == (described or ref)


def test_a_config_map_is_mounted_optional_so_a_bad_key_is_a_shard_error():
    source = DataSource.from_config_map("events/e.jsonl")
    assert source.mount is not None
    assert source.mount.volume()["configMap"]["optional"] is True


@pytest.mark.parametrize(
    ("make", "ref", "says"),
    [
        (DataSource.from_url, "events.jsonl", "not an http(s) URL"),
        (DataSource.from_url, "/data/events.jsonl", "not from this machine's files"),
        (DataSource.from_url, "ftp://h/e", "not an http(s) URL"),
        (DataSource.from_url, "http://", "not an http(s) URL"),
        (DataSource.from_config_map, "Events/e.jsonl", "'Events' is not an object name"),
        (DataSource.from_config_map, "/e.jsonl", "'' is not an object name"),
        (DataSource.from_config_map, "events/a/b", "'a/b' is not a ConfigMap key"),
        (DataSource.from_config_map, "events/..", "'..' is not a ConfigMap key"),
        (DataSource.from_volume, "claim", "name the file on the claim"),
        (DataSource.from_volume, "claim/", "name the file on the claim"),
        (DataSource.from_volume, "cl_aim/x", "'cl_aim' is not an object name"),
    ],
)
def test_bad_references_say_what_is_wrong(make, ref: str, says: str):
    with pytest.raises(BadReference, match=re.escape(says)):
        make(ref)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("baseline", ("baseline", "profile.json")),
        ("baseline/fraud.json", ("baseline", "fraud.json")),
    ],
)
def test_config_map_targets(ref: str, expected: tuple[str, str]):
    assert profile_job.parse_config_map_target(ref) == expected


def test_a_bad_config_map_target():
    with pytest.raises(BadReference, match="not a ConfigMap key"):
        profile_job.parse_config_map_target("baseline/a b")


# -- the Job --------------------------------------------------------------------------------------


def manifest(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "name": profile_job.job_name("a1b2c3"),
        "namespace": "ml",
        "source": DataSource.from_config_map("events/e.jsonl"),
        "shard_count": 3,
        "image": "img:1",
        "deadline_seconds": 600,
        "profile_args": ["--sketch-k", "100"],
    }
    arguments.update(overrides)
    return profile_job.job_manifest(**arguments)


def test_the_job_runs_one_shard_per_pod_and_prints_the_profile_line():
    job = manifest()
    assert job["metadata"]["name"] == "modelrollout-profile-a1b2c3"
    assert job["metadata"]["labels"][profile_job.LABEL_PROFILE] == "modelrollout-profile-a1b2c3"
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == profile_job.TTL_SECONDS
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == [
        "profile",
        "--data", "/data/e.jsonl",
        "--shard-index", "$(JOB_COMPLETION_INDEX)",
        "--shard-count", "3",
        "--profile-line",
        "--quiet",
        "--sketch-k", "100",
    ]  # fmt: skip
    assert container["image"] == "img:1"
    assert pod["volumes"][1]["configMap"]["name"] == "events"
    # what Pod Security "restricted" asks for
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == jobs.CONTAINER_SECURITY_CONTEXT


def test_a_kept_job_has_no_ttl_and_a_url_needs_no_volume():
    job = manifest(keep=True, source=DataSource.from_url("http://d/e.jsonl"), pull_policy="Never")
    assert "ttlSecondsAfterFinished" not in job["spec"]
    pod = job["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert pod["volumes"][0]["emptyDir"]["sizeLimit"] == profile_job.TMP_SIZE
    assert pod["containers"][0]["args"][2] == "http://d/e.jsonl"
    assert pod["containers"][0]["imagePullPolicy"] == "Never"


def test_job_names_leave_room_for_the_pod_suffix():
    assert len(profile_job.job_name("x" * 80)) <= 52


# -- where it stands ------------------------------------------------------------------------


def pod(index: int, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"modelrollout-profile-a-{index}-xyz",
            "labels": {jobs.COMPLETION_INDEX_LABEL: str(index)},
        },
        "status": {"phase": phase, **status},
    }


UNSCHEDULABLE = {
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": 'persistentvolumeclaim "d" not found',
        }
    ]
}
FAILED_JOB = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "X"}]}}


@pytest.mark.parametrize(
    ("job", "pods", "done", "failed", "summary"),
    [
        ({}, [], False, None, "0 of 3 shards done; no pod for shard(s) 0, 1, 2"),
        (
            {},
            [pod(0, "Succeeded"), pod(1, "Running"), pod(2, "Pending", **UNSCHEDULABLE)],
            False,
            None,
            "1 of 3 shards done; shard 1 running; shard 2 pending (Unschedulable: "
            'persistentvolumeclaim "d" not found)',
        ),
        ({}, [pod(i, "Succeeded") for i in range(3)], True, None, "3 of 3 shards done"),
        (
            {},
            [pod(0, "Succeeded"), pod(1, "Failed"), pod(2, "Running")],
            False,
            1,
            "1 of 3 shards done; shard 2 running",
        ),
        (
            {},
            [
                pod(0, "Succeeded"),
                pod(1, "Succeeded"),
                pod(
                    2,
                    "Pending",
                    containerStatuses=[{"state": {"waiting": {"reason": "ErrImagePull"}}}],
                ),
            ],
            False,
            2,
            "2 of 3 shards done",
        ),
        (
            FAILED_JOB,
            [pod(0, "Succeeded")],
            False,
            None,
            "1 of 3 shards done; no pod for shard(s) 1, 2",
        ),
    ],
)
def test_assess(
    job: dict[str, Any],
    pods: list[dict[str, Any]],
    done: bool,
    failed: int | None,
    summary: str,
):
    progress = profile_job.assess(job, pods, 3)
    assert progress.done is done
    assert (progress.failed.index if progress.failed else None) == failed
    assert progress.summary() == summary
    assert (progress.job_failure is not None) is (job is FAILED_JOB)


def test_a_replaced_pod_does_not_hide_its_successor():
    progress = profile_job.assess({}, [pod(0, "Running"), pod(0, "Succeeded")], 1)
    assert progress.done


def test_a_failed_shard_is_named_with_its_log_and_its_data():
    shard = PodState(1, "failed", "p-1", "PodFailed", "exit code 2")
    source = DataSource.from_config_map("events/missing.jsonl")
    message = profile_job.failure_message(
        shard, ["modelrollout profile: --data: /data/missing.jsonl: does not exist"], source
    )
    assert message.splitlines() == [
        "shard 1 (pod p-1) failed: PodFailed: exit code 2",
        "  last lines of its log:",
        "    modelrollout profile: --data: /data/missing.jsonl: does not exist",
        "  the data: ConfigMap events key missing.jsonl, read by the pod as /data/missing.jsonl",
    ]


def test_a_termination_message_from_the_log_is_not_said_twice():
    shard = PodState(2, "failed", "p-2", "PodFailed", "exit code 2: boom: no such file")
    message = profile_job.failure_message(
        shard, ["warming up", "boom: no such file"], DataSource.from_url("http://d/e")
    )
    assert message.splitlines()[:4] == [
        "shard 2 (pod p-2) failed: PodFailed: exit code 2",
        "  last lines of its log:",
        "    warming up",
        "    boom: no such file",
    ]


def test_an_image_that_cannot_be_pulled_is_named_as_such():
    shard = PodState(0, "failed", "p-0", "ErrImagePull", "pull access denied for nope:1")
    message = profile_job.failure_message(shard, [], DataSource.from_url("http://d/e"))
    assert message.splitlines() == [
        "shard 0 (pod p-0) failed: ErrImagePull: pull access denied for nope:1",
        "  the image could not be used: check --image and that the node can pull it",
    ]


def test_an_empty_log_is_said():
    shard = PodState(0, "failed", "p-0", "OOMKilled")
    message = profile_job.failure_message(shard, [], DataSource.from_url("http://d/e"))
    assert "its log is empty" in message


def test_timeouts_and_job_failures():
    progress = profile_job.assess(FAILED_JOB, [pod(0, "Running")], 2)
    assert profile_job.timeout_message(progress, "10m") == (
        "the Job did not finish within 10m: 0 of 2 shards done; shard 0 running; "
        "no pod for shard(s) 1"
    )
    assert profile_job.job_failed_message(progress, "10m").startswith("the Job failed (X: X)")
    deadline = {
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
        }
    }
    late = profile_job.assess(deadline, [], 1)
    assert profile_job.job_failed_message(late, "5m").startswith("the Job did not finish within 5m")


# -- reading and merging the shards ---------------------------------------------------------------


def test_a_profile_line_round_trips_and_the_last_one_counts():
    first, second = shard_profile(0, 2), shard_profile(1, 2)
    log = "starting\n" + profile_job.profile_line(first) + profile_job.profile_line(second)
    assert profile_job.profile_line(second).count("\n") == 1
    assert profile_job.parse_profile_line(log) == second


@pytest.mark.parametrize(
    ("log", "says"),
    [
        ("", "no MODELROLLOUT_PROFILE line"),
        ("Traceback ...\nMemoryError\n", "no MODELROLLOUT_PROFILE line"),
        ('MODELROLLOUT_PROFILE {"rows": 1, "feat', "is not a profile: "),
        ('MODELROLLOUT_PROFILE {"rows": -1, "source": {"format": "jsonl"}}', "rows:"),
    ],
)
def test_unreadable_profile_lines(log: str, says: str):
    with pytest.raises(ValueError, match=re.escape(says)):
        profile_job.parse_profile_line(log)


def test_the_shards_merge_in_index_order_into_the_whole():
    parts = {i: shard_profile(i, 3) for i in (2, 0, 1)}
    merged = profile_job.merge_shards(parts, 3)
    # KLL compactions draw random bits: the sketches of two merges differ, nothing else
    assert without_sketches(merged) == without_sketches(
        merge_profiles([parts[0], parts[1], parts[2]])
    )
    whole = shard_profile(0, 1)
    assert merged.rows == whole.rows == 600
    assert merged.shards == 3
    assert merged.features["c"] == whole.features["c"]


@pytest.mark.parametrize(
    ("indexes", "says"),
    [((0, 2), "no profile from shard(s) 1"), ((0, 1, 3), "no profile from shard(s) 2")],
)
def test_a_missing_shard_is_not_merged_away(indexes: tuple[int, ...], says: str):
    with pytest.raises(ProfileMergeError, match=re.escape(says)):
        profile_job.merge_shards({i: shard_profile(0, 1) for i in indexes}, 3)


def test_an_unexpected_shard_is_refused():
    with pytest.raises(ProfileMergeError, match="shard"):
        profile_job.merge_shards({i: shard_profile(0, 1) for i in range(3)}, 2)


# -- the ConfigMap -----------------------------------------------------------------------------


def test_a_new_config_map_holds_the_profile():
    body = profile_job.config_map_body(None, namespace="ml", name="b", key="p.json", text="{}")
    assert body["metadata"] == {
        "name": "b",
        "namespace": "ml",
        "labels": {
            "app.kubernetes.io/managed-by": "modelrollout",
            "app.kubernetes.io/component": "profile",
        },
    }
    assert body["data"] == {"p.json": "{}"}


def test_an_existing_config_map_keeps_its_other_keys_and_its_version():
    existing = {
        "metadata": {"name": "b", "namespace": "ml", "resourceVersion": "7"},
        "data": {"notes": "x", "p.json": "old"},
        "binaryData": {"blob": base64.b64encode(b"abc").decode()},
    }
    body = profile_job.config_map_body(existing, namespace="ml", name="b", key="p.json", text="new")
    assert body["data"] == {"notes": "x", "p.json": "new"}
    assert body["binaryData"] == existing["binaryData"]
    assert body["metadata"]["resourceVersion"] == "7"
    assert existing["data"]["p.json"] == "old"  # not changed in place
    moved = {"metadata": {}, "binaryData": {"p.json": base64.b64encode(b"z").decode()}}
    assert (
        profile_job.config_map_body(moved, namespace="ml", name="b", key="p.json", text="t")[
            "binaryData"
        ]
        == {}
    )


@pytest.mark.parametrize(
    ("data", "binary", "size"),
    [
        ({}, None, 0),
        ({"k": "vv"}, None, 3),
        ({"k": "é"}, None, 3),
        ({"k": "v"}, {"b": base64.b64encode(b"1234").decode()}, 2 + 5),
    ],
)
def test_config_map_bytes(data: dict[str, str], binary: dict[str, str] | None, size: int):
    assert profile_job.config_map_bytes(data, binary) == size


def test_a_profile_over_the_limit_names_the_limit():
    key = "profile.json"
    fits = "x" * (CONFIGMAP_BYTES - len(key))
    assert profile_job.config_map_body(None, namespace="ml", name="b", key=key, text=fits)
    with pytest.raises(TooLargeError) as raised:
        profile_job.config_map_body(None, namespace="ml", name="b", key=key, text=fits + "x")
    message = str(raised.value)
    assert "ConfigMap b would hold 1,048,577 bytes" in message
    assert "1,048,576 bytes, 1 MiB" in message
    assert "--feature" in message
    existing = {"metadata": {}, "data": {"other": "y" * 10}}
    with pytest.raises(TooLargeError):
        profile_job.config_map_body(existing, namespace="ml", name="b", key=key, text=fits)
