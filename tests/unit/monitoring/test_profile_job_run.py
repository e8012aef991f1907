"""``profile --job`` against a fake apiserver: the wait, the errors, the clean-up, the
ConfigMap, and the command line around it. Time is faked: the clock moves when the runner
sleeps, never otherwise."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrollout.cli import cluster
from modelrollout.cli.main import main
from modelrollout.core import errors, jobs
from modelrollout.core.monitoring import profile_job
from modelrollout.core.monitoring.profile import Profile, ProfileSource
from modelrollout.core.monitoring.profile_job import DataSource
from modelrollout.services.monitoring import profile_job as runner
from modelrollout.services.monitoring.datasets import ReadOptions, profile_dataset

Pods = list[dict[str, Any]]


class FakeKube:
    """A Job controller in a box: ``script(poll)`` gives the pods at each poll."""

    def __init__(self, script: Callable[[int], Pods], logs: dict[str, str]) -> None:
        self.script = script
        self.logs = logs
        self.polls = 0
        self.created: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []
        self.job_status: dict[str, Any] = {}
        self.config_maps: dict[str, dict[str, Any]] = {}
        self.conflicts = 0
        self.log_requests: list[tuple[str, int | None]] = []

    def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.created.append(manifest)
        return manifest

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        if (namespace, name) in self.deleted:
            return None
        return {"metadata": {"name": name, "uid": "job-uid"}, "status": self.job_status}

    def list_pods(self, namespace: str, selector: str) -> Pods:
        assert selector == f"{jobs.CONTROLLER_UID_LABEL}=job-uid"
        pods = self.script(self.polls)
        self.polls += 1
        return pods

    def pod_log(
        self, namespace: str, name: str, *, tail_bytes: int = 0, tail_lines: int | None = None
    ) -> str:
        self.log_requests.append((name, tail_lines))
        if name not in self.logs:
            raise errors.ApiError(400, f"pod/{name} log", "container is waiting to start")
        return self.logs[name]

    def delete_job(self, namespace: str, name: str) -> None:
        self.deleted.append((namespace, name))

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.config_maps.get(name)
        return json.loads(json.dumps(found)) if found else None

    def create_config_map(self, body: dict[str, Any]) -> dict[str, Any]:
        self.config_maps[body["metadata"]["name"]] = body
        return body

    def replace_config_map(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.conflicts:
            self.conflicts -= 1
            raise errors.Conflict(409, "configmap", "the object has been modified")
        self.config_maps[body["metadata"]["name"]] = body
        return body


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pod(index: int, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"p-{index}", "labels": {jobs.COMPLETION_INDEX_LABEL: str(index)}},
        "status": {"phase": phase, **status},
    }


def events(path: Path, n: int = 900) -> Path:
    rng = np.random.default_rng(3)
    lines = [
        json.dumps(
            {
                "payload": {"x": round(float(rng.normal()), 4), "c": "abc"[i % 3]},
                "label": i % 2,
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def shard_logs(tmp_path: Path) -> dict[str, str]:
    """The logs of three shards of one dataset, as the pods print them."""
    data = events(tmp_path / "e.jsonl")
    logs = {}
    for i in range(3):
        shard = profile_dataset(data, ReadOptions(shard_index=i, shard_count=3))
        logs[f"p-{i}"] = "some warning\n" + profile_job.profile_line(shard)
    return logs


def job_run(kube: FakeKube, clock: FakeClock, **overrides: Any) -> runner.ProfileJob:
    source = DataSource.from_config_map("events/e.jsonl")
    manifest = profile_job.job_manifest(
        name="modelrollout-profile-t",
        namespace="ml",
        source=source,
        shard_count=3,
        image="img",
        deadline_seconds=60,
    )
    arguments: dict[str, Any] = {
        "kube": kube,
        "manifest": manifest,
        "source": source,
        "shard_count": 3,
        "timeout": 60.0,
        "timeout_text": "1m",
        "clock": clock,
        "sleep": clock.sleep,
        "interval": 1.0,
    }
    arguments.update(overrides)
    return runner.ProfileJob(**arguments)


def test_the_shards_are_waited_for_merged_and_the_job_deleted(shard_logs, tmp_path):
    def script(poll: int) -> Pods:
        if poll == 0:
            return []
        if poll == 1:
            return [pod(0, "Running"), pod(1, "Pending"), pod(2, "Running")]
        return [
            pod(0, "Succeeded"),
            pod(1, "Succeeded" if poll > 2 else "Running"),
            pod(2, "Succeeded"),
        ]

    kube, clock = FakeKube(script, shard_logs), FakeClock()
    seen: list[str] = []
    profile = job_run(kube, clock, on_progress=lambda p: seen.append(p.summary())).run()
    assert len(kube.created) == 1
    assert kube.deleted == [("ml", "modelrollout-profile-t")]
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert seen == [
        "0 of 3 shards done; no pod for shard(s) 0, 1, 2",
        "0 of 3 shards done; shard 0 running; shard 1 pending; shard 2 running",
        "2 of 3 shards done; shard 1 running",
        "3 of 3 shards done",
    ]
    whole = profile_dataset(events(tmp_path / "w.jsonl"), ReadOptions())
    assert (profile.rows, profile.shards) == (900, 3)
    assert profile.features["c"] == whole.features["c"]
    assert profile.features["@label"] == whole.features["@label"]
    x, y = profile.features["x"], whole.features["x"]
    assert (x.count, x.min, x.max) == (y.count, y.min, y.max)
    assert x.mean == pytest.approx(y.mean, abs=1e-12)


def test_a_failed_shard_stops_the_wait_with_its_log(shard_logs):
    shard_logs["p-1"] = "Traceback\nmodelrollout profile: --data: /data/e.jsonl: does not exist\n"
    failed = pod(1, "Failed", containerStatuses=[{"state": {"terminated": {"exitCode": 2}}}])
    kube, clock = (
        FakeKube(lambda _: [pod(0, "Running"), failed, pod(2, "Running")], shard_logs),
        FakeClock(),
    )
    with pytest.raises(runner.ProfileJobError) as raised:
        job_run(kube, clock).run()
    message = str(raised.value)
    assert message.startswith("shard 1 (pod p-1) failed: PodFailed: exit code 2\n")
    assert "    modelrollout profile: --data: /data/e.jsonl: does not exist" in message
    assert "the data: ConfigMap events key e.jsonl" in message
    assert kube.log_requests == [("p-1", profile_job.LOG_LINES * 4)]
    assert kube.deleted == [("ml", "modelrollout-profile-t")]
    assert clock.sleeps == []  # failed at the first look


def test_an_image_pull_error_fails_fast_without_reading_a_log(shard_logs):
    pulling = pod(
        0,
        "Pending",
        containerStatuses=[
            {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "nope:1"}}}
        ],
    )
    kube, clock = FakeKube(lambda _: [pulling], shard_logs), FakeClock()
    with pytest.raises(runner.ProfileJobError, match="ImagePullBackOff: nope:1"):
        job_run(kube, clock).run()
    assert kube.log_requests == []
    assert kube.deleted


def test_a_failed_shard_whose_log_cannot_be_read_is_still_named():
    kube, clock = FakeKube(lambda _: [pod(0, "Failed", reason="Evicted")], {}), FakeClock()
    with pytest.raises(runner.ProfileJobError, match=r"shard 0 \(pod p-0\) failed: Evicted"):
        job_run(kube, clock).run()


def test_the_wait_ends_at_the_deadline_and_the_job_is_kept_when_asked(shard_logs):
    kube, clock = (
        FakeKube(lambda _: [pod(0, "Succeeded"), pod(1, "Running")], shard_logs),
        FakeClock(),
    )
    with pytest.raises(runner.ProfileJobError) as raised:
        job_run(kube, clock, timeout=2.5, timeout_text="2.5s", keep=True).run()
    assert str(raised.value) == (
        "the Job did not finish within 2.5s: 1 of 3 shards done; shard 1 running; "
        "no pod for shard(s) 2"
    )
    assert clock.sleeps == [1.0, 1.0, 0.5]
    assert kube.deleted == []


def test_a_job_the_controller_failed_is_reported(shard_logs):
    kube, clock = FakeKube(lambda _: [pod(0, "Running")], shard_logs), FakeClock()
    kube.job_status = {
        "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    }
    with pytest.raises(runner.ProfileJobError, match="did not finish within 1m"):
        job_run(kube, clock).run()


def test_a_job_deleted_under_the_wait_is_said():
    kube, clock = FakeKube(lambda _: [], {}), FakeClock()
    run = job_run(kube, clock)
    kube.deleted.append(("ml", run.name))
    with pytest.raises(runner.ProfileJobError, match="was deleted while it ran"):
        run.run()


@pytest.mark.parametrize(
    ("log", "says"),
    [
        ("done\n", "shard 2 (pod p-2) succeeded, but its log has no MODELROLLOUT_PROFILE line"),
        ('MODELROLLOUT_PROFILE {"rows": 3, "sou\n', "is not a profile"),
    ],
)
def test_a_shard_without_a_readable_profile_is_named(shard_logs, log: str, says: str):
    shard_logs["p-2"] = log
    kube, clock = (
        FakeKube(lambda _: [pod(i, "Succeeded") for i in range(3)], shard_logs),
        FakeClock(),
    )
    with pytest.raises(runner.ProfileJobError, match=re.escape(says)):
        job_run(kube, clock).run()
    assert kube.deleted


def test_shards_that_do_not_merge_are_reported(shard_logs):
    odd = profile_job.parse_profile_line(shard_logs["p-1"])
    odd.source = ProfileSource(format="csv")
    shard_logs["p-1"] = profile_job.profile_line(odd)
    kube, clock = (
        FakeKube(lambda _: [pod(i, "Succeeded") for i in range(3)], shard_logs),
        FakeClock(),
    )
    with pytest.raises(runner.ProfileJobError, match="the shards' profiles do not merge"):
        job_run(kube, clock).run()


def test_an_interrupt_still_deletes_the_job():
    def script(poll: int) -> Pods:
        raise KeyboardInterrupt

    kube, clock = FakeKube(script, {}), FakeClock()
    with pytest.raises(KeyboardInterrupt):
        job_run(kube, clock).run()
    assert kube.deleted


# -- the ConfigMap ----------------------------------------------------------------------------


def test_the_config_map_is_created_then_updated_keeping_other_keys():
    kube = FakeKube(lambda _: [], {})
    runner.write_config_map(kube, "ml", "baseline", "profile.json", "v1")  # type: ignore[arg-type]
    kube.config_maps["baseline"]["data"]["notes"] = "kept"
    kube.conflicts = 2  # someone writes in between, twice
    runner.write_config_map(kube, "ml", "baseline", "profile.json", "v2")  # type: ignore[arg-type]
    assert kube.config_maps["baseline"]["data"] == {"notes": "kept", "profile.json": "v2"}


def test_a_config_map_that_keeps_changing_is_given_up():
    kube = FakeKube(lambda _: [], {})
    kube.config_maps["baseline"] = {"metadata": {"name": "baseline"}, "data": {}}
    kube.conflicts = runner.WRITE_ATTEMPTS
    with pytest.raises(runner.ProfileJobError, match="kept changing"):
        runner.write_config_map(kube, "ml", "baseline", "p", "v")  # type: ignore[arg-type]


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_kube(monkeypatch: pytest.MonkeyPatch, shard_logs) -> FakeKube:
    """``cluster.connect`` answers with a fake whose shards succeed at once."""
    kube = FakeKube(lambda _: [pod(i, "Succeeded") for i in range(3)], shard_logs)
    monkeypatch.setattr(cluster, "connect", lambda args: (kube, args.namespace or "default"))
    return kube


def test_profile_job_writes_the_merged_profile_to_a_file_and_a_config_map(
    cli_kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "baseline.json"
    code = main(
        [
            "profile", "--job", "-n", "ml", "--data-configmap", "events/e.jsonl",
            "--shard-count", "3", "--image", "img:2", "--to-configmap", "baseline",
            "--output", str(out), "--sketch-k", "100", "--feature", "x", "--timeout", "90s",
            "--prediction-field", "",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == ""
    (manifest,) = cli_kube.created
    assert manifest["metadata"]["namespace"] == "ml"
    assert manifest["spec"]["activeDeadlineSeconds"] == 90
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "img:2"
    args = container["args"]
    assert args[args.index("--shard-count") + 1] == "3"
    assert args[-5:] == [
        "--prediction-field=",
        "--feature=x",
        "--sketch-k=100",
        "--category-limit=100",
        "--max-features=1000",
    ]
    written = cli_kube.config_maps["baseline"]["data"]["profile.json"]
    assert written == out.read_text()
    assert Profile.model_validate_json(written).rows == 900
    assert "3 shard(s) on the cluster in" in captured.err
    assert "written to ConfigMap ml/baseline key profile.json" in captured.err
    assert cli_kube.deleted == [("ml", manifest["metadata"]["name"])]


def test_profile_job_prints_to_stdout_without_an_output(
    cli_kube: FakeKube, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MODELROLLOUT_IMAGE", "registry.local/modelrollout:9")
    code = main(
        ["profile", "--job", "--data", "https://d.example/e.jsonl", "--shard-count", "3",
         "--quiet", "--keep-job"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert captured.err == ""
    assert Profile.model_validate_json(captured.out).shards == 3
    container = cli_kube.created[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/modelrollout:9"
    assert cli_kube.deleted == []


def test_a_failed_job_exits_3_naming_the_shard(
    cli_kube: FakeKube, shard_logs, capsys: pytest.CaptureFixture[str]
):
    shard_logs["p-0"] = "modelrollout profile: --data: /data: no such file\n"
    cli_kube.script = lambda _: [pod(0, "Failed")]
    code = main(
        ["profile", "--job", "--data-configmap", "events", "--shard-count", "3", "--keep-job"]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert "modelrollout profile: shard 0 (pod p-0) failed" in err
    assert "/data: no such file" in err
    assert "the Job is kept: kubectl -n default describe job modelrollout-profile-" in err


def test_a_profile_too_large_for_a_config_map_exits_3_naming_the_limit(
    cli_kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    cli_kube.config_maps["baseline"] = {
        "metadata": {"name": "baseline"},
        "data": {"padding": "x" * (1024 * 1024 - 100)},
    }
    out = tmp_path / "p.json"
    code = main(
        ["profile", "--job", "--data-configmap", "events/e.jsonl", "--shard-count", "3",
         "--to-configmap", "baseline", "--output", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3
    assert "--to-configmap: ConfigMap baseline would hold" in err
    assert "1,048,576 bytes, 1 MiB" in err
    assert out.exists()  # the file was written first
    assert cli_kube.config_maps["baseline"]["data"].keys() == {"padding"}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--job", "--data", "e.jsonl", "--shard-count", "2"],
            "--data: 'e.jsonl' is not an http(s) URL",
        ),
        (["--job", "--data-configmap", "events"], "--shard-count: how many pods"),
        (["--job", "--data-configmap", "E", "--shard-count", "2"], "--data-configmap: 'E'"),
        (["--job", "--data-volume", "claim", "--shard-count", "2"], "--data-volume: 'claim'"),
        (
            ["--job", "--data-configmap", "e", "--shard-count", "2", "--shard-index", "1"],
            "--shard-index: each pod of the Job takes its own",
        ),
        (
            ["--job", "--data-configmap", "e", "--shard-count", "2", "--timeout", "soon"],
            "--timeout:",
        ),
        (
            ["--job", "--data-configmap", "e", "--shard-count", "2", "--to-configmap", "b/a b"],
            "--to-configmap:",
        ),
        (["--job", "--merge", "a.json", "--shard-count", "2"], "--merge: merges profile files"),
        (["--data-configmap", "events"], "--data-configmap goes with --job"),
        (["--data", "e.jsonl", "--to-configmap", "b"], "--to-configmap goes with --job"),
        (["--data", "e.jsonl", "-n", "ml"], "--namespace goes with --job"),
        (["--data", "e.jsonl", "--timeout", "1m"], "--timeout goes with --job"),
    ],
)
def test_flags_that_do_not_go_together_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
):
    assert main(["profile", *argv]) == 2
    assert says in capsys.readouterr().err
