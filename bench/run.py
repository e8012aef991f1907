"""Replay engine benchmarks: throughput, rate accuracy and latency fidelity.

Run with ``.venv/bin/python bench/run.py`` (or ``bash bench/run.sh``). It installs what it
needs into ``$MODELROLLOUT_CACHE/bench-bin`` (default ``~/.cache/modelrollout``): vegeta
(``go install``), hey and wrk (``apt-get``), and ``bench/fastserver`` (``go build``). All
traffic goes to 127.0.0.1; every process started here is stopped before it returns.

On a 2-core machine the load generator is pinned to core 0 and the server to core 1
(``taskset``, at nice -10), so each side has one core and they do not compete.

(a) *Max sustained rate on one core*: wrk, hey, vegeta and ``modelrollout replay`` (with
    aiohttp and with httpx) against the Go ``fastserver``, which is faster than all of
    them. Counted on the server (arrivals per second), the same way for every tool.
(b) *Rate accuracy*: ``modelrollout replay`` (and vegeta, for reference) at several
    target rates up to 80 % of our max; the achieved rate is measured on the server.
(c) *Latency fidelity*: the model server with injected latency records its own service
    time per request; ``modelrollout replay`` percentiles are compared with those.

Results go to ``bench/results/latest.json``; ``--docs`` renders them as a page over
``docs/benchmarks.md``, whose replay section now comes from ``bench/replay_fidelity.py``
(send lag, CPU, fidelity against the server's record and the saturated rate in one run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MODELROLLOUT_CACHE", Path.home() / ".cache" / "modelrollout"))
BIN = CACHE / "bench-bin"
VEGETA_MODULE = "github.com/tsenart/vegeta/v12@v12.13.0"
CLIENT_CPU = "0"
NICE = "-10"
SERVER_CPU = "1"
BODY = {"instances": [[0.3, -1.2, 0.8, 0.1]]}


# -- tools --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ensure_tools() -> dict[str, str]:
    tools = ensure_go_tools()
    missing = [name for name in ("hey", "wrk") if shutil.which(name) is None]
    if missing:
        log(f"installing {' '.join(missing)} with apt-get")
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)
    for name in ("hey", "wrk"):
        found = shutil.which(name)
        if found is None:
            raise SystemExit(f"{name} is not installed and could not be installed")
        tools[name] = found
    return tools


def ensure_go_tools() -> dict[str, str]:
    """vegeta (from the Go module proxy) and ``bench/fastserver``, built into the cache."""
    BIN.mkdir(parents=True, exist_ok=True)
    tools: dict[str, str] = {}
    vegeta = BIN / "vegeta"
    if not vegeta.exists():
        log(f"installing vegeta ({VEGETA_MODULE})")
        env = dict(os.environ, GOBIN=str(BIN))
        subprocess.run(["go", "install", VEGETA_MODULE], check=True, env=env)
    tools["vegeta"] = str(vegeta)
    fastserver = BIN / "fastserver"
    source = ROOT / "bench" / "fastserver"
    newest = max(p.stat().st_mtime for p in source.iterdir())
    if not fastserver.exists() or fastserver.stat().st_mtime < newest:
        log("building bench/fastserver")
        subprocess.run(["go", "build", "-o", str(fastserver), "."], check=True, cwd=source)
    tools["fastserver"] = str(fastserver)
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is required (util-linux)")
    return tools


def pinned(cpu: str, *command: str, gomaxprocs: bool = False) -> list[str]:
    """``command`` on core ``cpu`` at nice -10, as ``bench/capture.py`` runs its processes,
    so that the other work of a shared machine takes that core from it less often."""
    prefix = ["nice", "-n", NICE, "taskset", "-c", cpu]
    if gomaxprocs:
        prefix += ["env", "GOMAXPROCS=1"]
    return prefix + list(command)


# -- servers ------------------------------------------------------------------------------


def _wait_port(path: Path, process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise RuntimeError("server did not report its port in time")


@contextmanager
def server(
    command: list[str], workdir: Path, name: str, pids: list[int] | None = None
) -> Iterator[str]:
    """Start a server that writes its port to ``--port-file``; yields its base URL. Its
    process id is added to ``pids`` while it runs, when given."""
    port_file = workdir / f"{name}.port"
    port_file.unlink(missing_ok=True)
    with (workdir / f"{name}.log").open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port-file", str(port_file)], stdout=out, stderr=subprocess.STDOUT
        )
    if pids is not None:
        pids.append(process.pid)
    try:
        port = _wait_port(port_file, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        if pids is not None:
            pids.remove(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def http_json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def server_rate(base: str) -> dict[str, float]:
    """Achieved rate seen by the fastserver: arrivals over their time span."""
    stats = http_json(f"{base}/stats")
    arrivals = np.sort(np.asarray(stats["arrivalsNs"], dtype=np.float64)) / 1e9
    if arrivals.size < 2:
        return {"count": float(arrivals.size), "rate": 0.0, "perSecondCv": 0.0}
    span = arrivals[-1] - arrivals[0]
    seconds = np.floor(arrivals - arrivals[0]).astype(int)
    per_second = np.bincount(seconds)[:-1] if seconds.max() > 0 else np.array([arrivals.size])
    cv = float(per_second.std() / per_second.mean()) if per_second.size > 1 else 0.0
    return {"count": float(arrivals.size), "rate": (arrivals.size - 1) / span, "perSecondCv": cv}


# -- load generators ----------------------------------------------------------------------


def make_inputs(workdir: Path, url: str) -> dict[str, Path]:
    body = workdir / "body.json"
    body.write_text(json.dumps(BODY))
    events = workdir / "events.jsonl"
    with events.open("w") as out:
        for i in range(1000):
            out.write(json.dumps({"timestamp": 1714521600 + i / 100, "payload": BODY}) + "\n")
    targets = workdir / "targets.txt"
    targets.write_text(f"POST {url}\nContent-Type: application/json\n@{body}\n")
    lua = workdir / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(BODY))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return {"body": body, "events": events, "targets": targets, "lua": lua}


def run_wrk(
    tools: dict[str, str], url: str, inputs: dict[str, Path], seconds: int, connections: int
) -> float:
    done = subprocess.run(
        pinned(
            CLIENT_CPU,
            tools["wrk"],
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(inputs["lua"]),
            url,
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([0-9.]+)", done.stdout)
    return float(match.group(1)) if match else 0.0


def run_hey(
    tools: dict[str, str], url: str, inputs: dict[str, Path], seconds: int, connections: int
) -> float:
    done = subprocess.run(
        pinned(
            CLIENT_CPU,
            tools["hey"],
            "-z",
            f"{seconds}s",
            "-c",
            str(connections),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-D",
            str(inputs["body"]),
            url,
            gomaxprocs=True,
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([0-9.]+)", done.stdout)
    return float(match.group(1)) if match else 0.0


def run_vegeta(
    tools: dict[str, str],
    inputs: dict[str, Path],
    workdir: Path,
    seconds: float,
    rate: float | None,
    workers: int,
) -> dict[str, Any]:
    out = workdir / "vegeta.bin"
    attack = [
        tools["vegeta"],
        "attack",
        f"-targets={inputs['targets']}",
        f"-duration={seconds}s",
        f"-workers={workers}",
        "-keepalive=true",
    ]
    if rate is None:
        attack += ["-rate=0", f"-max-workers={workers}"]
    else:
        attack += [f"-rate={rate}/1s"]
    with out.open("wb") as handle:
        subprocess.run(pinned(CLIENT_CPU, *attack, gomaxprocs=True), stdout=handle, check=True)
    report = subprocess.run(
        [tools["vegeta"], "report", "-type=json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(report.stdout)  # type: ignore[no-any-return]


def replay_command(
    url: str,
    events: Path,
    output: Path,
    *,
    rate: float,
    seconds: float,
    concurrency: int,
    client: str,
    event_loop: str = "asyncio",
) -> list[str]:
    """``modelrollout replay`` on the client core, quiet, its result written to ``output``."""
    return pinned(
        CLIENT_CPU,
        sys.executable,
        "-m",
        "modelrollout.cli.replay",
        "replay",
        "--events",
        str(events),
        "--target",
        url,
        "--rate",
        str(rate),
        "--duration",
        f"{seconds:g}s",
        "--concurrency",
        str(concurrency),
        "--client",
        client,
        "--event-loop",
        event_loop,
        "--quiet",
        "--output",
        str(output),
    )


def run_replay(
    url: str,
    events: Path,
    workdir: Path,
    *,
    rate: float,
    seconds: float,
    concurrency: int,
    client: str = "aiohttp",
) -> dict[str, Any]:
    output = workdir / "replay.json"
    output.unlink(missing_ok=True)
    subprocess.run(
        replay_command(
            url, events, output, rate=rate, seconds=seconds, concurrency=concurrency, client=client
        ),
        check=True,
    )
    return json.loads(output.read_text())  # type: ignore[no-any-return]


# -- the three benchmarks -----------------------------------------------------------------


def bench_max_rate(
    tools: dict[str, str], workdir: Path, seconds: int, connections: int, repeats: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    command = pinned(SERVER_CPU, tools["fastserver"], gomaxprocs=True)
    with server(command, workdir, "fastserver") as base:
        url = f"{base}/v1/models/model:predict"
        inputs = make_inputs(workdir, url)

        def measure(name: str, run: Any, repeat: int = repeats) -> None:
            best: dict[str, float] = {"server": 0.0}
            for _ in range(repeat):
                http_json(f"{base}/reset", "POST")
                client_figure = run()
                seen = server_rate(base)
                if seen["rate"] > best["server"]:
                    best = {
                        "client": client_figure,
                        "server": seen["rate"],
                        "requests": seen["count"],
                    }
            results[name] = best
            log(f"max rate {name}: {best['server']:.0f} req/s at the server")

        measure("wrk", lambda: run_wrk(tools, url, inputs, seconds, connections))
        measure("hey", lambda: run_hey(tools, url, inputs, seconds, connections))
        measure(
            "vegeta",
            lambda: run_vegeta(tools, inputs, workdir, seconds, None, connections)["throughput"],
        )
        for client in ("aiohttp", "httpx"):
            measure(
                f"modelrollout ({client})",
                lambda client=client: run_replay(
                    url,
                    inputs["events"],
                    workdir,
                    rate=30000,
                    seconds=seconds,
                    concurrency=connections,
                    client=client,
                )["rate"]["achieved"],
            )
        for concurrency in (1, 4, 16):
            measure(
                f"modelrollout (httpx, concurrency {concurrency})",
                lambda c=concurrency: run_replay(
                    url,
                    inputs["events"],
                    workdir,
                    rate=30000,
                    seconds=min(seconds, 5),
                    concurrency=c,
                    client="httpx",
                )["rate"]["achieved"],
                repeat=1,
            )
    return results


def bench_rate_accuracy(
    tools: dict[str, str], workdir: Path, max_rate: float, seconds: int
) -> list[dict[str, Any]]:
    top = int(max_rate * 0.8 // 100 * 100)
    rates = sorted({100, 500, 1000, 2000, int(top * 0.5 // 100 * 100), top})
    rows = []
    command = pinned(SERVER_CPU, tools["fastserver"], gomaxprocs=True)
    with server(command, workdir, "fastserver") as base:
        url = f"{base}/v1/models/model:predict"
        inputs = make_inputs(workdir, url)
        for rate in rates:
            http_json(f"{base}/reset", "POST")
            result = run_replay(
                url, inputs["events"], workdir, rate=rate, seconds=seconds, concurrency=64
            )
            ours = server_rate(base)
            http_json(f"{base}/reset", "POST")
            vegeta = run_vegeta(tools, inputs, workdir, seconds, rate, 64)
            theirs = server_rate(base)
            row = {
                "target": rate,
                "server": ours["rate"],
                "client": result["rate"]["achieved"],
                "errorPct": (ours["rate"] / rate - 1) * 100,
                "perSecondCv": ours["perSecondCv"],
                "lagP99Ms": result["sendLagMs"]["p99"],
                "dropped": result["counts"]["dropped"],
                "vegetaServer": theirs["rate"],
                "vegetaErrorPct": (theirs["rate"] / rate - 1) * 100,
                "vegetaThroughput": vegeta["throughput"],
            }
            rows.append(row)
            log(
                f"rate {rate}: ours {ours['rate']:.1f} ({row['errorPct']:+.2f} %), "
                f"vegeta {theirs['rate']:.1f} ({row['vegetaErrorPct']:+.2f} %)"
            )
    return rows


PERCENTILES = (50, 90, 95, 99)


def _fidelity_servers(tools: dict[str, str], latency: float, jitter: float) -> list[Any]:
    go = pinned(
        SERVER_CPU,
        tools["fastserver"],
        "-latency-ms",
        str(latency),
        "-jitter-ms",
        str(jitter),
        gomaxprocs=True,
    )
    python = pinned(
        SERVER_CPU,
        sys.executable,
        "-m",
        "modelrollout.modelserver",
        "--port",
        "0",
        "--latency-ms",
        str(latency),
        "--latency-jitter-ms",
        str(jitter),
    )
    return [
        ("Go fastserver", go, "/reset", lambda stats: np.asarray(stats["serviceNs"]) / 1e6),
        (
            "Python model server",
            python,
            "/stats/reset",
            lambda stats: np.asarray(stats["serviceTimesMs"]),
        ),
    ]


def bench_latency_fidelity(
    tools: dict[str, str], workdir: Path, seconds: int, rate: float
) -> list[dict[str, Any]]:
    rows = []
    for latency, jitter in ((5.0, 2.0), (20.0, 10.0)):
        for name, command, reset, service_times in _fidelity_servers(tools, latency, jitter):
            with server(command, workdir, "fidelity") as base:
                url = f"{base}/v1/models/model:predict"
                inputs = make_inputs(workdir, url)
                http_json(f"{base}{reset}", "POST")
                result = run_replay(
                    url, inputs["events"], workdir, rate=rate, seconds=seconds, concurrency=64
                )
                truth = service_times(http_json(f"{base}/stats"))
                http_json(f"{base}{reset}", "POST")
                vegeta = run_vegeta(tools, inputs, workdir, seconds, rate, 64)
                vegeta_truth = service_times(http_json(f"{base}/stats"))
            for p in PERCENTILES:
                server_value = float(np.percentile(truth, p, method="lower"))
                service = result["serviceTimeMs"][f"p{p}"]
                diff = service - server_value
                vegeta_value = vegeta["latencies"][f"{p}th"] / 1e6
                vegeta_server = float(np.percentile(vegeta_truth, p, method="lower"))
                rows.append(
                    {
                        "server": name,
                        "injected": f"{latency:g} ms + exp({jitter:g} ms)",
                        "percentile": p,
                        "truth": server_value,
                        "service": service,
                        "latency": result["latencyMs"][f"p{p}"],
                        "diffMs": diff,
                        "diffPct": diff / server_value * 100,
                        "withinTarget": abs(diff) <= max(1.0, 0.02 * server_value),
                        "vegeta": vegeta_value,
                        "vegetaTruth": vegeta_server,
                        "vegetaDiffMs": vegeta_value - vegeta_server,
                    }
                )
            log(f"latency fidelity {name} {latency:g}+{jitter:g} ms done")
    return rows


# -- report -------------------------------------------------------------------------------


def machine() -> str:
    cpu = cpu_model()
    return (
        f"{os.cpu_count()}-core {cpu}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def write_markdown(data: dict[str, Any], path: Path) -> None:
    max_rate = data["maxRate"]
    ours = max_rate["modelrollout (aiohttp)"]["server"]
    lines = [
        "# Replay engine benchmarks",
        "",
        "Measured by `bench/run.py` (`bash bench/run.sh`) on "
        f"{data['machine']}, {data['date']}. The load generator runs on core 0 and the "
        "server on core 1 (`taskset`); all traffic is on 127.0.0.1. The machine is shared "
        "with other workloads, so treat single figures as indicative and compare tools "
        "within one run, as this page does.",
        "",
        "## (a) Max sustained rate on one core",
        "",
        f"Against the Go `bench/fastserver` ({data['connections']} connections, "
        f"{data['seconds']} s per run, best of {data['repeat']} runs). Requests per second "
        "counted by the server.",
        "",
        "| load generator | loop | req/s (server) | req/s (tool) |",
        "| --- | --- | ---: | ---: |",
    ]
    loops = {"wrk": "closed", "hey": "closed", "vegeta": "closed (-rate=0)"}
    for name, row in max_rate.items():
        loop = loops.get(name, "open (saturated)")
        lines.append(f"| {name} | {loop} | {row['server']:.0f} | {row['client']:.0f} |")
    httpx = max_rate["modelrollout (httpx)"]["server"]
    lines += [
        "",
        f"`modelrollout replay` sends with aiohttp: **{ours:.0f} req/s** on one core, versus "
        f"{httpx:.0f} req/s with httpx at the same concurrency. httpx's throughput falls as "
        "concurrency grows (see the rows with concurrency 1, 4, 16), the connection-pool "
        "behaviour reported in encode/httpx#3215, so httpx is kept only as `--client httpx` "
        "for comparison. The Go tools are faster still; a replay is meant to reproduce "
        "production traffic faithfully rather than to find a server's breaking point, and "
        "higher rates are reached by sharding (`--shard-count`), one core per shard.",
        "",
        "## (b) Rate accuracy",
        "",
        f"`modelrollout replay --rate R` for {data['rateSeconds']} s against the fastserver; "
        "the achieved rate is counted by the server (arrivals over their time span). "
        "Target: within ±1 % up to 80 % of the max rate. vegeta at the same rates for "
        "reference.",
        "",
        "| target req/s | achieved (server) | error | per-second CV | send lag p99 ms | "
        "dropped | vegeta achieved | vegeta error |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in data["rateAccuracy"]:
        lines.append(
            f"| {row['target']} | {row['server']:.1f} | {row['errorPct']:+.2f} % | "
            f"{row['perSecondCv'] * 100:.2f} % | {row['lagP99Ms']:.2f} | {row['dropped']} | "
            f"{row['vegetaServer']:.1f} | {row['vegetaErrorPct']:+.2f} % |"
        )
    within = all(abs(r["errorPct"]) <= 1 for r in data["rateAccuracy"])
    lines += [
        "",
        "All rates within ±1 %: "
        + ("**yes**." if within else "**no** (see the table).")
        + " The highest rate ran at 80 % of the saturated maximum with the send lag and "
        "drops shown; the saturated figure in (a) is a ceiling, not a working point.",
        "",
        "## (c) Latency fidelity",
        "",
        "A server sleeps a known injected delay (fixed + exponential jitter) and records the "
        "time it spent on each request; `modelrollout replay` runs at "
        f"{data['fidelityRate']:g} req/s for {data['fidelitySeconds']} s and its service "
        "time (from the actual send) is compared with the server's record, percentile by "
        "percentile. Target: within 2 % or 1 ms. vegeta against the same server, for "
        "reference. Two servers: the Go fastserver, whose handler timing covers nearly all "
        "server-side work, and the Python model server, whose handler timing misses the "
        "request parsing and response writing done by aiohttp around the handler (visible "
        "as the same extra ~1 ms for vegeta). The replay latency column is measured from "
        "the intended send time (what criteria use): it adds the send lag.",
        "",
        "| server | injected | pct | server ms | replay service ms | diff | within target "
        "| replay latency ms | vegeta diff |",
        "| --- | --- | ---: | ---: | ---: | ---: | :---: | ---: | ---: |",
    ]
    for row in data["latencyFidelity"]:
        lines.append(
            f"| {row['server']} | {row['injected']} | p{row['percentile']} | "
            f"{row['truth']:.2f} | {row['service']:.2f} | {row['diffMs']:+.2f} ms "
            f"({row['diffPct']:+.1f} %) | {'yes' if row['withinTarget'] else 'no'} | "
            f"{row['latency']:.2f} | {row['vegetaDiffMs']:+.2f} ms |"
        )
    go_rows = [r for r in data["latencyFidelity"] if r["server"] == "Go fastserver"]
    if go_rows:
        ours_mean = float(np.mean([r["diffMs"] for r in go_rows]))
        theirs_mean = float(np.mean([r["vegetaDiffMs"] for r in go_rows]))
        met = sum(r["withinTarget"] for r in go_rows)
        lag = float(np.mean([r["latency"] - r["service"] for r in go_rows]))
        lines += [
            "",
            f"Against the Go server the replay's service-time percentiles are on average "
            f"{ours_mean:+.2f} ms above the server's own record, and {met} of {len(go_rows)} "
            f"meet the target; vegeta, measuring the same way, is {theirs_mean:+.2f} ms above. "
            "The part both clients see is the loopback round trip and process wake-ups on "
            "this shared 2-core machine; the replay's own measurement overhead is the "
            f"difference, about {ours_mean - theirs_mean:.2f} ms (aiohttp building the request "
            "and parsing the response inside the timed span). Latency from the intended send "
            f"time is on average {lag:.2f} ms above service time at this low rate: asyncio "
            "timers wake up to a millisecond late (epoll waits in whole milliseconds). That "
            "lag is reported as `sendLagMs` and counted in latency on purpose, so a slow "
            "client can never make a target look faster.",
        ]
    lines += [
        "",
        "Percentiles come from the mergeable histogram (relative error ≤ 0.5 %), the "
        "server's from its raw samples.",
        "",
        "Raw figures: `bench/results/latest.json`.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8, help="length of each max-rate run")
    parser.add_argument("--repeat", type=int, default=2, help="max-rate runs per tool (best)")
    parser.add_argument("--rate-seconds", type=int, default=5, help="length of accuracy runs")
    parser.add_argument("--fidelity-seconds", type=int, default=10)
    parser.add_argument("--fidelity-rate", type=float, default=200)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--docs", action="store_true", help="rewrite docs/benchmarks.md with this page alone"
    )
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the docs page from latest.json"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        data = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
        write_markdown(data, ROOT / "docs" / "benchmarks.md")
        return 0
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the benchmarks pin client and server to separate cores: need 2")
    tools = ensure_tools()
    with tempfile.TemporaryDirectory(prefix="modelrollout-bench-") as tmp:
        workdir = Path(tmp)
        max_rate = bench_max_rate(tools, workdir, args.seconds, args.connections, args.repeat)
        accuracy = bench_rate_accuracy(
            tools, workdir, max_rate["modelrollout (aiohttp)"]["server"], args.rate_seconds
        )
        fidelity = bench_latency_fidelity(tools, workdir, args.fidelity_seconds, args.fidelity_rate)
    data = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": args.seconds,
        "repeat": args.repeat,
        "connections": args.connections,
        "rateSeconds": args.rate_seconds,
        "fidelitySeconds": args.fidelity_seconds,
        "fidelityRate": args.fidelity_rate,
        "maxRate": max_rate,
        "rateAccuracy": accuracy,
        "latencyFidelity": fidelity,
    }
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    if args.docs:
        write_markdown(data, ROOT / "docs" / "benchmarks.md")
    log("done: bench/results/latest.json" + (", docs/benchmarks.md" if args.docs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
