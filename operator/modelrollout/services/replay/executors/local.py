"""The local executor: shards are local processes running the same replay command.

A development control plane has no nodes, so Job pods never run. This executor runs
``modelrollout replay`` with exactly the run a Job pod would get (in
``MODELROLLOUT_REPLAY_RUN``), one process per shard, and reads the same result line from
its output. Services are reached through the
``--endpoint NAMESPACE/SERVICE=URL`` map given to the operator (falling back to cluster DNS
names), and ConfigMap events are copied to a private temporary file.

Processes live only as long as the operator: after a restart a ReplayTest that was
running is started again from the beginning, which its status shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from modelrollout.core import errors, reasons
from modelrollout.core.api.replaytest import ReplayTestSpec
from modelrollout.core.replay.decision import Shards
from modelrollout.core.replay.result import parse_result_line
from modelrollout.core.replay.run import RUN_ENV
from modelrollout.core.replay.shards import ShardOutcome
from modelrollout.services.kube import Kube, config_map_value
from modelrollout.services.replay.executors import Execution

Key = tuple[str, str]


@dataclass
class _Shard:
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path


@dataclass
class _Run:
    generation: int
    workdir: Path
    shards: list[_Shard] = field(default_factory=list)


class LocalExecutor:
    name = "local"

    def __init__(
        self, kube: Kube, endpoints: dict[str, str], *, command: list[str] | None = None
    ) -> None:
        self.kube = kube
        self.endpoints = dict(endpoints)
        self.command = command or [sys.executable, "-m", "modelrollout"]
        self.runs: dict[Key, _Run] = {}
        self.lock = threading.Lock()
        self.root = Path(tempfile.mkdtemp(prefix="modelrollout-replays-"))

    def events(self, namespace: str, name: str, spec: ReplayTestSpec) -> str:
        source = spec.events
        if source.url is not None:
            return source.url
        if source.volume is not None:
            raise errors.InvalidSpec(
                "spec.events.volume",
                f"{reasons.UNSUPPORTED_SOURCE}: the local executor cannot mount volumes; use "
                "configMapKeyRef or url",
            )
        assert source.config_map_key_ref is not None
        ref = source.config_map_key_ref
        cm = self.kube.get_config_map(namespace, ref.name)
        data = config_map_value(cm, ref.key) if cm is not None else None
        if data is None:
            raise errors.TemporaryError(
                f"ConfigMap {ref.name!r} key {ref.key!r} not found", delay=5
            )
        directory = self.root / namespace / name
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / ref.key
        path.write_bytes(data)
        return str(path)

    def endpoint(self, namespace: str, service: str, port: int, path: str, scheme: str) -> str:
        base = self.endpoints.get(f"{namespace}/{service}")
        if base is not None:
            return base.rstrip("/") + path
        return f"{scheme}://{service}.{namespace}.svc:{port}{path}"

    def start(self, execution: Execution) -> None:
        key = (execution.namespace, execution.name)
        with self.lock:
            existing = self.runs.get(key)
            if existing is not None and existing.generation == execution.generation:
                return
            if existing is not None:
                _kill(existing)
            workdir = Path(tempfile.mkdtemp(prefix=f"{execution.name}-", dir=self.root))
            state = _Run(generation=execution.generation, workdir=workdir)
            for index in range(execution.spec.parallelism):
                out = workdir / f"shard-{index}.out"
                err = workdir / f"shard-{index}.err"
                run = execution.run.model_copy(update={"shard_index": index})
                output = str(workdir / f"shard-{index}.json")
                with out.open("wb") as stdout, err.open("wb") as stderr:
                    process = subprocess.Popen(
                        [*self.command, "replay", "--result-line", "--quiet", "--output", output],
                        env={**os.environ, RUN_ENV: run.to_json()},
                        stdout=stdout,
                        stderr=stderr,
                        stdin=subprocess.DEVNULL,
                    )
                state.shards.append(_Shard(process, out, err))
            self.runs[key] = state

    def observe(self, execution: Execution) -> Shards:
        with self.lock:
            state = self.runs.get((execution.namespace, execution.name))
        if state is None or state.generation != execution.generation:
            return Shards()
        outcomes: list[ShardOutcome] = []
        for index, shard in enumerate(state.shards):
            code = shard.process.poll()
            if code is None:
                outcomes.append(ShardOutcome(index, "running"))
                continue
            try:
                result = parse_result_line(shard.stdout.read_text(errors="replace"))
            except ValueError:
                result = None
            if result is not None:
                outcomes.append(ShardOutcome(index, "succeeded", result=result))
            else:
                tail = shard.stderr.read_text(errors="replace").strip().splitlines()[-3:]
                outcomes.append(
                    ShardOutcome(
                        index,
                        "failed",
                        reason=reasons.SHARD_FAILED,
                        message=f"exit code {code}: {' '.join(tail)}",
                    )
                )
        return Shards(outcomes=outcomes, started=True)

    def stop(self, execution: Execution) -> None:
        """Nothing to clean for the current run; older generations were killed on start."""

    def close(self) -> None:
        with self.lock:
            for state in self.runs.values():
                _kill(state)
            self.runs.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _kill(state: _Run) -> None:
    for shard in state.shards:
        if shard.process.poll() is None:
            shard.process.kill()
            shard.process.wait(timeout=10)
