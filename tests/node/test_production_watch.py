"""The production watch: a promoted version that starts failing in production goes back
to the previous version in one step, without a Git change; and kubectl modelrollout undo.

Everything is real: the operator pod from the chart, model pods on the node, live traffic
through Traefik, and the SLO a PromQL query over what a real Prometheus scraped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from support.cluster import Cluster
from support.kube import apply, condition, events, get
from support.node import LiveTraffic, OperatorRelease, baked, cli, live_answers, wait_phase
from support.wait import poll_until

# the error rate of the version under watch, whichever track it runs on
WATCHED_ERRORS = (
    '(sum(rate(modelserver_requests_total{namespace="{{ namespace }}",'
    'version="{{ candidate_version }}",code=~"5.."}[10s])) or vector(0)) / clamp_min('
    'sum(rate(modelserver_requests_total{namespace="{{ namespace }}",'
    'version="{{ candidate_version }}"}[10s])) or vector(0), 0.001)'
)


def watched(image: str, version: str, prometheus_url: str, *extra: str) -> dict[str, Any]:
    """``version`` straight from its replay to production, then watched for five minutes."""
    md = baked(image, version, prometheus_url, *extra)
    del md["spec"]["stages"]["baking"]
    md["spec"]["stages"]["production"] = {
        "watch": {
            "duration": "5m",
            "analysis": {
                "provider": {"address": prometheus_url},
                "interval": "2s",
                "slos": [
                    {
                        "name": "watched-errors",
                        "query": WATCHED_ERRORS,
                        "thresholdRange": {"max": 0.05},
                        "failureLimit": 0,
                    }
                ],
            },
        }
    }
    return md


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_production_trigger_reverts_to_the_previous_version_and_undo_does_by_hand(
    cluster: Cluster,
    namespace: str,
    cluster_operator: OperatorRelease,
    operator_image: str,
    prom: str,
) -> None:
    host = f"{namespace}.example"
    live = LiveTraffic(cluster.gateway_url, host=host, rate=25)
    with live.running():
        # v2 passes its replay (100 requests) and serves 150 live requests well once
        # promoted, then half of its answers are errors.
        apply(
            cluster,
            namespace,
            watched(operator_image, "v2", prom, "--faults-after-requests", "250",
                    "--error-rate", "0.5"),
        )  # fmt: skip
        status = wait_phase(cluster, namespace, "Production", stableVersion="v2", timeout=180)
        assert [r["version"] for r in status["revisions"]] == ["v1"]
        status = wait_phase(cluster, namespace, "RolledBack", timeout=180, stableVersion="v1")
        rolled = condition({"status": status}, "RolledBack")
        assert rolled is not None
        assert rolled["reason"] == "SLOBreach", rolled
        assert "watched-errors" in rolled["message"]
        triggered_at = seconds(rolled["lastTransitionTime"])
        seen = len(live.outcomes)
        poll_until(
            lambda: live_answers(live, since=seen)[-20:] == ["v1"] * 20,
            timeout=60,
            interval=0.2,
            message="the last 20 live answers all from v1",
        )
    # the revert time: from the trigger (its condition's time, to the second) to the
    # first of the live answers that have all come from v1 since
    outcomes = live.outcomes
    last_other = max(i for i, (_, code, version) in enumerate(outcomes) if version != "v1"
                     or code != 200)  # fmt: skip
    reverted_in = outcomes[last_other + 1][0] - triggered_at
    print(f"\nrevert: trigger to all live answers from v1 in {reverted_in:.1f} s (+0/-1 s)")
    assert reverted_in < 60

    assert status["reverted"]["version"] == "v2"
    assert status["reverted"]["toVersion"] == "v1"
    assert [h["outcome"] for h in status["history"]][:1] == ["Reverted"]
    in_sync = condition({"status": status}, "InSync")
    assert in_sync is not None
    assert in_sync["status"] == "False", in_sync
    assert in_sync["reason"] == "SpecDiffers"
    assert events(cluster, namespace, "Reverted")
    deployment = get(cluster, namespace, "deployment", "md-stable")
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "model"
    ]
    assert "--faults-after-requests" not in container["args"]
    # the spec still asks for v2: it is not rolled out again
    spec = get(cluster, namespace, "md", "md")["spec"]
    assert spec["model"]["version"] == "v2"
    assert get(cluster, namespace, "md", "md")["status"].get("candidateVersion") is None

    # v3, healthy, is promoted over v1 (v2 was never kept); undo puts v1 back by hand
    apply(cluster, namespace, watched(operator_image, "v3", prom))
    status = wait_phase(cluster, namespace, "Production", stableVersion="v3", timeout=180)
    assert [r["version"] for r in status["revisions"]] == ["v1"]
    done = cli(cluster, namespace, "undo", "--to-version", "v0")
    assert done.returncode != 0
    assert "v0" in done.stderr + done.stdout, done
    done = cli(cluster, namespace, "undo")
    assert done.returncode == 0, done.stderr
    status = wait_phase(cluster, namespace, "RolledBack", timeout=120, stableVersion="v1")
    assert condition({"status": status}, "RolledBack")["reason"] == "Undo"
    assert status["reverted"]["version"] == "v3"
