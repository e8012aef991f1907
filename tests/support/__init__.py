"""Test support: a real Kubernetes control plane, a real Prometheus, and polling helpers."""
