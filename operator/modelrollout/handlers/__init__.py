"""kopf bindings. Each handler is a few lines: it hands the work to a service from ``memo``."""
