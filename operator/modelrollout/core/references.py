"""Objects a spec refers to, so that a missing one is reported instead of failing later.

A spec can pass the schema and still be impossible to act on: the ConfigMap with the
replay events does not exist yet, or the pod template mounts a Secret that was never
created. The operator lists every such reference with the field that holds it, looks
them up, and reports the missing ones in a ``ReferencesResolved`` condition and an Event,
naming the field. It retries, and carries on by itself once the object appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from modelrollout.core import reasons
from modelrollout.core.api.modeldeployment import ModelDeploymentSpec
from modelrollout.core.api.replaytest import ReplaySettings, ReplayTestSpec
from modelrollout.core.conditions import Recorder

RefKind = Literal["ConfigMap", "Secret"]
_KEY_REFS: tuple[tuple[str, RefKind], ...] = (
    ("configMapKeyRef", "ConfigMap"),
    ("secretKeyRef", "Secret"),
)
_OBJECT_REFS: tuple[tuple[str, RefKind], ...] = (
    ("configMapRef", "ConfigMap"),
    ("secretRef", "Secret"),
)


@dataclass(frozen=True, order=True)
class Reference:
    kind: RefKind
    name: str
    key: str | None
    field: str

    def describe(self) -> str:
        key = f" key {self.key!r}" if self.key else ""
        return f"{self.kind} {self.name!r}{key} (referenced by {self.field})"


def _replay_refs(replay: ReplaySettings, prefix: str) -> list[Reference]:
    ref = replay.events.config_map_key_ref
    if ref is None:
        return []
    return [Reference("ConfigMap", ref.name, ref.key, f"{prefix}.events.configMapKeyRef")]


def _pod_template_refs(template: dict[str, Any], prefix: str) -> list[Reference]:
    refs: list[Reference] = []
    spec = template.get("spec") or {}
    for i, volume in enumerate(spec.get("volumes") or []):
        cm = volume.get("configMap")
        if isinstance(cm, dict) and cm.get("name") and not cm.get("optional"):
            refs.append(
                Reference("ConfigMap", cm["name"], None, f"{prefix}.spec.volumes[{i}].configMap")
            )
        secret = volume.get("secret")
        if isinstance(secret, dict) and secret.get("secretName") and not secret.get("optional"):
            refs.append(
                Reference(
                    "Secret", secret["secretName"], None, f"{prefix}.spec.volumes[{i}].secret"
                )
            )
    for group in ("initContainers", "containers"):
        for c, container in enumerate(spec.get(group) or []):
            where = f"{prefix}.spec.{group}[{c}]"
            for e, env in enumerate(container.get("env") or []):
                source = env.get("valueFrom") or {}
                for field, kind in _KEY_REFS:
                    ref = source.get(field)
                    if isinstance(ref, dict) and ref.get("name") and not ref.get("optional"):
                        refs.append(
                            Reference(
                                kind,
                                ref["name"],
                                ref.get("key"),
                                f"{where}.env[{e}].valueFrom.{field}",
                            )
                        )
            for e, env_from in enumerate(container.get("envFrom") or []):
                for field, kind in _OBJECT_REFS:
                    ref = env_from.get(field)
                    if isinstance(ref, dict) and ref.get("name") and not ref.get("optional"):
                        refs.append(
                            Reference(kind, ref["name"], None, f"{where}.envFrom[{e}].{field}")
                        )
    return refs


def model_deployment_refs(spec: ModelDeploymentSpec) -> list[Reference]:
    """Every ConfigMap and Secret a ModelDeployment needs, with the field naming it."""
    refs = _pod_template_refs(spec.workload.template, "spec.workload.template")
    replay = spec.stages.non_production.replay
    if spec.stages.non_production.enabled and replay is not None:
        refs += _replay_refs(replay, "spec.stages.nonProduction.replay")
    baking = spec.stages.baking
    if baking is not None and baking.analysis is not None:
        token = baking.analysis.provider.bearer_token_secret_ref
        if token is not None:
            refs.append(
                Reference(
                    "Secret",
                    token.name,
                    token.key,
                    "spec.stages.baking.analysis.provider.bearerTokenSecretRef",
                )
            )
    for i, notifier in enumerate(spec.notifications):
        if notifier.url_secret_ref is not None:
            refs.append(
                Reference(
                    "Secret",
                    notifier.url_secret_ref.name,
                    notifier.url_secret_ref.key,
                    f"spec.notifications[{i}].urlSecretRef",
                )
            )
    return sorted(set(refs))


def replay_test_refs(spec: ReplayTestSpec) -> list[Reference]:
    return _replay_refs(spec, "spec")


def missing_message(missing: list[Reference]) -> str:
    return "; ".join(f"{ref.describe()} not found" for ref in missing)


def resolved(record: Recorder, missing: list[Reference], *, also: tuple[str, ...] = ()) -> bool:
    """Record whether every reference was found: the ``ReferencesResolved`` condition (and
    the conditions in ``also``, set False while something is missing), with a Warning Event
    each time the list of missing objects changes. True when nothing is missing."""
    if not missing:
        record.condition(
            reasons.REFERENCES, True, reasons.REFERENCES_FOUND, "every referenced object exists"
        )
        return True
    message = missing_message(missing)
    if record.changed(reasons.REFERENCES, message):
        record.event("Warning", reasons.MISSING_REFERENCE, message)
    for type_ in (reasons.REFERENCES, *also):
        record.condition(type_, False, reasons.MISSING_REFERENCE, message)
    return False
