"""Services: everything that talks to Kubernetes, Prometheus and model endpoints."""
