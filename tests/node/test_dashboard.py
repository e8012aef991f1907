"""The dashboard end to end: `modelrollout dashboard` against the node's cluster, driven
in Debian's headless Chromium through Playwright. A real ModelDeployment (the operator is
the chart's pod) is replayed, held at a manual gate, baked, and steered from the page's
buttons; each action is read back from the API server. Screenshots of every page, and of
the replay report of the real ReplayTest, are kept under $MODELROLLOUT_ARTIFACTS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from playwright.sync_api import Browser, Page, sync_playwright

from factories import events_configmap
from support.cluster import REPO_ROOT, Cluster
from support.kube import apply, condition
from support.node import OperatorRelease, cli, gated, route, wait_phase
from support.wait import poll_until

CHROMIUM = Path("/usr/bin/chromium")
REPLAY_RATE = {"rate": 25, "count": 150}
"""Six seconds of replay: the charts over time have a line, not a lone point."""
GROUP, VERSION = "modelrollout.io", "v1alpha1"


def artifacts() -> Path:
    found = Path(os.environ.get("MODELROLLOUT_ARTIFACTS") or REPO_ROOT / "build" / "artifacts")
    found.mkdir(parents=True, exist_ok=True)
    return found


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make tools` installs Debian's chromium")
    with sync_playwright() as pw:
        found = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield found
        finally:
            found.close()


@pytest.fixture
def dashboard(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[str]:
    """`modelrollout dashboard -n NAMESPACE` on a free port; its base URL."""
    log = tmp_path / "dashboard.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelrollout", "dashboard", "--port", "0",
             "-n", namespace, "--kubeconfig", str(cluster.kubeconfig)],
            stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        try:
            line = process.stdout.readline()
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            assert found, f"no URL in {line!r}: {log.read_text()}"
            yield found.group(0).rstrip("/")
        finally:
            process.terminate()
            process.wait(timeout=10)
            process.stdout.close()


def rollout(image: str, version: str) -> dict[str, Any]:
    md = gated(image, version)
    md["spec"]["stages"]["nonProduction"]["replay"]["rate"] = REPLAY_RATE
    return md


def md_status(kube_api: client.ApiClient, namespace: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", "md"
    )
    found: dict[str, Any] = obj.get("status") or {}
    return found


def held_at_gate(
    kube_api: client.ApiClient, namespace: str, phase: str, attempt: int, message: str
) -> dict[str, Any]:
    """The status once the rollout waits at a manual gate in ``phase``."""

    def check() -> dict[str, Any] | None:
        status = md_status(kube_api, namespace)
        paused = condition({"status": status}, "Paused") or {}
        waiting = status.get("phase") == phase and paused.get("reason") == "GateWaiting"
        return status if waiting and status.get("attempt", 1) == attempt else None

    found: dict[str, Any] = poll_until(check, timeout=180, message=message)
    return found


def shot(page: Page, name: str) -> Path:
    path = artifacts() / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def click(page: Page, action: str) -> str:
    """Press an action's button; the notice the page then shows."""
    page.locator(f"#{action}-form button").click()
    page.wait_for_selector("#notice")
    return page.locator("#notice").inner_text()


def polyline_points(page: Page) -> list[int]:
    counts: list[int] = page.eval_on_selector_all(
        "svg polyline",
        "lines => lines.map(l => (l.getAttribute('points') || '').trim().split(/\\s+/)"
        ".filter(Boolean).length)",
    )
    return counts


def test_dashboard_shows_and_steers_a_rollout(
    cluster: Cluster,
    namespace: str,
    kube_api: client.ApiClient,
    cluster_operator: OperatorRelease,
    operator_image: str,
    dashboard: str,
    browser: Browser,
) -> None:
    host = f"{namespace}.example"
    apply(cluster, namespace, events_configmap(), route(host), rollout(operator_image, "v1"))
    held_at_gate(kube_api, namespace, "NonProduction", 1, "v1 held at the production gate")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))

    # the overview: name, phase, weights
    page.goto(f"{dashboard}/")
    row = page.locator("#rollouts tbody tr", has_text="md").inner_text()
    traffic = md_status(kube_api, namespace)["traffic"]
    assert "NonProduction" in row
    assert f"{traffic['stableWeight']} % / {traffic['candidateWeight']} %" in row
    assert "GateWaiting" in row
    shot(page, "overview.png")

    # the detail page follows the rollout without a reload: approve v1 from the CLI
    page.goto(f"{dashboard}/md/{namespace}/md")
    assert "GateWaiting" in page.locator("#conditions").inner_text()
    page.evaluate("window.loadedOnce = true")
    before = page.locator("#timeline li").count()
    approved = cli(cluster, namespace, "approve", "--gate", "BeforeProduction")
    assert approved.returncode == 0, approved.stderr
    poll_until(
        lambda: (
            page.locator("#timeline li").count() > before
            and "Production" in page.locator("#status .phase").inner_text()
        ),
        timeout=90,
        message="the live region shows v1 promoted",
    )
    assert page.evaluate("window.loadedOnce") is True  # no reload happened

    # v2 bakes to the gate; the page's buttons steer it
    apply(cluster, namespace, rollout(operator_image, "v2"))
    held_at_gate(kube_api, namespace, "Baking", 1, "v2 baked to the last step, at the gate")
    page.goto(f"{dashboard}/md/{namespace}/md")
    assert "40 % / 60 %" in page.locator("#status").inner_text()
    shot(page, "rollout.png")

    told = click(page, "abort")
    assert "aborting the rollout of md v2" in told
    status = wait_phase(cluster, namespace, "RolledBack", timeout=90, stableVersion="v1")
    assert condition({"status": status}, "RolledBack")["reason"] == "Aborted"

    page.goto(f"{dashboard}/md/{namespace}/md")
    told = click(page, "abort")
    assert "Refused" in told
    assert "md is RolledBack: there is no rollout to abort" in told
    assert page.locator("#notice.error").is_visible()
    shot(page, "refused.png")

    told = click(page, "retry")
    assert "retrying md v2" in told
    held_at_gate(kube_api, namespace, "Baking", 2, "v2 retried: replayed and baked again")

    page.goto(f"{dashboard}/md/{namespace}/md")
    page.locator("#approve-form select[name=gate]").select_option("BeforeProduction")
    told = click(page, "approve")
    assert "approved BeforeProduction for md version v2" in told
    approvals = md_status(kube_api, namespace).get("approvals") or []
    assert {"gate": "BeforeProduction", "version": "v2"} in approvals
    wait_phase(cluster, namespace, "Production", timeout=90, stableVersion="v2")

    told = click(page, "resume")
    assert "resuming md" in told
    assert md_status(kube_api, namespace).get("resumedAt")

    page.goto(f"{dashboard}/md/{namespace}/md")
    assert page.locator("#undo-form option[value=v1]").count() == 1
    told = click(page, "undo")
    assert "reverting md from v2 to v1" in told
    # the operator acts on status.undo at once: its effect is what is read back
    status = wait_phase(cluster, namespace, "RolledBack", timeout=120, stableVersion="v1")
    assert condition({"status": status}, "RolledBack")["reason"] == "Undo"
    assert status["reverted"]["version"] == "v2"
    assert status["reverted"]["toVersion"] == "v1"

    # the ReplayTest of v2's second attempt, with the report's charts over time
    replay = status["replayTest"]
    page.goto(f"{dashboard}/replaytests")
    assert replay in page.locator("#replaytests").inner_text()
    page.goto(f"{dashboard}/replaytests/{namespace}/{replay}")
    assert "Passed" in page.locator("#state").inner_text()
    points = polyline_points(page)
    assert len(points) >= 5, points  # sent/s, ok/s, asked rate; p50, p90, p99
    assert all(n >= 5 for n in points), points
    assert "maxErrorRate" in page.locator("#verdict").inner_text()
    assert "md-stable" in page.locator("#comparison").inner_text()  # compared with stable
    assert page.locator("#errors").is_visible()
    shot(page, "replaytest.png")
    page.goto(f"{dashboard}/md/{namespace}/md")
    shot(page, "rollout-history.png")

    # the catalog: a record per version, v2 with its replay's figures, rolled back by undo
    page.goto(f"{dashboard}/catalog")
    rows = {
        cells[2]: cells
        for row in page.locator("#catalog tbody tr").all()
        if (cells := [c.inner_text() for c in row.locator("td").all()])[0] == namespace
    }
    assert set(rows) >= {"v1", "v2"}, rows
    assert rows["v2"][4] == "RolledBack"
    assert float(rows["v2"][5].replace(",", "")) > 0  # the replay's p99
    assert rows["v1"][4] == "Production"
    shot(page, "catalog.png")
    # nothing was fetched from anywhere but the dashboard itself
    assert asked
    assert all(url.startswith(f"{dashboard}/") for url in asked), set(asked)

    # the replay report of the same run, from the shard's log, as a file in Chromium
    job = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "replaytests", replay
    )["status"]["jobName"]
    log = cluster.kubectl(
        "logs", "-n", namespace, "-l", f"batch.kubernetes.io/job-name={job}", "--tail=-1"
    ).stdout
    source = artifacts() / "replay.log"
    source.write_text(log)
    html = artifacts() / "report.html"
    made = subprocess.run(
        [sys.executable, "-m", "modelrollout", "report", str(source), "--output", str(html)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    page.goto(html.as_uri())
    points = polyline_points(page)
    assert len(points) >= 5, points
    assert all(n >= 5 for n in points), points
    shot(page, "report.png")
    page.close()
