"""``modelrollout capture`` as a sidecar process: ready line, metrics, SIGTERM, only --dir."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from support.capture import PREDICT, Sidecar, post
from support.wait import poll_until


def scrape(metrics: str) -> str:
    with urllib.request.urlopen(f"{metrics}/metrics", timeout=10) as response:
        return response.read().decode()


def test_sigterm_finishes_the_file_and_nothing_is_written_elsewhere(
    tmp_path: Path, sidecar: Sidecar
):
    instance = {"instances": [[0.3, -1.2, 0.8, 0.1]]}
    answers = [post(sidecar.url + PREDICT, instance, {"X-Inference-Id": f"i{n}"}) for n in range(5)]
    assert answers == [(200, f"i{n}") for n in range(5)]

    def written() -> str | None:
        text = scrape(sidecar.metrics)
        return text if "modelrollout_capture_records_written_total 5.0" in text else None

    text = poll_until(written, timeout=10, message="five records written")
    assert 'modelrollout_capture_requests_total{code="200"} 5.0' in text
    assert 'modelrollout_capture_info{track="candidate",version="v1"} 1.0' in text
    with urllib.request.urlopen(f"{sidecar.metrics}/healthz", timeout=10) as health:
        assert health.read() == b"ok"
    (part,) = (tmp_path / "captures").iterdir()
    assert re.fullmatch(r"pod-a-\d{8}T\d{6}Z-000001\.jsonl\.part", part.name)

    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=30) == 0
    (done,) = (tmp_path / "captures").iterdir()
    assert done.name == part.name.removesuffix(".part")
    records = [json.loads(line) for line in done.read_text().splitlines()]
    assert [(r["inferenceId"], r["version"], r["track"]) for r in records] == [
        (f"i{n}", "v1", "candidate") for n in range(5)
    ]
    assert list((tmp_path / "cwd").iterdir()) == []
    log = sidecar.log.read_text()
    assert "stopped: 5 requests; records: 5 written, 0 dropped, 0 skipped, 0 sampled out" in log


def test_a_port_in_use_is_a_run_error_naming_the_flag(tmp_path: Path, sidecar: Sidecar):
    port = sidecar.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "modelrollout.cli.capture", "--dir", str(tmp_path / "other"),
         "--listen", f"127.0.0.1:{port}", "--metrics-listen", "off"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3
    assert f"--listen: cannot listen on 127.0.0.1:{port}" in done.stderr


@pytest.mark.parametrize(
    "sidecar",
    [["--labels-file", "{tmp}/labels.jsonl", "--labels-interval", "100ms"]],
    indirect=True,
)
def test_the_live_window_profiles_answers_and_joins_late_labels(tmp_path: Path, sidecar: Sidecar):
    ids = []
    for i in range(40):
        status, inference_id = post(
            sidecar.url + PREDICT, {"instances": [[i / 10, 1.0, -1.0, 0.5]]},
            headers={"X-Inference-Id": f"req-{i}"},
        )  # fmt: skip
        assert status == 200
        ids.append(inference_id)
    assert ids[0] == "req-0"  # the client's own id is kept

    def window() -> dict:
        with urllib.request.urlopen(
            f"{sidecar.metrics}/monitoring/window?seconds=600", timeout=10
        ) as response:
            return json.loads(response.read())

    seen = poll_until(
        lambda: (w := window())["events"] == 40 and w, timeout=30, message="40 events"
    )
    assert seen["profile"]["rows"] == 40
    assert {"instances.0.0", "@prediction"} <= set(seen["profile"]["features"])
    assert seen["quality"]["labeled"] == 0  # no label has arrived yet

    # The labels arrive later: half of them say the answer was wrong.
    def recorded() -> dict[str, float]:
        found = {}
        for path in (tmp_path / "captures").glob("*.jsonl*"):  # the open file ends in .part
            for record in map(json.loads, path.read_text().splitlines()):
                found[record["inferenceId"]] = record["response"]["payload"]["predictions"][0]
        return found

    predictions = poll_until(
        lambda: (found := recorded()).keys() >= set(ids) and found,
        timeout=30,
        message="every answer recorded",
    )
    with (tmp_path / "labels.jsonl").open("w") as out:
        for n, inference_id in enumerate(ids):
            right = int(predictions[inference_id] >= 0.5)
            label = right if n % 2 else 1 - right
            out.write(json.dumps({"inferenceId": inference_id, "label": label}) + "\n")
    joined = poll_until(
        lambda: (w := window())["quality"]["labeled"] == 40 and w, timeout=30, message="40 labels"
    )
    assert joined["quality"]["correct"] == 20
