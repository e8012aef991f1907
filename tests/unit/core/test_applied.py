"""Whether a live object still carries an applied manifest: the manifest hash, and the
one-sided comparison of the fields the manifest sets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from factories import build_md
from modelrollout.core import applied, workloads

MD = build_md()
OWNER = workloads.Owner.of(MD)
TEMPLATE = workloads.pod_template(MD.spec, "fraud", "stable")


def deployment() -> dict[str, Any]:
    return applied.with_hash(
        workloads.deployment(OWNER, "stable", TEMPLATE, replicas=2, version="v1", hash_="abc")
    )


def service() -> dict[str, Any]:
    return applied.with_hash(workloads.service(OWNER, MD.spec, "stable"))


def as_stored(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as the apiserver returns it: defaults, status, other tools' metadata."""
    live = copy.deepcopy(manifest)
    meta = live["metadata"]
    meta.update(uid="u-1", resourceVersion="42", generation=3, managedFields=[{"manager": "x"}])
    meta["annotations"]["deployment.kubernetes.io/revision"] = "7"
    spec = live["spec"]
    if live["kind"] == "Deployment":
        spec.update(revisionHistoryLimit=10, progressDeadlineSeconds=600, strategy={"type": "X"})
        pod = spec["template"]["spec"]
        pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst", securityContext={})
        for container in pod["containers"]:
            container.update(imagePullPolicy="IfNotPresent", resources={})
        live["status"] = {"replicas": 2, "readyReplicas": 1}
    else:
        spec.update(clusterIP="10.0.0.1", clusterIPs=["10.0.0.1"], sessionAffinity="None")
        live["status"] = {"loadBalancer": {}}
    return live


@pytest.mark.parametrize("manifest", [deployment, service])
def test_an_object_as_stored_carries_its_manifest(manifest) -> None:
    desired = manifest()
    assert applied.carries(as_stored(desired), desired)


def edit(manifest: dict[str, Any], change) -> dict[str, Any]:
    live = as_stored(manifest)
    change(live)
    return live


def scaled(live):
    live["spec"]["replicas"] = 5


def new_image(live):
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "other:2"


def label_removed(live):
    del live["metadata"]["labels"][workloads.LABEL_MANAGED_BY]


def env_added(live):
    live["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "X", "value": "1"})


def selector_widened(live):
    live["spec"]["selector"]["extra"] = "yes"


def port_changed(live):
    live["spec"]["ports"][0]["port"] = 81


def owner_replaced(live):
    live["metadata"]["ownerReferences"][0]["uid"] = "someone-else"


def old_hash(live):
    live["metadata"]["annotations"][applied.ANNOTATION] = "0" * 16


@pytest.mark.parametrize(
    ("manifest", "change"),
    [
        (deployment, scaled),
        (deployment, new_image),
        (deployment, label_removed),
        (deployment, env_added),
        (deployment, owner_replaced),
        (deployment, old_hash),
        (service, selector_widened),
        (service, port_changed),
        (service, label_removed),
    ],
)
def test_drift_by_another_writer_is_seen(manifest, change) -> None:
    desired = manifest()
    assert not applied.carries(edit(desired, change), desired)


def extra_label(live):
    live["metadata"]["labels"]["team"] = "ml"


def restarted(live):
    live["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {})[
        "kubectl.kubernetes.io/restartedAt"
    ] = "2026-12-02T06:00:00Z"


def limits_added(live):
    live["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}


@pytest.mark.parametrize("change", [extra_label, restarted, limits_added])
def test_what_other_managers_add_beside_the_manifest_is_not_drift(change) -> None:
    desired = deployment()
    assert applied.carries(edit(desired, change), desired)


@pytest.mark.parametrize(
    ("live", "desired", "expected"),
    [
        ({}, {"args": []}, True),  # empty fields are not stored
        ({}, {"paused": False}, True),
        ({}, {"note": ""}, True),
        ({}, {"replicas": 0}, True),
        ({"replicas": 1}, {"replicas": 0}, False),
        ({"flag": 1}, {"flag": True}, False),  # JSON true is not 1
        ({"flag": True}, {"flag": True}, True),
        ({"n": 1}, {"n": 1.0}, True),
        ({"items": [1, 2]}, {"items": [1]}, False),
        ({"items": "x"}, {"items": ["x"]}, False),
        ({"spec": "x"}, {"spec": {"a": "b"}}, False),
        (
            {"metadata": {"labels": {"a": "b", "c": "d"}}},
            {"metadata": {"labels": {"a": "b"}}},
            True,
        ),
        ({"nodeSelector": {"a": "b", "c": "d"}}, {"nodeSelector": {"a": "b"}}, False),
        ({"matchLabels": {"a": "b", "c": "d"}}, {"matchLabels": {"a": "b"}}, False),
        # under metadata, a key named like an atomic map is a label like any other
        (
            {"metadata": {"selector": {"a": "b", "c": "d"}}},
            {"metadata": {"selector": {"a": "b"}}},
            True,
        ),
    ],
)
def test_the_comparison_rules(live, desired, expected) -> None:
    assert applied.carries(live, desired) is expected


def test_the_hash_is_of_the_content_and_leaves_out_its_own_annotation() -> None:
    manifest = workloads.service(OWNER, MD.spec, "stable")
    reordered = dict(reversed(list(manifest.items())))
    assert applied.manifest_hash(manifest) == applied.manifest_hash(reordered)
    annotated = applied.with_hash(manifest)
    assert annotated["metadata"]["annotations"][applied.ANNOTATION] == applied.manifest_hash(
        manifest
    )
    assert applied.manifest_hash(annotated) == applied.manifest_hash(manifest)
    assert applied.with_hash(annotated) == annotated
    assert "annotations" not in manifest["metadata"]  # the input is not modified
    changed = copy.deepcopy(manifest)
    changed["spec"]["ports"][0]["port"] = 81
    assert applied.manifest_hash(changed) != applied.manifest_hash(manifest)
