#!/usr/bin/env python3
"""``make demo`` and ``make dev``: modelrollout on a real one-node cluster, with live traffic.

``demo`` tells the whole story and prints it in plain words:

1. a one-node cluster starts on this machine (control plane, kubelet, containerd, CNI,
   kube-proxy, CoreDNS, Traefik as the Gateway), the image is built and imported, a real
   Prometheus scrapes the pods, and the operator is installed with its Helm chart;
2. ``v1`` of a model is deployed and reaches Production; a steady open-loop traffic
   generator starts sending live requests through the Gateway;
3. a good ``v2`` is replayed in NonProduction, baked on 20% then 50% of live traffic with
   SLOs evaluated in Prometheus, and promoted;
4. a ``v3`` that starts failing under live traffic is rolled back;
5. a summary: the timeline of decisions, the traffic split measured at the pods at each
   step, and the time from the regression's onset to the candidate's last live request.

``dev`` brings up the same cluster with the operator and the example, and leaves it
running; ``down`` stops everything. It runs with the project's virtualenv (for PyYAML).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml  # the demo runs in the project's virtualenv (make demo)

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".dev" / "bin"
CACHE = Path(os.environ.get("MODELROLLOUT_CACHE", Path.home() / ".cache" / "modelrollout"))
DEMO_NS = "demo"
SYSTEM_NS = "modelrollout-system"
MD = "fraud-scorer"
PROMETHEUS_PORT = 9090
V3_FAULTS = ["--faults-after-requests", "320", "--error-rate", "0.3", "--latency-ms", "150"]


def _load(name: str) -> ModuleType:
    """A sibling script of hack/ as a module."""
    key = f"modelrollout_hack_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, Path(__file__).parent / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


START = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {text}", flush=True)


class DemoError(RuntimeError):
    """A step of the demo did not happen in time."""


@dataclass
class Env:
    """The running pieces the demo talks to."""

    workdir: Path
    kubeconfig: Path
    image_ref: str = ""
    prometheus: Any = None

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [str(BIN / "kubectl"), *args],
            input=input,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def get(self, *what: str) -> dict[str, Any] | None:
        out = self.kubectl("get", *what, "-o", "json", check=False)
        return json.loads(out) if out else None

    def apply(self, obj: dict[str, Any] | str) -> None:
        text = obj if isinstance(obj, str) else json.dumps(obj)
        self.kubectl("apply", "-f", "-", input=text)


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")


# ---------------------------------------------------------------- bring-up
def bring_up(workdir: Path, *, prometheus_port: int = PROMETHEUS_PORT) -> Env:
    """Cluster, image, Prometheus and the operator (Helm chart); returns when all are ready."""
    cluster_mod, images_mod, prom_mod = _load("cluster"), _load("images"), _load("prometheus")
    kubeconfig = workdir / "kubeconfig"
    say("Starting a one-node Kubernetes cluster on this machine (no containers, no VM)")
    cluster = _cluster_of(workdir)
    if cluster.status()["ready"]:
        say("  (the cluster of an earlier `make dev` is running: reusing it)")
    else:
        cluster.stop()  # whatever is left of an earlier run of this directory
        try:
            cluster.start()
        except cluster_mod.ClusterError as err:
            raise DemoError(str(err)) from err
        say(f"  cluster up in {cluster.start_seconds:.1f}s, node Ready")
    kubeconfig.write_text(Path(cluster.kubeconfig).read_text())
    kubeconfig.chmod(0o600)
    say(f"  the Gateway listens at {cluster.gateway_url} (node address, not the uplink)")
    image = images_mod.build_image(REPO, CACHE)
    how = "reused from the cache" if image.cached else f"built in {image.seconds:.0f}s"
    say(f"  image {image.ref} ({how}), imported into containerd")
    cluster.import_image(image.archive)
    env = Env(workdir=workdir, kubeconfig=kubeconfig, image_ref=image.ref)
    prometheus = prom_mod.ClusterPrometheus(workdir / "prometheus", kubeconfig, BIN)
    prometheus.stop()
    url = prometheus.start(port=prometheus_port, daemon=True)
    env.prometheus = prometheus
    say(f"  Prometheus at {url} scrapes the pods (kubernetes_sd_configs, token + cluster CA)")
    install_operator(env)
    return env


def install_operator(env: Env) -> None:
    repo, tag = env.image_ref.rsplit(":", 1)
    helm = [
        str(BIN / "helm"), "upgrade", "--install", "modelrollout",
        str(REPO / "charts" / "modelrollout"),
        "--namespace", SYSTEM_NS, "--create-namespace", "--wait", "--timeout", "120s",
        "--set", f"image.repository={repo}", "--set", f"image.tag={tag}",
        "--set", "resyncSeconds=5", "--set", "logFormat=text",
    ]  # fmt: skip
    t0 = time.monotonic()
    result = subprocess.run(
        helm,
        env={**os.environ, "KUBECONFIG": str(env.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DemoError(f"helm install failed: {result.stderr.strip()}")
    say(f"  operator installed with the Helm chart and Ready in {time.monotonic() - t0:.1f}s")


def apply_model(env: Env, version: str, extra_args: list[str] | None = None) -> None:
    """The demo ModelDeployment at `version` (the model server gets `extra_args`)."""
    manifest = yaml.safe_load((REPO / "examples" / "demo" / "modeldeployment.yaml").read_text())
    manifest["metadata"]["namespace"] = DEMO_NS
    manifest["spec"]["model"]["version"] = version
    container = manifest["spec"]["workload"]["template"]["spec"]["containers"][0]
    args = container["args"]
    args[args.index("--model-version") + 1] = version
    container["args"] = args + (extra_args or [])
    env.apply(manifest)


def status(env: Env) -> dict[str, Any]:
    md = env.get("md", MD, "-n", DEMO_NS) or {}
    found: dict[str, Any] = md.get("status") or {}
    return found


# ---------------------------------------------------------------- watching a release
Counts = dict[tuple[str, str], float]


@dataclass
class Step:
    """One stretch of a release with the same phase and weights."""

    label: str
    started: float
    candidate_weight: int
    counts_start: Counts = field(default_factory=dict)
    counts_from: Counts = field(default_factory=dict)
    counts_to: Counts = field(default_factory=dict)

    def close(self, counts: Counts) -> None:
        """The step ended: a step shorter than the settling time counts from its start."""
        self.counts_to = counts
        if not self.counts_from:
            self.counts_from = self.counts_start

    def split(self) -> str:
        delta = {"stable": 0.0, "candidate": 0.0}
        for (track, pod), value in self.counts_to.items():
            delta[track] += value - self.counts_from.get((track, pod), 0.0)
        total = sum(max(v, 0.0) for v in delta.values())
        if total <= 0:
            return "no live requests"
        share = 100 * max(delta["candidate"], 0.0) / total
        return (
            f"{share:5.1f}% to the candidate ({int(delta['candidate'])} of {int(total)} "
            "live requests counted at the pods)"
        )


class LiveCounter:
    """Requests served so far by each model pod, from Prometheus, remembered after the pod
    is gone (a rolled-back candidate's pods go at once, and their series with them)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.latest: Counts = {}

    def __call__(self) -> Counts:
        query = (
            f'sum by (track, pod) (modelserver_requests_total{{namespace="{DEMO_NS}",'
            'track=~"stable|candidate"})'
        )
        for sample in self.env.prometheus.query(query):
            key = (sample["metric"]["track"], sample["metric"]["pod"])
            self.latest[key] = float(sample["value"][1])
        return dict(self.latest)

    def track(self, name: str) -> float:
        return sum(v for (track, _), v in self().items() if track == name)


def watch_release(
    env: Env, version: str, timeout: float = 300
) -> tuple[dict[str, Any], list[Step]]:
    """Follow a release to its end, printing each decision; returns the final status and the
    weighted steps with the live requests each track served during them."""
    steps: list[Step] = []
    counter = LiveCounter(env)
    seen: tuple[Any, ...] = ()
    step_key: tuple[Any, ...] = ()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = status(env)
        counts = counter()  # every turn, so that pods that go keep their last count
        phase = st.get("phase", "")
        weight = int((st.get("traffic") or {}).get("candidateWeight", 0))
        step = st.get("currentStep")
        ours = st.get("candidateVersion", st.get("stableVersion")) in (version, None)
        key = (phase, step, weight, st.get("message", ""))
        if ours and phase and key != seen:
            seen = key
            say(f"  {phase:<13} weight {weight:>3}%  {st.get('message', '')}")
            measured = measured_values(env, st)
            if measured:
                say(f"  {'':<13}              measured: {measured}")
        if ours and key[:3] != step_key:
            step_key = key[:3]
            if steps and not steps[-1].counts_to:
                steps[-1].close(counts)
            if phase == "Baking" and weight > 0:
                steps.append(
                    Step(f"step {int(step or 0) + 1}: {weight}%", time.monotonic(), weight)
                )
                steps[-1].counts_start = counts
        if steps and not steps[-1].counts_from and time.monotonic() - steps[-1].started > 3:
            # Weights take about half a second to reach Traefik and a scrape is 1 s: the
            # split is counted from 3 s into the step.
            steps[-1].counts_from = counter()
        done_stable = phase == "Production" and st.get("stableVersion") == version
        if done_stable or phase in ("RolledBack", "Failed"):
            if steps and not steps[-1].counts_to:
                steps[-1].close(counter())
            return st, steps
        time.sleep(0.5)
    raise DemoError(f"{version} did not finish within {timeout:.0f}s")


def measured_values(env: Env, st: dict[str, Any]) -> str:
    """What the operator measured for the decision just printed, in one line."""
    message, replay = st.get("message", ""), st.get("replayTest")
    if replay and "replay test" in message and st.get("phase") != "NonProduction":
        return replay_values(env, replay)
    if st.get("phase") in ("Baking", "RolledBack", "Production") and st.get("analysis"):
        parts = []
        for metric in st["analysis"]:
            last = (metric.get("measurements") or [{}])[-1]
            value = last.get("value")
            shown = "no data" if value is None else f"{value:.4g}"
            parts.append(
                f"{metric['name']} {shown} ({metric.get('successful', 0)} passed, "
                f"{metric.get('failed', 0)} failed)"
            )
        return "; ".join(parts)
    return ""


def replay_values(env: Env, replay: str) -> str:
    """A ReplayTest's headline figures."""
    rt = env.get("rt", replay, "-n", DEMO_NS) or {}
    result = (rt.get("status") or {}).get("result")
    if not result:
        return ""
    comparison = result.get("comparison") or {}
    agreement = comparison.get("agreement")
    return (
        f"replay of {result['counts']['sent']} requests at {result['rate']['achieved']:.0f}/s: "
        f"p99 {result['latencyMs']['p99']:.1f} ms, error rate {result.get('errorRate', 0):.3g}"
        + ("" if agreement is None else f", agreement with stable {agreement:.3f}")
    )


def regression_to_rollback(env: Env, since: float) -> tuple[float, float, float] | None:
    """(onset, last live request, seconds between) for v3, from the pods' own counters.

    The onset is the first scrape at which a v3 pod had answered an error; the end is the
    last scrape at which v3's pods had served a new request. Both are wall-clock times of
    1 s scrapes, so the figure is good to about a second.
    """
    now = time.time()
    selector = f'namespace="{DEMO_NS}",version="v3"'
    errors = _range(env, f'sum(modelserver_requests_total{{{selector},code="500"}})', since, now)
    served = _range(env, f"sum(modelserver_requests_total{{{selector}}})", since, now)
    onset = next((t for t, v in errors if v > 0), None)
    if onset is None or not served:
        return None
    last = served[0][0]
    for (_, before), (t, value) in itertools.pairwise(served):
        if value > before:
            last = t
    return onset, last, last - onset


def _range(env: Env, promql: str, start: float, end: float) -> list[tuple[float, float]]:
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode(
        {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1s"}
    )
    with urllib.request.urlopen(f"{env.prometheus.url}/api/v1/query_range?{query}") as resp:
        body = json.loads(resp.read())
    result = body["data"]["result"]
    if not result:
        return []
    return [(float(t), float(v)) for t, v in result[0]["values"]]


# ---------------------------------------------------------------- the story
def story(env: Env) -> None:
    say(f"Deploying v1 of {MD} in namespace {DEMO_NS} (Pod Security: restricted)")
    env.apply((REPO / "examples" / "demo" / "namespace.yaml").read_text())
    for path in ("events-configmap.yaml", "demo/httproute.yaml"):
        env.kubectl("apply", "-n", DEMO_NS, "-f", str(REPO / "examples" / path))
    apply_model(env, "v1")
    watch_release(env, "v1")
    env.kubectl("apply", "-n", DEMO_NS, "-f", str(REPO / "examples" / "demo" / "live-traffic.yaml"))
    env.kubectl("rollout", "status", "deployment/live-traffic", "-n", DEMO_NS, "--timeout=60s")
    live = LiveCounter(env)
    poll(lambda: live.track("stable") > 0, 30, "live traffic at the v1 pods")
    say("Live traffic: 40 requests/s through the Gateway, open loop, served by v1")

    say("Releasing v2 (a good version)")
    apply_model(env, "v2")
    v2, v2_steps = watch_release(env, "v2")
    say("Releasing v3: it passes its replay, then fails under live traffic (30% errors, +150 ms)")
    v3_start = time.time()
    apply_model(env, "v3", V3_FAULTS)
    v3, v3_steps = watch_release(env, "v3")
    timing = poll(
        lambda: regression_to_rollback(env, v3_start - 5), 30, "v3's counters in Prometheus"
    )
    summary(env, v2, v2_steps, v3, v3_steps, timing)


def summary(
    env: Env,
    v2: dict[str, Any],
    v2_steps: list[Step],
    v3: dict[str, Any],
    v3_steps: list[Step],
    timing: tuple[float, float, float],
) -> None:
    print()
    print("=" * 78)
    print("Summary")
    print("=" * 78)
    print("Decisions, as Events on the ModelDeployment:")
    events = env.get("events", "-n", DEMO_NS, "--field-selector", f"involvedObject.name={MD}")
    for event in sorted((events or {}).get("items", []), key=_event_time):
        when = _event_time(event)[11:19]
        print(f"  {when}  {event['reason']:<14} {event['message']}")
    print()
    print(f"v2: {v2.get('phase')} (stable {v2.get('stableVersion')}); traffic split at the pods:")
    for step in v2_steps:
        print(f"  {step.label:<12} {step.split()}")
    print(f"v3: {v3.get('phase')} (stable {v3.get('stableVersion')}): {v3.get('message', '')}")
    for step in v3_steps:
        print(f"  {step.label:<12} {step.split()}")
    onset, last, seconds = timing
    print(
        f"Regression to rollback: v3's pods answered their first error at "
        f"{time.strftime('%H:%M:%S', time.gmtime(onset))} and served their last live request "
        f"at {time.strftime('%H:%M:%S', time.gmtime(last))}: {seconds:.0f} s "
        "(from the pods' counters, 1 s scrapes)."
    )
    print()
    print("The catalog: what was measured of each version (kubectl modelrollout catalog list):")
    listed = subprocess.run(
        [sys.executable, "-m", "modelrollout", "catalog", "list", "-n", DEMO_NS,
         "--kubeconfig", str(env.kubeconfig)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    for line in (listed.stdout or listed.stderr).splitlines():
        print(f"  {line}")
    print(f"Whole demo: {time.monotonic() - START:.0f} s")


def _event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event["metadata"]["creationTimestamp"]
    )


def _cluster_of(workdir: Path) -> Any:
    return _load("cluster").LocalCluster(workdir / "cluster", BIN, daemon=True)


def tear_down(workdir: Path) -> None:
    _load("prometheus").ClusterPrometheus(
        workdir / "prometheus", workdir / "kubeconfig", BIN
    ).stop()
    _cluster_of(workdir).stop()


def dev(env: Env) -> None:
    """The example ModelDeployment on the running cluster (`make dev`)."""
    env.apply((REPO / "examples" / "demo" / "namespace.yaml").read_text())
    env.kubectl("apply", "-n", DEMO_NS, "-f", str(REPO / "examples" / "events-configmap.yaml"))
    env.kubectl("apply", "-n", DEMO_NS, "-f", str(REPO / "examples" / "demo" / "httproute.yaml"))
    apply_model(env, "v1")
    watch_release(env, "v1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("command", choices=["demo", "dev", "down"])
    parser.add_argument("--dir", type=Path, default=REPO / ".dev")
    parser.add_argument("--keep", action="store_true", help="demo: leave the cluster running")
    args = parser.parse_args(argv)
    workdir = args.dir.resolve()
    if args.command == "down":
        tear_down(workdir)
        return 0
    ok = False
    try:
        env = bring_up(workdir)
        if args.command == "demo":
            story(env)
        else:
            dev(env)
        ok = True
    except DemoError as err:
        print(f"error: {err}", file=sys.stderr)
    finally:
        if not ok and not _cluster_of(workdir).status()["ready"]:
            pass  # nothing of ours runs (another cluster holds the node, say): nothing to stop
        elif args.command == "dev" or args.keep:
            print(f"\nThe cluster is running. export KUBECONFIG={workdir / 'kubeconfig'}")
            print(f"  PATH={BIN}:$PATH kubectl get md,rt,pods -n {DEMO_NS}")
            print("Stop everything with: make dev-down")
        else:
            say("Cleaning up: stopping the cluster and removing everything it made")
            tear_down(workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
