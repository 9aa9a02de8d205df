"""The route tree on a literal tree: which receivers, in which order, with which settings, and why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tradewatch.alerting.routing import (
    DEFAULT_GROUP_INTERVAL,
    DEFAULT_GROUP_WAIT,
    DEFAULT_REPEAT_INTERVAL,
    GROUP_BY_ALL,
    Route,
    RouteSpec,
    build_route,
    group_key,
    group_labels,
)

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)

TREE = build_route(RouteSpec(
    receiver="default",
    group_by=("alertname",),
    group_wait=30 * S,
    group_interval=5 * M,
    repeat_interval=4 * H,
    routes=(
        RouteSpec(  # route.routes[0]
            matchers=('severity="critical"',), receiver="pager", group_wait=0 * S, repeat_interval=1 * H, continue_=True,
            routes=(
                RouteSpec(matchers=('strategy_id=~"mm-.*"',), receiver="pager-mm", group_by=("alertname", "strategy_id")),
                RouteSpec(matchers=('symbol="AAPL"',)),  # no receiver: inherits pager
            ),
        ),
        RouteSpec(  # route.routes[1]
            matchers=('severity=~"critical|warning"',), receiver="chat", group_wait=10 * S,
            routes=(
                RouteSpec(matchers=('team="risk"',), receiver="risk-chat", continue_=True),
                RouteSpec(matchers=('team!=""',), receiver="team-chat"),  # any alert that has a team
            ),
        ),
        RouteSpec(matchers=('alertname=~"Stale"',), receiver="stale-exact"),  # route.routes[2]
        RouteSpec(matchers=('alertname="Audit"', 'strategy_id!~"mm-.*"'), receiver="audit"),  # route.routes[3]
    ),
))


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # The root receives what no child takes, including an alert with no labels at all.
        ({}, [("default", "route")]),
        ({"alertname": "StaleFeed", "severity": "info"}, [("default", "route")]),
        # continue on routes[0] lets the critical carry on to routes[1].
        ({"alertname": "A", "severity": "critical"}, [("pager", "route.routes[0]"), ("chat", "route.routes[1]")]),
        # Nesting: the first matching child of routes[0] wins.
        ({"alertname": "A", "severity": "critical", "strategy_id": "mm-1"},
         [("pager-mm", "route.routes[0].routes[0]"), ("chat", "route.routes[1]")]),
        ({"alertname": "A", "severity": "critical", "strategy_id": "mm-1", "symbol": "AAPL"},
         [("pager-mm", "route.routes[0].routes[0]"), ("chat", "route.routes[1]")]),
        # A child without a receiver inherits its parent's.
        ({"alertname": "A", "severity": "critical", "symbol": "AAPL"},
         [("pager", "route.routes[0].routes[1]"), ("chat", "route.routes[1]")]),
        # continue inside a nested level.
        ({"alertname": "A", "severity": "warning", "team": "risk"},
         [("risk-chat", "route.routes[1].routes[0]"), ("team-chat", "route.routes[1].routes[1]")]),
        ({"alertname": "A", "severity": "warning", "team": "desk"}, [("team-chat", "route.routes[1].routes[1]")]),
        # team!="" with the label missing: missing counts as empty, so it does not match.
        ({"alertname": "A", "severity": "warning"}, [("chat", "route.routes[1]")]),
        # routes[1] matched without continue: routes[2] and [3] are not tried.
        ({"alertname": "Stale", "severity": "warning"}, [("chat", "route.routes[1]")]),
        # Anchored regex: alertname=~"Stale" matches Stale but not StaleFeed.
        ({"alertname": "Stale", "severity": "info"}, [("stale-exact", "route.routes[2]")]),
        # !~ with the label missing: the empty string does not match mm-.*, so !~ matches.
        ({"alertname": "Audit", "severity": "info"}, [("audit", "route.routes[3]")]),
        ({"alertname": "Audit", "severity": "info", "strategy_id": "momentum"}, [("audit", "route.routes[3]")]),
        ({"alertname": "Audit", "severity": "info", "strategy_id": "mm-2"}, [("default", "route")]),
        # All matchers of a route must match.
        ({"alertname": "Other", "severity": "info", "strategy_id": "momentum"}, [("default", "route")]),
    ],
)
def test_route_table(labels, expected):
    assert [(m.receiver, m.path) for m in TREE.match(labels)] == expected


def test_regex_anchoring_in_a_route():
    tree = build_route(RouteSpec(receiver="default", routes=(RouteSpec(matchers=('severity=~"crit"',), receiver="x"),)))
    assert [m.receiver for m in tree.match({"severity": "critical"})] == ["default"]
    assert [m.receiver for m in tree.match({"severity": "crit"})] == ["x"]


def test_inheritance_is_resolved_at_build_time():
    routes = {route.path: route for route in TREE.walk()}
    assert list(routes) == [
        "route", "route.routes[0]", "route.routes[0].routes[0]", "route.routes[0].routes[1]",
        "route.routes[1]", "route.routes[1].routes[0]", "route.routes[1].routes[1]", "route.routes[2]", "route.routes[3]",
    ]
    pager_mm = routes["route.routes[0].routes[0]"]
    assert pager_mm.receiver == "pager-mm"
    assert pager_mm.group_by == ("alertname", "strategy_id")  # its own
    assert pager_mm.group_wait == 0 * S and pager_mm.repeat_interval == 1 * H  # from routes[0]
    assert pager_mm.group_interval == 5 * M  # from the root
    inherited = routes["route.routes[0].routes[1]"]
    assert (inherited.receiver, inherited.group_by, inherited.group_wait) == ("pager", ("alertname",), 0 * S)
    risk = routes["route.routes[1].routes[0]"]
    assert (risk.group_wait, risk.repeat_interval, risk.group_by) == (10 * S, 4 * H, ("alertname",))
    assert routes["route.routes[2]"].group_wait == 30 * S


def test_a_match_carries_the_effective_settings():
    first, second = TREE.match({"alertname": "A", "severity": "critical", "strategy_id": "mm-1"})
    assert (first.receiver, first.group_by, first.group_wait, first.group_interval, first.repeat_interval) == (
        "pager-mm", ("alertname", "strategy_id"), 0 * S, 5 * M, 1 * H)
    assert (second.receiver, second.group_by, second.group_wait, second.group_interval, second.repeat_interval) == (
        "chat", ("alertname",), 10 * S, 5 * M, 4 * H)
    assert first.route.path == "route.routes[0].routes[0]"


def test_root_defaults_are_alertmanagers():
    root = build_route(RouteSpec(receiver="log"))
    assert (root.group_wait, root.group_interval, root.repeat_interval) == (
        DEFAULT_GROUP_WAIT, DEFAULT_GROUP_INTERVAL, DEFAULT_REPEAT_INTERVAL)
    assert (DEFAULT_GROUP_WAIT, DEFAULT_GROUP_INTERVAL, DEFAULT_REPEAT_INTERVAL) == (30 * S, 5 * M, 4 * H)
    assert root.group_by == ()


def test_explanation_for_a_critical_that_continues():
    first, second = TREE.match({"alertname": "A", "severity": "critical"})
    assert first.explanation == (
        "route (receiver default): the root route receives every alert",
        'route.routes[0] (receiver pager): matched severity="critical"; continue: true',
        'route.routes[0].routes[0]: skipped, strategy_id=~"mm-.*" did not match (strategy_id is not set)',
        'route.routes[0].routes[1]: skipped, symbol="AAPL" did not match (symbol is not set)',
        "route.routes[0]: delivers to pager (none of its 2 child routes matched)",
    )
    assert second.explanation == (
        "route (receiver default): the root route receives every alert",
        'route.routes[0] (receiver pager): matched severity="critical"; continue: true',
        'route.routes[1] (receiver chat): matched severity=~"critical|warning"; continue: false',
        'route.routes[1].routes[0]: skipped, team="risk" did not match (team is not set)',
        'route.routes[1].routes[1]: skipped, team!="" did not match (team is not set)',
        "route.routes[1]: delivers to chat (none of its 2 child routes matched)",
    )


def test_explanation_for_skipped_routes_and_the_root():
    (match,) = TREE.match({"alertname": "Audit", "severity": "info", "strategy_id": "mm-2"})
    assert match.explanation == (
        "route (receiver default): the root route receives every alert",
        'route.routes[0]: skipped, severity="critical" did not match severity="info"',
        'route.routes[1]: skipped, severity=~"critical|warning" did not match severity="info"',
        'route.routes[2]: skipped, alertname=~"Stale" did not match alertname="Audit"',
        'route.routes[3]: skipped, strategy_id!~"mm-.*" did not match strategy_id="mm-2"',
        "route: delivers to default (none of its 4 child routes matched)",
    )


def test_explanation_lists_every_failed_matcher_and_a_leaf_route():
    tree = build_route(RouteSpec(receiver="log", routes=(
        RouteSpec(matchers=('severity="critical"', 'team="risk"'), receiver="a"),
        RouteSpec(receiver="b"),
    )))
    (match,) = tree.match({"severity": "info"})
    assert match.explanation == (
        "route (receiver log): the root route receives every alert",
        'route.routes[0]: skipped, severity="critical" did not match severity="info"; team="risk" did not match (team is not set)',
        "route.routes[1] (receiver b): matched (no matchers: every alert); continue: false",
        "route.routes[1]: delivers to b (no child routes)",
    )


def test_a_subtree_whose_matchers_fail_matches_nothing():
    critical = next(route for route in TREE.walk() if route.path == "route.routes[0]")
    assert critical.match({"severity": "info"}) == []
    (match,) = critical.match({"severity": "critical"})
    assert match.explanation[0] == 'route.routes[0] (receiver pager): matched severity="critical"'


def test_group_labels_and_key():
    labels = {"alertname": "StaleFeed", "severity": "critical", "strategy_id": "mm-1", "symbol": "AAPL"}
    first, second = TREE.match(labels)
    assert group_labels(first, labels) == {"alertname": "StaleFeed", "strategy_id": "mm-1"}
    assert group_key(first, labels) == 'route.routes[0].routes[0]/pager-mm/{alertname="StaleFeed",strategy_id="mm-1"}'
    assert group_key(second, labels) == 'route.routes[1]/chat/{alertname="StaleFeed"}'


def test_group_key_is_deterministic_and_omits_missing_labels():
    tree = build_route(RouteSpec(receiver="pagerduty-oncall", group_by=("symbol", "alertname", "strategy_id")))
    (match,) = tree.match({"alertname": "StaleFeed", "strategy_id": "mm-1"})
    one = {"strategy_id": "mm-1", "alertname": "StaleFeed", "severity": "critical"}
    other = {"severity": "warning", "alertname": "StaleFeed", "strategy_id": "mm-1"}
    assert group_labels(match, one) == {"alertname": "StaleFeed", "strategy_id": "mm-1"}
    assert group_key(match, one) == group_key(match, other) == \
        'route/pagerduty-oncall/{alertname="StaleFeed",strategy_id="mm-1"}'
    assert group_key(match, {"alertname": 'say "x"'}) == r'route/pagerduty-oncall/{alertname="say \"x\""}'


def test_group_by_all_labels_and_by_none():
    every = build_route(RouteSpec(receiver="r", group_by=GROUP_BY_ALL))
    labels = {"b": "2", "a": "1"}
    (match,) = every.match(labels)
    assert group_labels(match, labels) == {"a": "1", "b": "2"}
    assert group_key(match, labels) == 'route/r/{a="1",b="2"}'
    one_group = build_route(RouteSpec(receiver="r"))
    (match,) = one_group.match(labels)
    assert group_labels(match, labels) == {}
    assert group_key(match, labels) == "route/r/{}"


def test_group_by_all_is_inherited():
    tree = build_route(RouteSpec(receiver="r", group_by=GROUP_BY_ALL, routes=(RouteSpec(matchers=("a=1",), receiver="s"),)))
    (match,) = tree.match({"a": "1"})
    assert match.group_by == GROUP_BY_ALL


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (RouteSpec(), "route: the root route needs a receiver"),
        (RouteSpec(receiver="r", matchers=("a=b",)), "route: the root route must not have matchers (it receives every alert)"),
        (RouteSpec(receiver="r", continue_=True), "route: the root route cannot have continue"),
        (RouteSpec(receiver="r", group_by=("...", "alertname")), "'...' (every label) cannot be combined with other labels"),
        (RouteSpec(receiver="r", routes=(RouteSpec(group_wait=-S),)), "route.routes[0].group_wait: cannot be negative"),
    ],
)
def test_build_rejects_a_malformed_tree(spec, message):
    with pytest.raises(ValueError) as caught:
        build_route(spec)
    assert message in str(caught.value)


def test_describe_lists_effective_settings():
    lines = [route.describe() for route in TREE.walk()]
    assert lines[0] == ("route: (every alert) -> default; group_by alertname; group_wait 30s, group_interval 5m, "
                        "repeat_interval 4h")
    assert lines[1] == ('route.routes[0]: severity="critical" -> pager; group_by alertname; group_wait 0s, '
                        "group_interval 5m, repeat_interval 1h; continue")


def test_routes_are_frozen_values():
    with pytest.raises(AttributeError):
        TREE.receiver = "other"  # type: ignore[misc]
    assert isinstance(TREE, Route) and build_route(RouteSpec(receiver="r")) == build_route(RouteSpec(receiver="r"))
