"""modelrollout: take machine learning models into production safely.

The package is layered. ``core`` holds pure decisions over typed models and never does
I/O; ``services`` talks to Kubernetes, Prometheus and model endpoints; ``handlers`` binds
the services to kopf; ``cli`` is the command line. An import-linter contract keeps the
order.
"""

__version__ = "0.1.0"
