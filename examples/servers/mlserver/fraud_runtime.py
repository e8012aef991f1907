"""A custom MLServer runtime: logistic regression over four features, no model file.

Served by ``mlserver start examples/servers/mlserver`` (model-settings.json in
fraud-scorer/ names this class). It answers the Open Inference Protocol (V2):

    POST /v2/models/fraud-scorer/infer
    {"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP64",
                 "data": [0.1, 1.2, 0.3, 0.5]}]}
    -> {"outputs": [{"name": "score", "shape": [1], "datatype": "FP64", "data": [0.62]}], ...}

The weights are those of the demo model server's version v1; MODEL_VERSION=v2 selects
v2's, so two versions answer slightly differently, as a retrained model would.
"""

from __future__ import annotations

import os

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

WEIGHTS = {
    "v1": ([0.8, -0.5, 1.2, 0.3], -0.2),
    "v2": ([0.85, -0.45, 1.3, 0.25], -0.25),
}


class FraudScorer(MLModel):
    async def load(self) -> bool:
        weights, bias = WEIGHTS.get(os.environ.get("MODEL_VERSION", "v1"), WEIGHTS["v1"])
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = bias
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        features = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float64)
        features = features.reshape(-1, self.weights.shape[0])
        scores = 1.0 / (1.0 + np.exp(-(features @ self.weights + self.bias)))
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[
                ResponseOutput(
                    name="score",
                    shape=[int(scores.shape[0])],
                    datatype="FP64",
                    data=[float(s) for s in scores],
                )
            ],
        )
