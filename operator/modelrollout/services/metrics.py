"""The operator's own Prometheus metrics, in the text exposition format.

A handful of counters and gauges are enough (reconciles, errors, phases, weights), so they
are kept in a tiny registry here rather than adding a client library dependency.
"""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}

    def describe(self, name: str, kind: str, help_text: str) -> None:
        self._help[name] = (kind, help_text)

    def inc(self, metric: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[metric][key] = self._values[metric].get(key, 0.0) + amount

    def set(self, metric: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[metric][key] = value

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name in sorted(set(self._help) | set(self._values)):
                kind, help_text = self._help.get(name, ("untyped", ""))
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                for labels, value in sorted(self._values.get(name, {}).items()):
                    rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    lines.append(
                        f"{name}{{{rendered}}} {value:g}" if rendered else f"{name} {value:g}"
                    )
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


REGISTRY = Registry()
REGISTRY.describe("modelrollout_reconcile_total", "counter", "Reconciles by kind and result.")
REGISTRY.describe("modelrollout_phase", "gauge", "1 for the current phase of each object.")
REGISTRY.describe("modelrollout_candidate_weight", "gauge", "Percent of traffic to the candidate.")
