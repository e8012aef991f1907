"""A real HTTP model server for tests, benchmarks and demos.

It serves a small logistic-regression model over the KServe v1 protocol with aiohttp,
exposes Prometheus metrics, injects latency and errors on demand, and records its own
per-request service times so that a load generator's measurements can be checked
against the server's ground truth. Run it with ``modelrollout serve-model`` or
``python -m modelrollout.modelserver``.
"""

from modelrollout.modelserver.app import ServerConfig, create_app
from modelrollout.modelserver.model import LogisticModel

__all__ = ["LogisticModel", "ServerConfig", "create_app"]
