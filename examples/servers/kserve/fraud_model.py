"""A KServe model server: logistic regression over four features, no model file.

Run with ``python fraud_model.py --model_name fraud-scorer`` (any ModelServer flag works,
for example ``--http_port``). It answers the V1 protocol:

    POST /v1/models/fraud-scorer:predict  {"instances": [[0.1, 1.2, 0.3, 0.5]]}
    -> {"predictions": [0.62]}

and exports its request latency histograms on /metrics of the same port. The weights are
those of the demo model server's version v1; MODEL_VERSION=v2 selects v2's.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import kserve
import numpy as np

WEIGHTS = {
    "v1": ([0.8, -0.5, 1.2, 0.3], -0.2),
    "v2": ([0.85, -0.45, 1.3, 0.25], -0.25),
}


class FraudScorer(kserve.Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        weights, bias = WEIGHTS.get(os.environ.get("MODEL_VERSION", "v1"), WEIGHTS["v1"])
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = bias
        self.ready = True

    async def predict(
        self, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        instances = payload.get("instances")
        if not isinstance(instances, list) or not instances:
            raise kserve.errors.InvalidInput('expected {"instances": [[f1, f2, f3, f4], ...]}')
        features = np.asarray(instances, dtype=np.float64).reshape(-1, self.weights.shape[0])
        scores = 1.0 / (1.0 + np.exp(-(features @ self.weights + self.bias)))
        return {"predictions": [float(s) for s in scores]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    args, _ = parser.parse_known_args()
    kserve.ModelServer().start([FraudScorer(args.model_name)])
