"""Tests of what happens where an optional package is not installed."""

from __future__ import annotations

import importlib

import pytest


def hide_module(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    """Make ``importlib.import_module(hidden)`` raise ImportError for the rest of the test."""
    real = importlib.import_module

    def import_module(name: str, package: str | None = None) -> object:
        if name == hidden:
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", import_module)
