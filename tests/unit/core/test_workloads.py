import pytest

from factories import build_md
from modelrollout.core import workloads


def test_pod_template_gets_labels_and_model_environment():
    md = build_md({"spec": {"model": {"uri": "s3://m/v1"}}})
    template = workloads.pod_template(md.spec, "fraud", "candidate")
    labels = template["metadata"]["labels"]
    assert labels[workloads.LABEL_NAME] == "fraud"
    assert labels[workloads.LABEL_TRACK] == "candidate"
    assert labels[workloads.LABEL_VERSION] == "v1"
    env = {e["name"]: e["value"] for e in template["spec"]["containers"][0]["env"]}
    assert env == {"MODEL_NAME": "fraud", "MODEL_VERSION": "v1", "MODEL_URI": "s3://m/v1"}
    # the user's spec is not modified
    assert "metadata" not in md.spec.workload.template


def test_user_model_variables_are_replaced_not_duplicated():
    md = build_md(
        {
            "spec": {
                "workload": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "m",
                                    "image": "x",
                                    "env": [
                                        {"name": "MODEL_VERSION", "value": "old"},
                                        {"name": "OTHER", "value": "1"},
                                    ],
                                }
                            ]
                        }
                    }
                }
            }
        }
    )
    env = workloads.pod_template(md.spec, "fraud", "stable")["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["OTHER", "MODEL_NAME", "MODEL_VERSION"]
    assert env[2]["value"] == "v1"


def test_desired_objects_are_owned_and_select_their_track():
    md = build_md()
    template = workloads.pod_template(md.spec, "fraud", "candidate")
    plan = workloads.TrackPlan(template=template, replicas=1, version="v1", hash="h")
    objects = workloads.desired_objects(md, stable=plan, candidate=plan)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds == [
        ("Service", "fraud"),
        ("Service", "fraud-stable"),
        ("Service", "fraud-candidate"),
        ("Deployment", "fraud-stable"),
        ("Deployment", "fraud-candidate"),
    ]
    for obj in objects:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "modelrollout.io/v1alpha1",
            "kind": "ModelDeployment",
            "name": "fraud",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert obj["metadata"]["namespace"] == "ml"
    live, stable_svc, _, stable_dep, candidate_dep = objects
    assert live["spec"]["selector"] == {
        workloads.LABEL_NAME: "fraud",
        workloads.LABEL_TRACK: "stable",
    }
    assert stable_svc["spec"]["selector"][workloads.LABEL_TRACK] == "stable"
    assert stable_dep["spec"]["template"]["metadata"]["labels"][workloads.LABEL_TRACK] == "stable"
    assert candidate_dep["spec"]["selector"]["matchLabels"][workloads.LABEL_TRACK] == "candidate"
    assert live["spec"]["ports"][0] == {
        "name": "http",
        "port": 80,
        "targetPort": 8080,
        "protocol": "TCP",
    }


def test_template_hash_follows_model_and_template():
    base = workloads.template_hash(build_md().spec)
    assert base == workloads.template_hash(build_md().spec)
    assert base != workloads.template_hash(build_md({"spec": {"model": {"version": "v2"}}}).spec)
    changed = build_md(
        {
            "spec": {
                "workload": {
                    "template": {"spec": {"containers": [{"name": "model", "image": "m:2"}]}}
                }
            }
        }
    )
    assert base != workloads.template_hash(changed.spec)
    # replicas are not part of what defines a candidate
    assert base == workloads.template_hash(build_md({"spec": {"workload": {"replicas": 5}}}).spec)


def test_a_deployment_without_replicas_leaves_them_to_another_manager():
    md = build_md()
    template = workloads.pod_template(md.spec, "fraud", "candidate")
    routed = workloads.TrackPlan(template=template, replicas=None, version="v1", hash="h")
    sized = workloads.TrackPlan(template=template, replicas=0, version="v1", hash="h")
    objects = workloads.desired_objects(md, stable=sized, candidate=routed, candidate_live=True)
    by_name = {o["metadata"]["name"]: o for o in objects}
    assert by_name["fraud-stable"]["spec"]["replicas"] == 0
    assert "replicas" not in by_name["fraud-candidate"]["spec"]
    assert set(by_name["fraud-candidate"]["spec"]) == {"selector", "template"}
    assert by_name["fraud"]["spec"]["selector"] == {workloads.LABEL_NAME: "fraud"}


def managed(manager, fields, subresource=None):
    entry = {"manager": manager, "operation": "Apply", "fieldsV1": fields}
    if subresource:
        entry["subresource"] = subresource
    return entry


REPLICAS = {"f:spec": {"f:replicas": {}}}
TEMPLATE = {"f:spec": {"f:template": {}, "f:selector": {}}}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param([], set(), id="no managedFields"),
        pytest.param([managed("a", REPLICAS)], {"a"}, id="one owner"),
        pytest.param([managed("a", TEMPLATE), managed("b", REPLICAS)], {"b"}, id="another field"),
        pytest.param(
            [
                managed("a", {"f:spec": {"f:replicas": {}, "f:template": {}}}),
                managed("b", REPLICAS),
            ],
            {"a", "b"},
            id="shared",
        ),
        pytest.param([managed("kubectl", REPLICAS, "scale")], {"kubectl"}, id="through scale"),
        pytest.param(
            [managed("ctl", {"f:status": {"f:replicas": {}}}, "status")],
            set(),
            id="status.replicas is not spec.replicas",
        ),
        pytest.param([{"manager": "x", "operation": "Update"}], set(), id="no fieldsV1"),
    ],
)
def test_field_managers_reads_who_owns_a_field(entries, expected):
    obj = {"metadata": {"managedFields": entries}}
    assert workloads.field_managers(obj, "spec", "replicas") == expected


CAPTURED = {
    "spec": {
        "monitoring": {
            "capture": {"enabled": True, "sample": 0.5, "maxDisk": "100Mi"},
            "labels": {"configMapKeyRef": {"name": "late", "key": "labels.jsonl"}},
        }
    }
}


def test_capture_injects_a_hardened_sidecar_in_front_of_the_model():
    md = build_md(CAPTURED)
    template = workloads.pod_template(md.spec, "fraud", "candidate", capture_image="img:1")
    containers = {c["name"]: c for c in template["spec"]["containers"]}
    sidecar = containers[workloads.CAPTURE_CONTAINER]
    assert sidecar["image"] == "img:1"
    args = sidecar["args"]
    assert args[args.index("--upstream") + 1] == f"http://127.0.0.1:{md.spec.serving.port}"
    assert args[args.index("--listen") + 1] == ":8081"
    assert args[args.index("--sample") + 1] == "0.5"
    assert args[args.index("--labels-file") + 1] == "/labels/labels.jsonl"
    assert int(args[args.index("--max-total-bytes") + 1]) == int(100 * 1024**2 * 0.9)
    assert {"name": "MODELROLLOUT_TRACK", "value": "candidate"} in sidecar["env"]
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["modelrollout-capture"]["emptyDir"] == {"sizeLimit": "100Mi"}
    assert volumes["modelrollout-labels"]["configMap"]["name"] == "late"
    assert workloads.has_capture(template)
    assert not workloads.has_capture(workloads.pod_template(build_md().spec, "fraud", "stable"))


def _ports(objs, name):
    (svc,) = [o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == name]
    return svc["spec"]["ports"][0]["targetPort"]


@pytest.mark.parametrize(
    ("stable_captured", "candidate_live", "live", "stable", "candidate"),
    [
        (False, False, 8080, 8080, 8081),  # a first version with capture: only its own Service
        (False, True, 8080, 8080, 8081),  # a mixed live Service cannot go through a sidecar
        (True, False, 8081, 8081, 8081),
        (True, True, 8081, 8081, 8081),
    ],
)
def test_services_go_through_the_sidecar_only_where_every_pod_has_one(
    stable_captured, candidate_live, live, stable, candidate
):
    md = build_md(CAPTURED)
    md.metadata["uid"] = "u"
    plain = build_md()
    captured_tmpl = workloads.pod_template(md.spec, "fraud", "candidate")
    stable_tmpl = workloads.pod_template((md if stable_captured else plain).spec, "fraud", "stable")
    objs = workloads.desired_objects(
        md,
        stable=workloads.TrackPlan(stable_tmpl, 2, "v1", "a"),
        candidate=workloads.TrackPlan(captured_tmpl, 2, "v2", "b"),
        candidate_live=candidate_live,
    )
    name = md.metadata["name"]
    assert _ports(objs, name) == live
    assert _ports(objs, f"{name}-stable") == stable
    assert _ports(objs, f"{name}-candidate") == candidate


def test_turning_capture_on_is_a_new_candidate():
    assert workloads.template_hash(build_md(CAPTURED).spec) != workloads.template_hash(
        build_md().spec
    )
