"""Table tests of the bake: steps, weights, SLOs, triggers, gates, holds and abort."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from factories import build_md
from modelrollout.core import analysis, presets, rollout, workloads
from modelrollout.core.api.modeldeployment import Approval, ModelDeployment, ThresholdRange
from modelrollout.core.conditions import get_condition
from rollout_helpers import NOW, objects, observe, promoted, ready, replay, with_status

SLO = {
    "name": "errors",
    "query": "sum(x)",
    "thresholdRange": {"max": 0.01},
    "failureLimit": 1,
    "inconclusiveLimit": 1,
}
STEPS = [{"weight": 10, "duration": "1m"}, {"weight": 50, "duration": "1m"}]


def v2(extra: dict[str, Any] | None = None, *, analysis: bool = True) -> ModelDeployment:
    baking: dict[str, Any] = {"steps": STEPS}
    if analysis:
        baking["analysis"] = {
            "provider": {"address": "http://prom:9090"},
            "interval": "30s",
            "slos": [SLO],
        }
    patch: dict[str, Any] = {
        "spec": {
            "model": {"version": "v2"},
            "workload": {"replicas": 4},
            "stages": {"baking": baking},
        }
    }
    md = build_md(patch)
    if extra:
        md = ModelDeployment.model_validate(_merge(md.model_dump(by_alias=True), extra))
    return md


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def baking(md: ModelDeployment) -> rollout.Decision:
    """Drive v2 from a promoted v1 through its replay into the bake."""
    stable = promoted(build_md({"spec": {"workload": {"replicas": 4}}}))
    started = observe(with_status(md, stable), stable=ready(md, "old"))
    created = observe(with_status(md, started.status), stable=ready(md, "old"), candidate=ready(md))
    name = created.create_replay["metadata"]["name"]
    return observe(
        with_status(md, created.status),
        stable=ready(md, "old"),
        candidate=ready(md),
        replay=replay(name, "Succeeded", "Passed"),
    )


def later(
    md: ModelDeployment,
    decision: rollout.Decision,
    seconds: float,
    probes: dict[str, rollout.Probe] | None = None,
) -> rollout.Decision:
    name = decision.status.replay_test
    return observe(
        with_status(md, decision.status),
        stable=ready(md, "old"),
        candidate=ready(md),
        replay=replay(name, "Succeeded", "Passed") if name else None,
        now=NOW + timedelta(seconds=seconds),
        measurements=probes,
    )


def test_bake_starts_at_the_first_weight_and_leaves_the_split_to_the_router():
    md = v2()
    d = baking(md)
    assert d.status.phase == "Baking"
    assert d.status.current_step == 0
    assert (d.status.traffic.stable_weight, d.status.traffic.candidate_weight) == (90, 10)
    objs = objects(d)
    # the ReplicaRatio router sets the replicas to the split: the owned objects leave them out
    assert "replicas" not in objs["Deployment/fraud-stable"]["spec"]
    assert "replicas" not in objs["Deployment/fraud-candidate"]["spec"]
    # the live Service now selects both tracks: replicas carry the split
    assert objs["Service/fraud"]["spec"]["selector"] == {workloads.LABEL_NAME: "fraud"}
    assert "Baking" in [e.reason for e in d.events]


def test_the_owned_objects_take_the_replicas_back_when_the_bake_ends():
    md = v2(analysis=False)
    d = later(md, later(md, baking(md), 61), 122)
    assert d.status.phase == "Production"
    objs = objects(d)
    assert objs["Deployment/fraud-stable"]["spec"]["replicas"] == 4
    assert objs["Deployment/fraud-candidate"]["spec"]["replicas"] == 0
    assert objs["Service/fraud"]["spec"]["selector"][workloads.LABEL_TRACK] == "stable"


def test_gateway_router_keeps_full_pools_and_live_service_on_stable():
    md = v2({"spec": {"traffic": {"router": "GatewayAPI", "gatewayAPI": {"httpRoute": "route"}}}})
    objs = objects(baking(md))
    assert objs["Deployment/fraud-stable"]["spec"]["replicas"] == 4
    assert objs["Deployment/fraud-candidate"]["spec"]["replicas"] == 4
    assert objs["Service/fraud"]["spec"]["selector"][workloads.LABEL_TRACK] == "stable"


def test_steps_advance_after_their_duration_and_an_analysis():
    md = v2()
    d = baking(md)
    held = later(md, d, 30)  # no measurement yet and the step is not over
    assert held.status.current_step == 0
    measured = later(md, held, 61, {"errors": (0.001, None)})
    assert measured.status.current_step == 1
    assert measured.status.traffic.candidate_weight == 50
    assert "StepAdvanced" in [e.reason for e in measured.events]
    tally = measured.status.analysis[0]
    assert (tally.name, tally.successful, tally.failed) == ("errors", 1, 0)
    done = later(md, measured, 200, {"errors": (0.002, None)})
    assert done.status.phase == "Production"
    assert done.status.stable_version == "v2"
    assert done.status.traffic.candidate_weight == 0
    assert objects(done)["Service/fraud"]["spec"]["selector"][workloads.LABEL_TRACK] == "stable"


def test_without_analysis_steps_only_wait():
    md = v2(analysis=False)
    d = baking(md)
    assert later(md, d, 59).status.current_step == 0
    assert later(md, d, 61).status.current_step == 1


@pytest.mark.parametrize(
    ("probes", "reason"),
    [
        ([(0.5, None), (0.5, None)], "SLOBreach"),  # failureLimit 1: the second failure fires
        ([(None, "boom")] * 5, "SLOBreach"),  # consecutive errors past the default limit 4
    ],
)
def test_failing_slo_rolls_back(probes, reason):
    md = v2()
    d = baking(md)
    for i, probe in enumerate(probes):
        d = later(md, d, 31 * (i + 1), {"errors": probe})
    assert d.status.phase == "RolledBack"
    assert get_condition(d.status.conditions, "RolledBack").reason == reason
    assert d.status.traffic.candidate_weight == 0
    objs = objects(d)
    assert objs["Deployment/fraud-candidate"]["spec"]["replicas"] == 0
    assert objs["Deployment/fraud-stable"]["spec"]["replicas"] == 4


def test_one_failure_within_the_limit_does_not_roll_back():
    md = v2()
    d = later(md, baking(md), 31, {"errors": (0.5, None)})
    assert d.status.phase == "Baking"
    assert d.status.analysis[0].failed == 1


def test_no_data_holds_the_bake_until_resumed():
    md = v2()
    d = baking(md)
    d = later(md, d, 31, {"errors": (None, None)})
    d = later(md, d, 62, {"errors": (float("nan"), None)})
    paused = get_condition(d.status.conditions, "Paused")
    assert (paused.status, paused.reason) == ("True", "Inconclusive")
    assert [e.reason for e in d.events].count("Inconclusive") == 1
    held = later(md, d, 200)
    assert held.status.current_step == 0, "a held bake does not advance"
    assert held.events == []
    resumed_status = held.status.model_copy(update={"resumed_at": "2026-11-22T13:00:00Z"})
    resumed = observe(
        with_status(md, resumed_status),
        stable=ready(md, "old"),
        candidate=ready(md),
        now=NOW + timedelta(hours=1),
    )
    assert get_condition(resumed.status.conditions, "Paused").status == "False"
    assert resumed.status.analysis[0].inconclusive == 0


def test_drift_trigger_rolls_back_at_once():
    md = v2(
        {
            "spec": {
                "rollback": {
                    "triggers": [
                        {
                            "name": "drift",
                            "type": "Drift",
                            "drift": {"query": "max(d)", "thresholdRange": {"max": 0.2}},
                        }
                    ]
                }
            }
        }
    )
    d = later(md, baking(md), 31, {"errors": (0.0, None), "drift": (0.35, None)})
    assert d.status.phase == "RolledBack"
    rolled = get_condition(d.status.conditions, "RolledBack")
    assert rolled.reason == "TriggerDrift"
    assert "0.35" in rolled.message


def test_rollback_off_pauses_instead():
    md = v2({"spec": {"rollback": {"automatic": False}}})
    d = baking(md)
    d = later(md, d, 31, {"errors": (0.5, None)})
    d = later(md, d, 62, {"errors": (0.5, None)})
    assert d.status.phase == "Baking"
    assert get_condition(d.status.conditions, "Paused").reason == "SLOBreach"


def test_manual_gates_wait_for_approval_of_the_version():
    md = v2({"spec": {"gates": {"beforeBaking": "Manual", "beforeProduction": "Manual"}}})
    d = baking(md)
    assert d.status.phase == "NonProduction"
    assert get_condition(d.status.conditions, "Paused").reason == "GateWaiting"
    assert [e.reason for e in d.events].count("GateWaiting") == 1
    again = later(md, d, 10)
    assert again.status.phase == "NonProduction"
    assert "GateWaiting" not in [e.reason for e in again.events], "announced once"
    other = md.model_copy(deep=True)
    other.spec.approvals = [Approval(gate="BeforeBaking", version="v1")]
    assert later(other, again, 20).status.phase == "NonProduction", "another version's approval"
    approved = md.model_copy(deep=True)
    approved.spec.approvals = [Approval(gate="BeforeBaking", version="v2")]
    d = later(approved, again, 20)
    assert d.status.phase == "Baking"
    d = later(approved, d, 100, {"errors": (0.0, None)})
    d = later(approved, d, 200, {"errors": (0.0, None)})
    assert d.status.phase == "Baking"
    assert get_condition(d.status.conditions, "Paused").reason == "GateWaiting"
    status = d.status.model_copy(
        update={"approvals": [Approval(gate="BeforeProduction", version="v2")]}
    )
    done = observe(
        with_status(approved, status),
        stable=ready(md, "old"),
        candidate=ready(md),
        now=NOW + timedelta(seconds=300),
    )
    assert done.status.phase == "Production"


def test_abort_rolls_back_from_any_stage():
    md = v2()
    d = baking(md)
    aborted = d.status.model_copy(update={"aborted": True})
    out = observe(with_status(md, aborted), stable=ready(md, "old"), candidate=ready(md))
    assert out.status.phase == "RolledBack"
    assert get_condition(out.status.conditions, "RolledBack").reason == "Aborted"


def test_analysis_is_due_only_while_baking():
    md = v2()
    d = baking(md)
    assert rollout.analysis_due(with_status(md, d.status), NOW)
    measured = later(md, d, 1, {"errors": (0.0, None)})
    assert not rollout.analysis_due(with_status(md, measured.status), NOW + timedelta(seconds=2))
    assert rollout.analysis_due(with_status(md, measured.status), NOW + timedelta(seconds=32))
    assert not rollout.analysis_due(build_md(), NOW)
    assert set(rollout.measurement_queries(md)) == {"errors"}


def with_anomaly(action: str = "Rollback") -> ModelDeployment:
    trigger = {
        "name": "latency-band",
        "type": "Anomaly",
        "action": action,
        "anomaly": {"query": "p99(candidate)", "historyQuery": "p99(stable)"},
    }
    return v2({"spec": {"rollback": {"triggers": [trigger]}}})


BAND = ThresholdRange(min=4.0, max=6.0)


@pytest.mark.parametrize(
    ("action", "value", "phase", "paused", "events"),
    [
        ("Rollback", 5.0, "Baking", None, []),
        ("Rollback", 15.0, "RolledBack", None, ["RolledBack"]),
        ("Hold", 15.0, "Baking", "TriggerAnomaly", ["TriggerAnomaly"]),
        ("Notify", 15.0, "Baking", None, ["TriggerAnomaly"]),
    ],
)
def test_an_anomaly_band_acts_as_its_trigger_says(action, value, phase, paused, events):
    md = with_anomaly(action)
    probe = rollout.Probe(value, bounds=BAND, basis="band [4, 6] around 5 (24 none samples)")
    d = later(md, baking(md), 31, {"errors": (0.0, None), "latency-band": probe})
    assert d.status.phase == phase
    held = get_condition(d.status.conditions, "Paused")
    assert (held.reason if held is not None and held.status == "True" else None) == paused
    assert [e.reason for e in d.events if e.reason in ("RolledBack", "TriggerAnomaly")] == events
    (tally,) = [t for t in d.status.analysis if t.name == "latency-band"]
    latest = tally.measurements[-1]
    assert latest.value == value
    assert "band [4, 6]" in latest.message  # what the band was learned from is in the status


def test_a_notify_trigger_does_not_hold_the_step():
    md = with_anomaly("Notify")
    bad = rollout.Probe(15.0, bounds=BAND, basis="band")
    d = later(md, baking(md), 31, {"errors": (0.0, None), "latency-band": bad})
    d = later(md, d, 62, {"errors": (0.0, None), "latency-band": bad})
    assert d.status.current_step == 1  # the first step ended despite the failed band


def test_no_band_yet_is_inconclusive_never_a_pass():
    md = with_anomaly()
    probe = rollout.Probe(None, basis="no band yet: 3 comparable samples of history, 12 needed")
    d = later(md, baking(md), 31, {"errors": (0.0, None), "latency-band": probe})
    (tally,) = [t for t in d.status.analysis if t.name == "latency-band"]
    assert tally.measurements[-1].phase == "Inconclusive"
    assert "12 needed" in tally.measurements[-1].message
    d = later(md, d, 62, {"errors": (0.0, None), "latency-band": probe})
    assert d.status.current_step == 0  # an inconclusive check holds the step


def test_live_window_triggers_alone_make_an_analysis_due():
    md = v2(
        {
            "spec": {
                "stages": {"baking": {"analysis": {"slos": []}}},
                "monitoring": {"capture": {"enabled": True}},
                "rollback": {
                    "triggers": [{"name": "p", "type": "PredictionDrift", "predictionDrift": {}}]
                },
            }
        }
    )
    assert rollout.measurement_queries(md) == {}
    d = baking(md)
    assert rollout.analysis_due(with_status(md, d.status), NOW)
    drifted = rollout.Probe(1.0, bounds=ThresholdRange(max=0.0), basis="drifted: @prediction")
    out = later(md, d, 31, {"p": drifted})
    assert out.status.phase == "RolledBack"
    assert get_condition(out.status.conditions, "RolledBack").reason == "TriggerPredictionDrift"


@pytest.mark.parametrize(
    ("step", "rounds", "measured"),
    [
        # (window step, seconds of each analysis round after the bake starts, measurements kept)
        (None, [31, 62, 93], 3),  # every analysis interval
        ("30s", [31, 62, 93], 3),  # a step no longer than the interval changes nothing
        ("90s", [31, 62, 93], 1),  # 31 measured; 62 and 93 are within 90 s of it
        ("90s", [31, 62, 93, 124], 2),  # 124 is 93 s after 31: measured again
    ],
)
def test_a_live_window_is_measured_once_per_step(step, rounds, measured):
    window = {"size": "5m", **({"step": step} if step else {})}
    md = v2(
        {
            "spec": {
                "stages": {"baking": {"analysis": {"slos": []}}},
                "monitoring": {"capture": {"enabled": True}},
                "rollback": {
                    "triggers": [
                        {"name": "p", "type": "PredictionDrift",
                         "predictionDrift": {"window": window}}
                    ]
                },
            }
        }
    )  # fmt: skip
    d = baking(md)
    fine = rollout.Probe(0.0, bounds=ThresholdRange(max=0.0), basis="no feature drifted")
    for seconds in rounds:
        now = NOW + timedelta(seconds=seconds)
        current = with_status(md, d.status)
        assert rollout.analysis_due(current, now)
        probes = {"p": fine} if rollout.measured_this_round(current, "p", now) else {}
        d = later(md, d, seconds, probes)
        assert d.status.phase in {"Baking", "Production"}
    (tally,) = d.status.analysis
    assert (tally.successful, len(tally.measurements)) == (measured, measured)


def test_the_status_shows_the_query_a_preset_ran():
    slos = [
        {"name": "errors", "query": "sum(x)", "thresholdRange": {"max": 1}},
        {"name": "p99", "preset": "latency-p99", "runtime": "kserve", "thresholdRange": {"max": 1}},
    ]
    md = v2({"spec": {"stages": {"baking": {"analysis": {"slos": slos}}}}})
    ran = analysis.render_query(
        presets.expand("latency-p99", "kserve"),
        {"namespace": "shop", "candidate_service": "md-candidate", "interval": "30s"},
        field="x",
    )
    probes = {"errors": (0.0, None), "p99": rollout.Probe(0.01, query=ran)}
    d = later(md, baking(md), 31, probes)
    tallies = {t.name: t for t in d.status.analysis}
    assert tallies["p99"].query == ran
    assert tallies["p99"].successful == 1
    assert tallies["errors"].query == ""  # a query SLO shows its query in the spec
    d = later(md, d, 62, {"errors": (0.0, None), "p99": rollout.Probe(0.02, query=ran)})
    assert {t.name: t for t in d.status.analysis}["p99"].query == ran  # kept by each tally
