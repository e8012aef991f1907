#!/usr/bin/env python3
"""Write the replay datasets of the example servers: the same 100 recorded fraud-scorer
requests in the two protocols, with ground-truth labels.

* events-v1.jsonl: KServe V1 payloads, ``{"instances": [[f1, f2, f3, f4]]}``, for
  ``/v1/models/fraud-scorer:predict`` (the answer's prediction: ``predictions[0]``);
* events-v2.jsonl: Open Inference Protocol (V2) payloads for
  ``/v2/models/fraud-scorer/infer`` (the answer's prediction: ``outputs[0].data[0]``).

The features are drawn with a fixed seed; the label is 1 when a noisy score of them is
positive, so the example models are right about four times in five. Run again to
regenerate: ``python3 examples/servers/make_events.py``.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

EVENTS = 100
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TRUE_WEIGHTS = (0.9, -0.4, 1.1, 0.35)


def events(seed: int = 7) -> list[tuple[str, list[float], int]]:
    rng = random.Random(seed)
    out = []
    at = START
    for _ in range(EVENTS):
        features = [round(rng.uniform(-1.0, 2.5), 3) for _ in TRUE_WEIGHTS]
        score = sum(w * f for w, f in zip(TRUE_WEIGHTS, features, strict=True)) - 1.0
        label = int(score + rng.gauss(0.0, 0.8) > 0)
        at += timedelta(milliseconds=rng.randint(20, 300))
        out.append((at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), features, label))
    return out


def v1(features: list[float]) -> dict[str, object]:
    return {"instances": [features]}


def v2(features: list[float]) -> dict[str, object]:
    return {"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP64", "data": features}]}


def main() -> None:
    here = Path(__file__).resolve().parent
    recorded = events()
    for name, payload in (("events-v1.jsonl", v1), ("events-v2.jsonl", v2)):
        lines = [
            json.dumps({"timestamp": ts, "id": f"e{i}", "payload": payload(f), "label": label})
            for i, (ts, f, label) in enumerate(recorded, start=1)
        ]
        (here / name).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
