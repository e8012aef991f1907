"""Capture proxy benchmark: what ``modelrollout capture`` adds to every request.

Run with ``.venv/bin/python bench/capture.py``. It builds ``bench/fastproxy`` with Go into
``$MODELROLLOUT_CACHE/bench-bin`` (default ``~/.cache/modelrollout``). Everything runs on
127.0.0.1 and every process started here is stopped before it returns.

``modelrollout replay`` (open loop; latency measured from each request's intended send
time, service time from its actual send) sends the same events at each rate in
``--rates`` to the Python model server (``python -m modelrollout.modelserver``) along five
paths:

* ``direct``: straight to the model;
* ``hop``: through ``bench/fastproxy``, the smallest reverse proxy Go's standard library
  makes. It is the cost of one more process on the request path on this machine,
  whatever that process does;
* ``full``: through ``modelrollout capture --no-lean-path``, aiohttp's server and client
  for every request, recording every request;
* ``uvloop``: through ``modelrollout capture --event-loop uvloop``, the lean path on
  uvloop's event loop, recording every request;
* ``capture``: through ``modelrollout capture`` as it ships (the lean path on Python's own
  event loop), recording every request to a plain file.

Besides latency, each run reads the CPU time (user + system, from ``/proc``) that the
proxy and the model used, per request answered.

The load generator runs on core 0, the model and the proxies on core 1 (``taskset``; a
sidecar shares its pod's CPU with the model), all at nice -10 so that the other work of a
shared machine takes less of the cores. Each round runs every path once for ``--seconds``,
in an order that rotates from round to round; a path's added latency is the difference
from ``direct`` in the same round, and the median over the rounds is reported. A shared
machine stalls now and then, and a stall moves a run's p99 by itself, so the median over
all seconds of each second's p99 is reported too, and the proxy's own histogram of the
time it adds (its handling of a request minus the wait for the model).

Then once more at the first rate through a proxy whose disk is made slow: every write of
the writer thread first sleeps ``--write-delay-ms``. The writer falls behind, its queue
fills, and the records that do not fit are dropped and counted; requests are not slower
and none fails.

Results go to ``bench/results/capture.json`` and to the capture section of
``docs/benchmarks.md`` (between its markers; appended if absent).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MODELROLLOUT_CACHE", Path.home() / ".cache" / "modelrollout"))
BIN = CACHE / "bench-bin"
PREDICT = "/v1/models/model:predict"
START = "<!-- capture benchmark: start -->"
END = "<!-- capture benchmark: end -->"
PATHS = ("direct", "hop", "full", "uvloop", "capture")
PATH_NAMES = {
    "direct": "straight to the model",
    "hop": "through a minimal Go reverse proxy",
    "full": "through `capture --no-lean-path` (aiohttp)",
    "uvloop": "through `capture --event-loop uvloop` (lean path)",
    "capture": "through `capture` (lean path)",
}
PROXY_FLAGS = {"full": ("--no-lean-path",), "uvloop": ("--event-loop", "uvloop"), "capture": ()}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NICE = "-10"
"""Every process of the benchmark runs at this niceness, so that the other work of a shared
machine takes less of its cores (as a pod's CPU request would ensure)."""


def log(message: str) -> None:
    print(f"[bench capture] {message}", file=sys.stderr, flush=True)


def pinned(cpu: str, *command: str) -> list[str]:
    return ["nice", "-n", NICE, "taskset", "-c", cpu, *command]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fastproxy() -> str:
    """``bench/fastproxy`` built with Go (standard library only), rebuilt when edited."""
    BIN.mkdir(parents=True, exist_ok=True)
    binary = BIN / "fastproxy"
    source = ROOT / "bench" / "fastproxy"
    newest = max(path.stat().st_mtime for path in source.iterdir())
    if not binary.exists() or binary.stat().st_mtime < newest:
        log("building bench/fastproxy")
        subprocess.run(["go", "build", "-o", str(binary), "."], check=True, cwd=source)
    return str(binary)


def wait_http(url: str, child: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {child.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in time")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used (``nice`` and ``taskset`` exec in place,
    so the pid started is the server's own)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextmanager
def process(command: list[str], log_path: Path, ready_url: str) -> Iterator[int]:
    with log_path.open("wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(ready_url, child)
        yield child.pid
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


@contextmanager
def model_server(workdir: Path, cpus: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = pinned(cpus, sys.executable, "-m", "modelrollout.modelserver", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    with process(command, workdir / "model.log", f"{base}/healthz") as pid:
        yield base, pid


@contextmanager
def hop_proxy(workdir: Path, upstream: str, cpus: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = pinned(cpus, fastproxy(), "-upstream", upstream, "-port", str(port))
    base = f"http://127.0.0.1:{port}"
    with process(command, workdir / "hop.log", f"{base}/healthz") as pid:
        yield base, pid


@contextmanager
def capture_proxy(
    workdir: Path,
    upstream: str,
    name: str,
    cpus: str,
    *,
    sample: float = 1.0,
    write_delay_ms: float = 0.0,
    queue_records: int = 10_000,
    flags: Sequence[str] = (),
) -> Iterator[tuple[str, str, Path, int]]:
    port, metrics_port = free_port(), free_port()
    directory = workdir / name
    command = pinned(
        cpus,
        sys.executable, str(Path(__file__).resolve()), "proxy",
        "--write-delay-ms", str(write_delay_ms), "--",
        "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
        "--metrics-listen", f"127.0.0.1:{metrics_port}", "--dir", str(directory),
        "--model-version", "v1", "--track", "stable",
        "--sample", str(sample), "--queue-records", str(queue_records), *flags,
    )  # fmt: skip
    metrics = f"http://127.0.0.1:{metrics_port}"
    with process(command, workdir / f"{name}.log", f"{metrics}/healthz") as pid:
        yield f"http://127.0.0.1:{port}", metrics, directory, pid


def write_events(path: Path, n: int = 1000) -> Path:
    rng = random.Random(7)
    with path.open("w") as out:
        for i in range(n):
            x = [round(rng.gauss(0, 1), 3) for _ in range(4)]
            event = {"timestamp": 1714521600 + i / 100, "payload": {"instances": [x]}}
            out.write(json.dumps(event) + "\n")
    return path


def replay(
    url: str, events: Path, workdir: Path, *, rate: float, seconds: float, cpus: str
) -> dict[str, Any]:
    output = workdir / "replay.json"
    output.unlink(missing_ok=True)
    subprocess.run(
        pinned(
            cpus,
            sys.executable, "-m", "modelrollout.cli.replay", "replay",
            "--events", str(events), "--target", url,
            "--rate", str(rate), "--duration", f"{seconds}s",
            "--concurrency", "256", "--quiet", "--output", str(output),
        ),
        check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(output.read_text())
    counts = result["counts"]
    return {
        "scheduled": counts["scheduled"],
        "ok": counts["ok"],
        "failed": counts["scheduled"] - counts["ok"],
        "achieved": result["rate"]["achieved"],
        "serviceP50": result["serviceTimeMs"]["p50"],
        "serviceP99": result["serviceTimeMs"]["p99"],
        "serviceP999": result["serviceTimeMs"]["p999"],
        "latencyP50": result["latencyMs"]["p50"],
        "latencyP99": result["latencyMs"]["p99"],
        "secondP99s": [p["p99Ms"] for p in result["timeline"] if p.get("p99Ms") is not None],
    }


def proxy_metrics(metrics_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "modelrollout_capture_added_latency_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith(("_total", "_sum", "_count")):
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return {
        "requests": values.get("modelrollout_capture_requests_total", 0.0),
        "written": values.get("modelrollout_capture_records_written_total", 0.0),
        "dropped": values.get("modelrollout_capture_records_dropped_total", 0.0),
        "addedSum": values.get("modelrollout_capture_added_latency_seconds_sum", 0.0),
        "addedCount": values.get("modelrollout_capture_added_latency_seconds_count", 0.0),
        "addedBuckets": sorted(buckets),
    }


def since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The proxy's counts and added-latency histogram between two scrapes."""
    count = after["addedCount"] - before["addedCount"]
    earlier = dict(before["addedBuckets"])
    cumulative = [(le, n - earlier.get(le, 0.0)) for le, n in after["addedBuckets"]]
    share = {f"{le * 1000:g}ms": n / max(count, 1.0) for le, n in cumulative if le <= 0.005}
    return {
        "requests": after["requests"] - before["requests"],
        "written": after["written"] - before["written"],
        "dropped": after["dropped"] - before["dropped"],
        "addedMeanMs": (after["addedSum"] - before["addedSum"]) / max(count, 1.0) * 1000,
        "addedWithin": share,
    }


def count_lines(directory: Path) -> int:
    total = 0
    for path in directory.iterdir():
        if path.name.endswith(".jsonl"):
            with path.open("rb") as handle:
                total += sum(1 for _ in handle)
    return total


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent running processes, or taken by the
    hypervisor, so far (``/proc/stat``: user, nice, system and steal). Interrupt time is
    left out: the loopback traffic of the benchmark itself is handled there, and no
    process is charged for it."""
    user, nice, system, _, _, _, _, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + steal) / CLOCK_TICKS


def own_cpu(pids: dict[str, int]) -> float:
    """CPU seconds used by the benchmark itself: its servers, its finished children (the
    replays) and this process."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    this = resource.getrusage(resource.RUSAGE_SELF)
    servers = sum(cpu_seconds(pid) for pid in set(pids.values()))
    return servers + children.ru_utime + children.ru_stime + this.ru_utime + this.ru_stime


def wait_for_quiet(args: argparse.Namespace) -> float:
    """Wait (at most ``--quiet-wait`` seconds) until other work uses less than
    ``--max-foreign`` of the machine over one second; the share last seen."""
    deadline = time.monotonic() + args.quiet_wait
    cores = os.cpu_count() or 1
    while True:
        busy, started = machine_busy(), time.monotonic()
        time.sleep(1.0)
        share = (machine_busy() - busy) / ((time.monotonic() - started) * cores)
        if share < args.max_foreign or time.monotonic() > deadline:
            return share


def run_round(
    rate: float,
    i: int,
    urls: dict[str, str],
    pids: dict[str, int],
    events: Path,
    workdir: Path,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], float]:
    """Every path once; and the share of the machine other work used meanwhile."""
    order = PATHS[i % len(PATHS) :] + PATHS[: i % len(PATHS)]
    found = {}
    busy, own, started = machine_busy(), own_cpu(pids), time.monotonic()
    for path in order:
        proxy_pid = pids.get(path)
        cpu_before = (cpu_seconds(pids["model"]), cpu_seconds(proxy_pid or pids["model"]))
        run = replay(
            urls[path] + PREDICT,
            events,
            workdir,
            rate=rate,
            seconds=args.seconds,
            cpus=args.client_cpus,
        )
        answered = max(run["ok"], 1)
        run["modelCpuMs"] = (cpu_seconds(pids["model"]) - cpu_before[0]) * 1000 / answered
        run["proxyCpuMs"] = (
            (cpu_seconds(proxy_pid) - cpu_before[1]) * 1000 / answered
            if proxy_pid is not None
            else 0.0
        )
        run["load"] = os.getloadavg()[0]
        found[path] = run
    foreign = (machine_busy() - busy) - (own_cpu(pids) - own)
    share = max(foreign, 0.0) / ((time.monotonic() - started) * (os.cpu_count() or 1))
    return found, share


def run_series(
    urls: dict[str, str],
    pids: dict[str, int],
    metrics: str,
    events: Path,
    workdir: Path,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """For each rate, rounds over every path, and the capture proxy's own figures.

    A round during which other work used more than ``--max-foreign`` of the machine is
    set aside and run again once the machine is quiet, at most ``--max-rounds`` times in
    all; the rounds set aside are kept in the results, apart.
    """
    series = []
    for rate in args.rates:
        before = proxy_metrics(metrics)
        rounds: list[dict[str, Any]] = []
        disturbed: list[dict[str, Any]] = []
        shares: list[float] = []
        attempt = 0
        while len(rounds) < args.repeat and attempt < args.max_rounds:
            wait_for_quiet(args)
            found, share = run_round(rate, attempt, urls, pids, events, workdir, args)
            attempt += 1
            kept = share <= args.max_foreign
            (rounds if kept else disturbed).append(found)
            if kept:
                shares.append(share)
            log(
                f"{rate:g} req/s, round {attempt} ({'kept' if kept else 'set aside'}: other "
                f"work used {share * 100:.1f} % of the machine): service p50/p99/p99.9 ms, "
                "proxy CPU ms/req "
                + ", ".join(
                    f"{path} {found[path]['serviceP50']:.2f}/{found[path]['serviceP99']:.2f}/"
                    f"{found[path]['serviceP999']:.2f} {found[path]['proxyCpuMs']:.3f}"
                    for path in PATHS
                )
            )
        if not rounds:  # never quiet: report what there is, said as such
            rounds, disturbed = disturbed, []
        figures = since(before, proxy_metrics(metrics))
        series.append(
            {
                "rate": rate,
                "rounds": rounds,
                "disturbedRounds": disturbed,
                "foreignShares": shares,
                "captureMetrics": figures,
            }
        )
    return series


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    rate = args.rates[0]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="modelrollout-bench-capture-") as tmp:
        workdir = Path(tmp)
        events = write_events(workdir / "events.jsonl")
        with model_server(workdir, args.model_cpus) as (model, model_pid), ExitStack() as stack:
            hop, hop_pid = stack.enter_context(hop_proxy(workdir, model, args.proxy_cpus))
            urls = {"direct": model, "hop": hop}
            pids = {"model": model_pid, "hop": hop_pid}
            metrics = ""
            for path, flags in PROXY_FLAGS.items():
                url, path_metrics, _, pid = stack.enter_context(
                    capture_proxy(workdir, model, path, args.proxy_cpus, flags=flags)
                )
                urls[path], pids[path] = url, pid
                if path == "capture":
                    metrics = path_metrics
            for url in urls.values():  # warm up
                replay(url + PREDICT, events, workdir, rate=rate, seconds=2, cpus="0,1")
            series = run_series(urls, pids, metrics, events, workdir, args)
            stack.close()
            slow_proxy = capture_proxy(
                workdir,
                model,
                "slow",
                args.proxy_cpus,
                write_delay_ms=args.write_delay_ms,
                queue_records=args.slow_queue_records,
            )
            with slow_proxy as (proxy, metrics, directory, _):
                before = proxy_metrics(metrics)
                slow = {
                    kind: replay(
                        url + PREDICT,
                        events,
                        workdir,
                        rate=rate,
                        seconds=args.seconds,
                        cpus=args.client_cpus,
                    )
                    for kind, url in (("direct", model), ("capture", proxy))
                }
                slow_metrics = since(before, proxy_metrics(metrics))
            slow_metrics["linesOnDisk"] = count_lines(directory)
            log(
                f"slow disk: {slow['capture']['failed']} failed, "
                f"{slow_metrics['dropped']:.0f} records dropped, "
                f"{slow_metrics['written']:.0f} written"
            )
    loads = [run["load"] for entry in series for r in entry["rounds"] for run in r.values()]
    return {
        "machine": machine(),
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d"),
        "load": os.getloadavg()[0],
        "loadBefore": load_before[0],
        "loadDuring": {"min": min(loads), "median": _median(loads), "max": max(loads)},
        "seconds": args.seconds,
        "repeat": args.repeat,
        "cpus": {"client": args.client_cpus, "model": args.model_cpus, "proxy": args.proxy_cpus},
        "writeDelayMs": args.write_delay_ms,
        "slowQueueRecords": args.slow_queue_records,
        "series": series,
        "slowDisk": {"rate": rate, **slow, "metrics": slow_metrics},
    }


def commit() -> str:
    """The commit measured, with ``+changes`` when the package differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "operator") else "")


def machine() -> str:
    cpu = cpu_model()
    return (
        f"{os.cpu_count()}-core {cpu}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


# -- report -------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def path_summary(rounds: list[dict[str, Any]], path: str, base: str = "direct") -> dict[str, float]:
    """Medians over the rounds of one path, and of its difference from ``base``."""
    runs = [r[path] for r in rounds]

    def added(key: str) -> float:
        return _median([r[path][key] - r[base][key] for r in rounds])

    return {
        "p50": _median([run["serviceP50"] for run in runs]),
        "p99": _median([run["serviceP99"] for run in runs]),
        "p999": _median([run["serviceP999"] for run in runs]),
        "added50": added("serviceP50"),
        "added99": added("serviceP99"),
        "added999": added("serviceP999"),
        "secondP99": _median([v for run in runs for v in run["secondP99s"]]),
        "proxyCpu": _median([run.get("proxyCpuMs", float("nan")) for run in runs]),
        "modelCpu": _median([run.get("modelCpuMs", float("nan")) for run in runs]),
        "failed": float(sum(run["failed"] for run in runs)),
        "sent": float(sum(run["scheduled"] for run in runs)),
    }


def series_markdown(entry: dict[str, Any]) -> list[str]:
    rounds = entry["rounds"]
    disturbed = len(entry.get("disturbedRounds", []))
    shares = entry.get("foreignShares") or [float("nan")]
    lines = [
        f"### {entry['rate']:g} requests per second, {len(rounds)} rounds",
        "",
        f"Rounds kept: {len(rounds)}, during which other work used at most "
        f"{max(shares) * 100:.1f} % of the machine's CPU (user, system and steal time not "
        f"spent by the benchmark's own processes); {disturbed} more rounds were set aside "
        "because other work used more than 5 %.",
        "",
        "| path | p50 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms | added p99.9 ms "
        "| per-second p99, median ms | proxy CPU ms/request | model CPU ms/request | failed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path in PATHS:
        f = path_summary(rounds, path)
        added = ["", "", ""] if path == "direct" else [
            f"{f['added50']:+.3f}", f"{f['added99']:+.3f}", f"{f['added999']:+.3f}"
        ]  # fmt: skip
        cpu = "" if path == "direct" else f"{f['proxyCpu']:.3f}"
        lines.append(
            f"| {PATH_NAMES[path]} | {f['p50']:.3f} | {f['p99']:.3f} | {f['p999']:.3f} | "
            f"{' | '.join(added)} | {f['secondP99']:.3f} | {cpu} | {f['modelCpu']:.3f} | "
            f"{f['failed']:.0f} of {f['sent']:.0f} |"
        )
    capture = path_summary(rounds, "capture")
    full = path_summary(rounds, "full")
    pm = entry["captureMetrics"]
    within = ", ".join(
        f"{share * 100:.2f} % within {le}" for le, share in pm["addedWithin"].items()
    )
    met = capture["added99"] <= 1.0 and capture["failed"] == 0
    per_round = sorted(r["capture"]["serviceP99"] - r["direct"]["serviceP99"] for r in rounds)
    under = sum(1 for value in per_round if value <= 1.0)
    lines += [
        "",
        f"- **Capture adds {capture['added50']:+.3f} ms at p50, {capture['added99']:+.3f} ms "
        f"at p99 and {capture['added999']:+.3f} ms at p99.9; {capture['failed']:.0f} requests "
        f"failed through it** (target: p99 added ≤ 1 ms and none failed: "
        f"{'met' if met else 'not met'}). The full (aiohttp) path on the same rounds: "
        f"{full['added50']:+.3f} ms at p50, {full['added99']:+.3f} ms at p99.",
        f"- Round by round, capture's added p99 was "
        f"{', '.join(f'{value:+.2f}' for value in per_round)} ms: within 1 ms in {under} of "
        f"{len(per_round)} rounds (a stall during a straight run makes a round's difference "
        "negative). Per-second p99 medians: "
        f"{path_summary(rounds, 'direct')['secondP99']:.3f} ms straight, "
        f"{capture['secondP99']:.3f} ms through capture.",
        f"- The proxy's own histogram of the time it adds (its handling of a request minus "
        f"the wait for the model; not the reading and writing of sockets around it): mean "
        f"{pm['addedMeanMs']:.3f} ms; {within}.",
        f"- Records: {pm['written']:.0f} of {pm['requests']:.0f} requests written, "
        f"{pm['dropped']:.0f} dropped.",
        "",
    ]
    return lines


def markdown(data: dict[str, Any]) -> str:
    cpus = data["cpus"]
    during = data.get("loadDuring")
    load = (
        f"load average {data.get('loadBefore', data['load']):.2f} before the run, "
        f"{during['min']:.2f} to {during['max']:.2f} (median {during['median']:.2f}) during it"
        if during
        else f"load average {data['load']:.1f} at the end of the run"
    )
    lines = [
        "# Capture proxy overhead",
        "",
        f"Measured by `bench/capture.py` on {data['machine']}, {data['date']}, at commit "
        f"{data.get('commit', 'unknown')}; {load}. "
        f"`modelrollout replay` sends open loop for {data['seconds']:g} s per run from core "
        f"{cpus['client']} to the Python model server on core {cpus['model']}, straight or "
        f"through a proxy on core {cpus['proxy']} (a sidecar shares its pod's CPU with the "
        f"model), all at nice {NICE}. The paths: straight; through the smallest reverse "
        "proxy Go's standard library makes (`bench/fastproxy`), which is what one more "
        "process on the request path costs on this machine whatever it does; and through "
        "`modelrollout capture` recording every request to a plain file, three ways: with "
        "`--no-lean-path` (aiohttp's server and client for every request), on the lean path "
        "with uvloop's event loop (`--event-loop uvloop`), and as it ships (the lean path "
        "on Python's own event loop). Each round runs every path once, in a rotating order; "
        "the figures are medians over the rounds, added latency is the difference from the "
        "straight run of the same round, and times are service times measured by the replay "
        "from each "
        "request's actual send. CPU is the user and system time the proxy (and the model) "
        "used during a run, per request answered. The machine is shared with other work "
        "that takes the cores for milliseconds now and then; a single such stall moves a "
        "run's p99, and the per-second p99 median is what it moves least.",
        "",
    ]
    for entry in data["series"]:
        lines += series_markdown(entry)
    slow = data["slowDisk"]
    d, p, m = slow["direct"], slow["capture"], slow["metrics"]
    keeps_up = 32 * 1000 / data["writeDelayMs"]
    lines += [
        "### With a slow disk",
        "",
        f"The proxy's writer sleeps {data['writeDelayMs']:g} ms before every write (a batch "
        f"of at most 32 records), so it can write about {keeps_up:.0f} records/s while "
        f"{slow['rate']:g} arrive; its queue holds {data['slowQueueRecords']} records.",
        "",
        "| path | sent | ok | failed | p50 ms | p99 ms | per-second p99, median ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, run in (("straight to the model", d), ("through the slow proxy", p)):
        lines.append(
            f"| {name} | {run['scheduled']} | {run['ok']} | {run['failed']} | "
            f"{run['serviceP50']:.3f} | {run['serviceP99']:.3f} | "
            f"{_median(run['secondP99s']):.3f} |"
        )
    lines += [
        "",
        f"Records: {m['written']:.0f} written and **{m['dropped']:.0f} dropped and counted** "
        f"(`modelrollout_capture_records_dropped_total`) during the run, "
        f"{m['linesOnDisk']} lines on disk after the stop (which writes what was still "
        f"queued); **{p['failed']} requests failed** through the proxy. The requests do "
        "not wait for the disk: the writer is a thread of its own behind a bounded queue, "
        "and a record that does not fit is dropped on the spot.",
        "",
        "Raw figures, round by round: `bench/results/capture.json`.",
    ]
    return "\n".join(lines)


def write_docs(data: dict[str, Any], path: Path) -> None:
    section = f"{START}\n{markdown(data)}\n{END}"
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


# -- the proxy, with an optional slow disk ------------------------------------------------


def run_proxy(write_delay_ms: float, arguments: Sequence[str]) -> int:
    """``modelrollout capture`` itself; with a delay, every file write sleeps first."""
    from modelrollout.cli import capture
    from modelrollout.services.capture.files import CaptureFiles

    if write_delay_ms > 0:
        write = CaptureFiles.write

        def slow_write(self: CaptureFiles, lines: Sequence[bytes]) -> None:
            time.sleep(write_delay_ms / 1000)
            write(self, lines)

        CaptureFiles.write = slow_write  # type: ignore[method-assign]
    return capture.main(list(arguments))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode")
    proxy = sub.add_parser("proxy", help="run the proxy (used by the benchmark itself)")
    proxy.add_argument("--write-delay-ms", type=float, default=0.0)
    proxy.add_argument("arguments", nargs=argparse.REMAINDER)
    parser.add_argument(
        "--rates",
        type=lambda text: [float(v) for v in text.split(",")],
        default=[1000.0, 200.0],
        help="requests per second, comma-separated; the first is used for the slow disk",
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each run")
    parser.add_argument("--repeat", type=int, default=4, help="rounds over every path")
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=0.05,
        help="a round during which other work used more than this share of the machine's "
        "CPU is set aside and run again (default 0.05)",
    )
    parser.add_argument(
        "--max-rounds", type=int, default=12, help="most rounds run per rate, kept or not"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="most seconds to wait for a quiet machine before a round",
    )
    parser.add_argument("--write-delay-ms", type=float, default=200.0, help="slow-disk delay")
    parser.add_argument("--slow-queue-records", type=int, default=1000)
    parser.add_argument("--client-cpus", default="0", help="cores of the replay")
    parser.add_argument("--model-cpus", default="1", help="cores of the model server")
    parser.add_argument("--proxy-cpus", default="1", help="cores of the proxies")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the docs")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the docs from capture.json"
    )
    args = parser.parse_args(argv)
    if args.mode == "proxy":
        arguments = [a for a in args.arguments if a != "--"]
        return run_proxy(args.write_delay_ms, arguments)
    results = ROOT / "bench" / "results" / "capture.json"
    if args.render_only:
        write_docs(json.loads(results.read_text()), ROOT / "docs" / "benchmarks.md")
        return 0
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the benchmark pins the client and the servers apart: need 2 cores")
    data = run_bench(args)
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n")
    if not args.no_docs:
        write_docs(data, ROOT / "docs" / "benchmarks.md")
    log("done: bench/results/capture.json" + ("" if args.no_docs else ", docs/benchmarks.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
