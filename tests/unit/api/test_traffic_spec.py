"""spec.traffic: the router kinds, and no bake without a router."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from factories import build_md

BAKING = {"steps": [{"weight": 10, "duration": "1m"}]}


@pytest.mark.parametrize("router", ["ReplicaRatio", "None"])
def test_a_router_kind_without_settings(router):
    md = build_md({"spec": {"traffic": {"router": router}}})
    assert md.spec.traffic.router == router


@pytest.mark.parametrize(
    ("router", "baking", "accepted"),
    [
        ("ReplicaRatio", BAKING, True),
        ("None", None, True),
        ("None", BAKING, False),
    ],
)
def test_no_bake_without_a_router(router, baking, accepted):
    patch = {"spec": {"traffic": {"router": router}, "stages": {"baking": baking}}}
    if accepted:
        build_md(patch)
        return
    with pytest.raises(ValidationError, match=r"needs a traffic router: with traffic\.router None"):
        build_md(patch)
