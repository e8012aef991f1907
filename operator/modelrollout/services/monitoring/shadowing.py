"""The operator's side of the shadow step: order it from the stable pods' sidecars, read
their counts back, merged.

Every read re-sends the order (``POST /monitoring/shadow``), so a sidecar that restarted,
or a stable pod that came up during the shadow, joins in; the order's time to live stops
the sidecars by themselves if the operator goes away. A pod that does not answer makes the
reading an error, never a smaller count that looks complete.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from modelrollout.core import names, rollout, workloads
from modelrollout.core.api.modeldeployment import ModelDeployment
from modelrollout.core.shadow import ShadowOrder, ShadowState, merge_states
from modelrollout.services.kube import Kube
from modelrollout.services.monitoring.windows import TIMEOUT, ready

SHADOW_PATH = "/monitoring/shadow"
ORDER_TTL_SECONDS = 120.0


def order(md: ModelDeployment) -> ShadowOrder:
    """What the stable sidecars are asked to do for the current candidate."""
    status, baking = md.status, md.spec.stages.baking
    assert status is not None
    assert baking is not None
    assert baking.shadow is not None
    namespace, name = md.metadata["namespace"], md.metadata["name"]
    service = f"{names.candidate_name(name)}.{namespace}.svc"
    return ShadowOrder(
        id=rollout.shadow_run(status),
        target=f"http://{service}:{md.spec.serving.service_port}",
        sample=baking.shadow.sample,
        ttl_seconds=ORDER_TTL_SECONDS,
    )


def read_shadow(kube: Kube, md: ModelDeployment) -> rollout.ShadowReading:
    """Order the shadow from every ready stable pod and merge what they counted."""
    shadow_order = order(md)
    namespace, name = str(md.metadata["namespace"]), str(md.metadata["name"])
    port = workloads.window_port(md.spec.monitoring.capture.port)
    selector = f"{workloads.LABEL_NAME}={name},{workloads.LABEL_TRACK}=stable"
    pods = [p for p in kube.list_pods(namespace, selector) if ready(p)]
    if not pods:
        return rollout.ShadowReading(None, "no stable pod is ready")
    states = []
    body = shadow_order.model_dump_json(by_alias=True)
    with httpx.Client(timeout=TIMEOUT) as client:
        for pod in pods:
            try:
                states.append(_ask(client, pod, port, body))
            except ShadowReadError as exc:
                return rollout.ShadowReading(None, str(exc))
    return rollout.ShadowReading(merge_states(shadow_order.id, states))


class ShadowReadError(Exception):
    """A sidecar did not take the order or answer its counts; the message names the pod."""


def _ask(client: httpx.Client, pod: dict[str, Any], port: int, body: str) -> ShadowState:
    name = pod["metadata"]["name"]
    url = f"http://{pod['status']['podIP']}:{port}{SHADOW_PATH}"
    try:
        response = client.post(url, content=body, headers={"content-type": "application/json"})
        response.raise_for_status()
        return ShadowState.model_validate_json(response.content)
    except httpx.HTTPError as exc:
        raise ShadowReadError(f"pod {name}: the capture sidecar did not answer: {exc}") from exc
    except ValidationError as exc:
        raise ShadowReadError(f"pod {name}: not shadow counts: {exc.errors()[0]}") from exc
