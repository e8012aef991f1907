import copy

import pytest

from modelrollout.core import traffic
from modelrollout.core.errors import InvalidSpec


@pytest.mark.parametrize(
    ("stable_replicas", "weight", "candidate_min", "expected"),
    [
        (4, 0, 1, (4, 0)),
        (0, 0, 1, (0, 0)),
        (4, 100, 1, (0, 4)),
        (0, 100, 1, (0, 1)),
        (4, 100, 6, (0, 6)),
        (10, 10, 1, (9, 1)),
        (10, 50, 1, (5, 5)),
        (10, 25, 1, (8, 3)),
        (3, 10, 1, (3, 1)),
        (2, 90, 1, (1, 2)),
        (1, 1, 1, (1, 1)),
        (1, 99, 1, (1, 1)),
        (100, 1, 1, (99, 1)),
        (5, 20, 2, (4, 2)),
        (0, 30, 1, (0, 1)),
    ],
)
def test_replica_split(stable_replicas, weight, candidate_min, expected):
    assert traffic.replica_split(stable_replicas, weight, candidate_min=candidate_min) == expected


@pytest.mark.parametrize("stable_replicas", range(21))
def test_replica_split_keeps_the_pool_and_both_tracks(stable_replicas):
    for weight in range(101):
        stable, candidate = traffic.replica_split(stable_replicas, weight)
        assert stable_replicas <= stable + candidate <= stable_replicas + 1
        assert (candidate == 0) == (weight == 0)
        assert (stable == 0) == (weight == 100 or stable_replicas == 0)
        if stable_replicas >= 1 and 0 < weight < 100:
            # Each track has at least the pods its share needs.
            assert 100 * stable >= stable_replicas * (100 - weight)
            assert 100 * candidate >= stable_replicas * weight


@pytest.mark.parametrize(
    ("stable_replicas", "weight", "candidate_min"),
    [(-1, 10, 1), (3, 101, 1), (3, -1, 1), (3, 10, 0)],
)
def test_replica_split_rejects_bad_arguments(stable_replicas, weight, candidate_min):
    with pytest.raises(ValueError, match="must"):
        traffic.replica_split(stable_replicas, weight, candidate_min=candidate_min)


@pytest.mark.parametrize(
    ("stable", "candidate", "expected"),
    [
        (0, 0, 0),
        (5, 0, 0),
        (0, 5, 100),
        (9, 1, 10),
        (3, 1, 25),
        (2, 1, 33),
        (1, 2, 67),
        (1, 1, 50),
        (7, 1, 13),
        (999, 1, 1),
        (1, 999, 99),
    ],
)
def test_effective_weight(stable, candidate, expected):
    assert traffic.effective_weight(stable, candidate) == expected


def test_effective_weight_rejects_negative_counts():
    with pytest.raises(ValueError, match="negative"):
        traffic.effective_weight(-1, 2)


RULE_INDEX = "spec.traffic.gatewayAPI.ruleIndex"
STABLE = "fraud-stable"
CANDIDATE = "fraud-candidate"


def route(*rules):
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "fraud", "namespace": "ml", "resourceVersion": "7"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["fraud.example.com"],
            "rules": list(rules),
        },
    }


MATCHES = [{"path": {"type": "PathPrefix", "value": "/v1"}}]
FILTERS = [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "x"}]}}]
OTHER_RULE = {
    "matches": [{"path": {"type": "Exact", "value": "/x"}}],
    "backendRefs": [{"name": STABLE, "port": 80}],
}


def ref(name, weight, **extra):
    return {"group": "", "kind": "Service", "name": name, "port": 80, "weight": weight, **extra}


@pytest.mark.parametrize(
    ("rule", "stable_weight", "candidate_weight", "expected_refs"),
    [
        pytest.param(
            {"matches": MATCHES},
            90,
            10,
            [ref(STABLE, 90), ref(CANDIDATE, 10)],
            id="no backendRefs yet",
        ),
        pytest.param(
            {"matches": MATCHES, "backendRefs": [{"name": STABLE, "port": 8080}]},
            0,
            100,
            [ref(STABLE, 0), ref(CANDIDATE, 100)],
            id="stable only, port replaced",
        ),
        pytest.param(
            {"backendRefs": [{"name": STABLE, "port": 80, "weight": 1, "filters": FILTERS}]},
            75,
            25,
            [ref(STABLE, 75, filters=FILTERS), ref(CANDIDATE, 25)],
            id="filters of an existing backendRef kept",
        ),
        pytest.param(
            {"backendRefs": [ref(CANDIDATE, 10), ref(STABLE, 90)]},
            50,
            50,
            [ref(STABLE, 50), ref(CANDIDATE, 50)],
            id="reordered stable first",
        ),
        pytest.param(
            {
                "backendRefs": [
                    {"name": "legacy", "port": 80},
                    {"name": STABLE, "namespace": "other", "port": 80, "weight": 3},
                    {"name": STABLE, "kind": "ServiceImport", "group": "multicluster.x-k8s.io"},
                ]
            },
            90,
            10,
            [ref(STABLE, 90), ref(CANDIDATE, 10)],
            id="other backends dropped",
        ),
        pytest.param(
            {"backendRefs": [{"name": STABLE, "namespace": "ml", "port": 80}]},
            100,
            0,
            [ref(STABLE, 100, namespace="ml"), ref(CANDIDATE, 0)],
            id="same namespace written out",
        ),
    ],
)
def test_httproute_weights_sets_only_the_chosen_rule(
    rule, stable_weight, candidate_weight, expected_refs
):
    original = route(OTHER_RULE, {**rule, "filters": FILTERS, "name": "live"})
    before = copy.deepcopy(original)
    patch = traffic.httproute_weights(
        original,
        rule_index=1,
        stable_service=STABLE,
        candidate_service=CANDIDATE,
        port=80,
        stable_weight=stable_weight,
        candidate_weight=candidate_weight,
    )
    assert original == before
    assert list(patch) == ["spec"]
    assert list(patch["spec"]) == ["rules"]
    rules = patch["spec"]["rules"]
    assert rules[0] == OTHER_RULE
    assert rules[1]["backendRefs"] == expected_refs
    assert {k: v for k, v in rules[1].items() if k != "backendRefs"} == {
        k: v for k, v in before["spec"]["rules"][1].items() if k != "backendRefs"
    }


def test_httproute_weights_is_stable_once_applied():
    first = traffic.httproute_weights(
        route({"backendRefs": [{"name": STABLE, "port": 80, "filters": FILTERS}]}),
        rule_index=0,
        stable_service=STABLE,
        candidate_service=CANDIDATE,
        port=80,
        stable_weight=90,
        candidate_weight=10,
    )
    applied = route(*first["spec"]["rules"])
    again = traffic.httproute_weights(
        applied,
        rule_index=0,
        stable_service=STABLE,
        candidate_service=CANDIDATE,
        port=80,
        stable_weight=90,
        candidate_weight=10,
    )
    assert again["spec"]["rules"] == applied["spec"]["rules"]


@pytest.mark.parametrize(
    ("obj", "rule_index", "field", "message"),
    [
        (route(OTHER_RULE), 1, RULE_INDEX, "has 1 rule; there is no rule 1"),
        (route(OTHER_RULE, OTHER_RULE), 5, RULE_INDEX, "has 2 rules; there is no rule 5"),
        (route(OTHER_RULE), -1, RULE_INDEX, "there is no rule -1"),
        (route(), 0, RULE_INDEX, "has 0 rules"),
        ({"metadata": {"name": "fraud"}, "spec": {}}, 0, RULE_INDEX, "has 0 rules"),
        (route("not a rule"), 0, "spec.traffic.gatewayAPI.httpRoute", "malformed spec.rules"),
    ],
)
def test_httproute_weights_rejects_a_missing_rule(obj, rule_index, field, message):
    with pytest.raises(InvalidSpec, match=message) as raised:
        traffic.httproute_weights(
            obj,
            rule_index=rule_index,
            stable_service=STABLE,
            candidate_service=CANDIDATE,
            port=80,
            stable_weight=100,
            candidate_weight=0,
        )
    assert raised.value.field == field
    assert "HTTPRoute fraud" in str(raised.value)


@pytest.mark.parametrize(
    ("stable_weight", "candidate_weight", "stable_service"),
    [(101, 0, STABLE), (100, -1, STABLE), (50, 50, CANDIDATE)],
)
def test_httproute_weights_rejects_bad_arguments(stable_weight, candidate_weight, stable_service):
    with pytest.raises(ValueError, match="must"):
        traffic.httproute_weights(
            route(OTHER_RULE),
            rule_index=0,
            stable_service=stable_service,
            candidate_service=CANDIDATE,
            port=80,
            stable_weight=stable_weight,
            candidate_weight=candidate_weight,
        )


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ([], None),
        ([ref(STABLE, 100)], None),
        ([ref(CANDIDATE, 100)], None),
        ([ref(STABLE, 90), ref(CANDIDATE, 10)], (90, 10)),
        ([ref(CANDIDATE, 100), ref(STABLE, 0)], (0, 100)),
        ([{"name": STABLE}, {"name": CANDIDATE}], (50, 50)),
        ([ref(STABLE, 3), ref(CANDIDATE, 1), ref("legacy", 100)], (75, 25)),
        ([ref(STABLE, 0), ref(CANDIDATE, 0)], (0, 0)),
        ([ref(STABLE, 1, namespace="other"), ref(CANDIDATE, 1)], None),
    ],
)
def test_route_weights(refs, expected):
    found = traffic.route_weights(
        route({"backendRefs": refs}),
        rule_index=0,
        stable_service=STABLE,
        candidate_service=CANDIDATE,
    )
    assert found == expected


@pytest.mark.parametrize(
    ("stable", "candidate", "expected"),
    [
        (0, 0, None),
        (3, 0, (100, 0)),
        (0, 2, (0, 100)),
        (3, 1, (75, 25)),
        (2, 2, (50, 50)),
        (999, 1, (99, 1)),
    ],
)
def test_live_weights(stable, candidate, expected):
    assert traffic.live_weights(stable, candidate) == expected


@pytest.mark.parametrize(
    ("router", "candidate_weight", "expected"),
    [
        ("ReplicaRatio", 0, False),
        ("ReplicaRatio", 1, True),
        ("ReplicaRatio", 100, True),
        ("GatewayAPI", 0, False),
        ("GatewayAPI", 50, False),
        ("None", 0, False),
    ],
)
def test_replicas_follow_weights_only_while_replica_ratio_bakes(router, candidate_weight, expected):
    assert traffic.replicas_follow_weights(router, candidate_weight) is expected


@pytest.mark.parametrize(
    ("pool", "stable_weight", "candidate_weight", "expected"),
    [
        pytest.param(3, 75, 25, (75, 25), id="25% of 3 is 3+1"),
        pytest.param(3, 90, 10, (75, 25), id="10% of 3 is 3+1 too"),
        pytest.param(4, 50, 50, (50, 50), id="even split"),
        pytest.param(10, 90, 10, (90, 10), id="exact on a big pool"),
        pytest.param(4, 0, 100, (0, 100), id="candidate takes the pool"),
        pytest.param(0, 90, 10, (0, 100), id="empty pool: the candidate's one pod"),
        pytest.param(3, 100, 0, (100, 0), id="no bake: stable pods only"),
        pytest.param(3, 0, 0, None, id="no stable version yet"),
        pytest.param(0, 100, 0, None, id="stable scaled to zero"),
    ],
)
def test_replica_ratio_weights_are_the_effective_weights_of_the_split(
    pool, stable_weight, candidate_weight, expected
):
    got = traffic.replica_ratio_weights(
        pool, stable_weight=stable_weight, candidate_weight=candidate_weight
    )
    assert got == expected


@pytest.mark.parametrize(
    ("asked", "expected", "found", "applied", "reason", "message"),
    [
        pytest.param(
            (90, 10),
            (90, 10),
            (90, 10),
            True,
            "WeightsInEffect",
            "R: stable 90%, candidate 10% in effect",
            id="exact",
        ),
        pytest.param(
            (90, 10),
            (75, 25),
            (75, 25),
            True,
            "WeightsInEffect",
            "R: stable 75%, candidate 25% in effect (asked stable 90%, candidate 10%)",
            id="rounded as the router rounds",
        ),
        pytest.param(
            (0, 0),
            None,
            None,
            True,
            "WeightsInEffect",
            "R: no split in effect (asked stable 0%, candidate 0%)",
            id="nothing to split",
        ),
        pytest.param(
            (90, 10),
            (90, 10),
            (50, 50),
            False,
            "TrafficMismatch",
            "R: expected stable 90%, candidate 10%, but stable 50%, candidate 50% in effect",
            id="edited",
        ),
        pytest.param(
            (90, 10),
            (75, 25),
            (90, 10),
            False,
            "TrafficMismatch",
            "R: expected stable 75%, candidate 25% for the asked stable 90%, candidate 10%, "
            "but stable 90%, candidate 10% in effect",
            id="the asked weight is not what the router gives",
        ),
        pytest.param(
            (75, 25),
            (75, 25),
            None,
            False,
            "TrafficMismatch",
            "R: expected stable 75%, candidate 25%, but no split in effect",
            id="nothing found",
        ),
        pytest.param(
            (100, 0),
            (100, 0),
            (0, 100),
            False,
            "TrafficMismatch",
            "R: expected stable 100%, candidate 0%, but stable 0%, candidate 100% in effect",
            id="reversed",
        ),
    ],
)
def test_check_weights_compares_with_what_the_router_should_give(
    asked, expected, found, applied, reason, message
):
    check = traffic.check_weights("R", asked=asked, expected=expected, found=found)
    assert check == traffic.Check(applied, reason, message)
