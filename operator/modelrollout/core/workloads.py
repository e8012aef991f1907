"""What to create for a ModelDeployment: the stable and candidate workloads.

Every ModelDeployment owns:

* ``<name>-stable``: a Deployment running the version in production. It is scaled to zero
  until a first version reaches Production, and receives the candidate's template when a
  candidate is promoted (the Flagger "primary" pattern, which keeps the stable pods
  untouched for the whole rollout).
* ``<name>-candidate``: a Deployment built from ``spec.workload.template`` with the version
  under test. It is scaled to zero when no rollout is in progress.
* three Services: ``<name>-stable`` and ``<name>-candidate`` select one track each (replay
  targets, HTTPRoute backends); ``<name>`` selects the live pods of both tracks, which is
  what the ReplicaRatio router shapes with replica counts.

A Deployment's ``spec.replicas`` is left out of its manifest while a router sets it (the
ReplicaRatio router during a bake, under its own field manager): with server-side apply,
a field in the manifest is claimed on every apply, so writing it here too would make two
writers fight over it. :func:`field_managers` reads who owns a field from an object's
``managedFields``.

The builders here are pure: they take typed models and return plain manifests with owner
references, labels and a hash of what they were built from. The service layer applies
them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from modelrollout.core import names
from modelrollout.core.api.common import API_VERSION
from modelrollout.core.api.modeldeployment import ModelDeployment, ModelDeploymentSpec

Track = Literal["stable", "candidate"]

LABEL_NAME = "modelrollout.io/name"
LABEL_TRACK = "modelrollout.io/track"
LABEL_VERSION = "modelrollout.io/version"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
ANNOTATION_HASH = "modelrollout.io/template-hash"
MANAGER = "modelrollout"


def template_hash(spec: ModelDeploymentSpec) -> str:
    """A short hash of everything that defines a candidate: the model and its pod template
    (with the capture sidecar's settings, when it is on)."""
    content: dict[str, Any] = {
        "model": spec.model.to_wire(),
        "template": spec.workload.template,
        "serving": spec.serving.to_wire(),
    }
    capture = spec.monitoring.capture
    if capture.enabled:
        content["capture"] = capture.to_wire()
        if spec.monitoring.labels is not None:
            content["labels"] = spec.monitoring.labels.to_wire()
    material = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Owner:
    """Enough of the ModelDeployment to own and label its children."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, md: ModelDeployment) -> Owner:
        meta = md.metadata
        return cls(name=str(meta["name"]), namespace=str(meta["namespace"]), uid=str(meta["uid"]))

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "ModelDeployment",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def selector_labels(owner: str, track: Track | None) -> dict[str, str]:
    labels = {LABEL_NAME: owner}
    if track is not None:
        labels[LABEL_TRACK] = track
    return labels


def _metadata(
    owner: Owner, name: str, track: Track | None, version: str | None, hash_: str | None
) -> dict[str, Any]:
    labels = {**selector_labels(owner.name, track), LABEL_MANAGED_BY: MANAGER}
    if version is not None:
        labels[LABEL_VERSION] = label_value(version)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner.reference()],
    }
    if hash_ is not None:
        meta["annotations"] = {ANNOTATION_HASH: hash_}
    return meta


def label_value(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value)[:63]
    return cleaned.strip("-_.") or "none"


def pod_template(
    spec: ModelDeploymentSpec, owner: str, track: Track, *, capture_image: str | None = None
) -> dict[str, Any]:
    """The user's pod template with our labels and the model environment variables, and the
    capture sidecar when ``spec.monitoring.capture`` is on."""
    template = copy.deepcopy(spec.workload.template)
    meta = template.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    labels.update(selector_labels(owner, track))
    labels[LABEL_VERSION] = label_value(spec.model.version)
    pod_spec = template.setdefault("spec", {})
    model_env = [
        {"name": "MODEL_NAME", "value": spec.model.name},
        {"name": "MODEL_VERSION", "value": spec.model.version},
    ]
    if spec.model.uri:
        model_env.append({"name": "MODEL_URI", "value": spec.model.uri})
    for container in pod_spec.get("containers", []):
        env = [
            e
            for e in container.get("env", [])
            if e.get("name") not in {"MODEL_NAME", "MODEL_VERSION", "MODEL_URI"}
        ]
        container["env"] = env + model_env
    if spec.monitoring.capture.enabled:
        _inject_capture(pod_spec, spec, track, capture_image or DEFAULT_CAPTURE_IMAGE)
    return template


CAPTURE_CONTAINER = "modelrollout-capture"
CAPTURE_DIR = "/capture"
LABELS_DIR = "/labels"
DEFAULT_CAPTURE_IMAGE = "modelrollout:0.1.0"
RESTRICTED = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def window_port(capture_port: int) -> int:
    """The sidecar's own port (metrics, health, the live window): next to the proxy's."""
    return capture_port + 1


def _inject_capture(
    pod_spec: dict[str, Any], spec: ModelDeploymentSpec, track: Track, image: str
) -> None:
    """The capture sidecar: a proxy in front of the model container that records what it
    forwards and keeps the live window (features, predictions, labelled answers)."""
    capture = spec.monitoring.capture
    quantity = int(capture.max_disk[:-2])
    unit = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}[capture.max_disk[-2:]]
    args = [
        "capture",
        "--listen", f":{capture.port}",
        "--upstream", f"http://127.0.0.1:{spec.serving.port}",
        "--metrics-listen", f":{window_port(capture.port)}",
        "--dir", CAPTURE_DIR,
        "--sample", f"{capture.sample:g}",
        "--max-total-bytes", str(int(quantity * unit * 0.9)),
    ]  # fmt: skip
    volumes = pod_spec.setdefault("volumes", [])
    volumes.append({"name": "modelrollout-capture", "emptyDir": {"sizeLimit": capture.max_disk}})
    mounts: list[dict[str, Any]] = [{"name": "modelrollout-capture", "mountPath": CAPTURE_DIR}]
    labels = spec.monitoring.labels
    if labels is not None and labels.config_map_key_ref is not None:
        ref = labels.config_map_key_ref
        volumes.append(
            {
                "name": "modelrollout-labels",
                "configMap": {"name": ref.name, "items": [{"key": ref.key, "path": ref.key}]},
            }
        )
        mounts.append({"name": "modelrollout-labels", "mountPath": LABELS_DIR, "readOnly": True})
        args += ["--labels-file", f"{LABELS_DIR}/{ref.key}"]
    elif labels is not None and labels.url is not None:
        args += ["--labels-url", labels.url]
    pod_spec.setdefault("containers", []).append(
        {
            "name": CAPTURE_CONTAINER,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "args": args,
            "env": [
                {"name": "MODELROLLOUT_VERSION", "value": spec.model.version},
                {"name": "MODELROLLOUT_TRACK", "value": track},
            ],
            "ports": [
                {"name": "mr-capture", "containerPort": capture.port},
                {"name": "mr-window", "containerPort": window_port(capture.port)},
            ],
            "readinessProbe": {
                "httpGet": {"path": "/healthz", "port": window_port(capture.port)},
                "periodSeconds": 2,
            },
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": "256Mi"},
            },
            "securityContext": RESTRICTED,
            "volumeMounts": mounts,
        }
    )


def has_capture(template: dict[str, Any]) -> bool:
    """Whether pods of this template run the capture sidecar."""
    containers = (template.get("spec") or {}).get("containers") or []
    return any(c.get("name") == CAPTURE_CONTAINER for c in containers)


def deployment(
    owner: Owner,
    track: Track,
    template: dict[str, Any],
    *,
    replicas: int | None,
    version: str | None,
    hash_: str | None,
) -> dict[str, Any]:
    """A Deployment for one track, from an already labelled pod template.

    ``replicas`` None leaves ``spec.replicas`` out: another field manager owns it.
    """
    name = names.stable_name(owner.name) if track == "stable" else names.candidate_name(owner.name)
    tmpl = copy.deepcopy(template)
    tmpl.setdefault("metadata", {}).setdefault("labels", {}).update(
        selector_labels(owner.name, track)
    )
    spec: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    spec["selector"] = {"matchLabels": selector_labels(owner.name, track)}
    spec["template"] = tmpl
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, name, track, version, hash_),
        "spec": spec,
    }


def service(
    owner: Owner,
    spec: ModelDeploymentSpec,
    track: Track | None,
    *,
    live_tracks: Track | None = "stable",
    captured: bool = False,
) -> dict[str, Any]:
    """The Service of one track, or (track None) the live Service.

    The live Service selects the stable pods, and the candidate's too while the ReplicaRatio
    router splits the replicas during a bake (``live_tracks=None``): a candidate never gets
    live traffic before it has passed its replay. ``captured``: every pod it selects runs
    the capture sidecar, so it sends traffic through it.
    """
    if track == "stable":
        name = names.stable_name(owner.name)
    elif track == "candidate":
        name = names.candidate_name(owner.name)
    else:
        name = names.live_service_name(owner.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name, track, None, None),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner.name, track if track else live_tracks),
            "ports": [
                {
                    "name": "http",
                    "port": spec.serving.service_port,
                    "targetPort": (spec.monitoring.capture.port if captured else spec.serving.port),
                    "protocol": "TCP",
                }
            ],
        },
    }


@dataclass(frozen=True)
class TrackPlan:
    """What one track should run; ``replicas`` None leaves them to the traffic router."""

    template: dict[str, Any]
    replicas: int | None
    version: str | None
    hash: str | None


def desired_objects(
    md: ModelDeployment,
    *,
    stable: TrackPlan,
    candidate: TrackPlan,
    candidate_live: bool = False,
) -> list[dict[str, Any]]:
    """Every object the ModelDeployment owns, in the order they should be applied."""
    owner = Owner.of(md)
    stable_captured = has_capture(stable.template)
    candidate_captured = has_capture(candidate.template)
    # The live Service sends every request to one port: through the sidecar only when every
    # pod it selects has one.
    live_captured = stable_captured and (candidate_captured or not candidate_live)
    return [
        service(
            owner,
            md.spec,
            None,
            live_tracks=None if candidate_live else "stable",
            captured=live_captured,
        ),
        service(owner, md.spec, "stable", captured=stable_captured),
        service(owner, md.spec, "candidate", captured=candidate_captured),
        deployment(
            owner,
            "stable",
            stable.template,
            replicas=stable.replicas,
            version=stable.version,
            hash_=stable.hash,
        ),
        deployment(
            owner,
            "candidate",
            candidate.template,
            replicas=candidate.replicas,
            version=candidate.version,
            hash_=candidate.hash,
        ),
    ]


def field_managers(obj: dict[str, Any], *path: str) -> frozenset[str]:
    """The field managers that own the field at ``path`` (``"spec", "replicas"``) of an
    object read from the apiserver, from its ``metadata.managedFields``.

    A manager owns a field when its ``fieldsV1`` set has the field (``f:spec`` then
    ``f:replicas``); writes through a subresource count too (``kubectl scale`` owns
    ``spec.replicas`` through ``scale``).
    """
    owners: set[str] = set()
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        node: Any = entry.get("fieldsV1") or {}
        for key in path:
            node = node.get(f"f:{key}") if isinstance(node, dict) else None
        if node is not None and entry.get("manager"):
            owners.add(str(entry["manager"]))
    return frozenset(owners)
