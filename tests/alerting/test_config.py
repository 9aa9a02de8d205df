"""The routing configuration: the shipped file, the shapes, and every error naming file, place and problem."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest
import yaml

from tradewatch.alerting.config import (
    DEFAULT_ROUTES_PATH,
    AlertingConfigError,
    LogConfig,
    PagerDutyConfig,
    SlackConfig,
    load_alerting_config,
    parse_alerting_config,
)
from tradewatch.alerting.matchers import Matcher
from tradewatch.alerting.model import Severity
from tradewatch.alerting.routing import GROUP_BY_ALL

# The example of the brief and the module docstring.
EXAMPLE = """
route:
  receiver: log
  group_by: [alertname, strategy_id, symbol]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: pagerduty-oncall
      group_wait: 0s
      continue: true
    - matchers: ['severity=~"critical|warning"']
      receiver: slack-trading
receivers:
  - name: pagerduty-oncall
    pagerduty:
      severity: {critical: critical, warning: warning, info: info}
  - name: slack-trading
    slack:
      channel: "#trading-alerts"
  - name: log
    log: {}
inhibit_rules:
  - source_matchers: ['alertname="CircuitBreakerTripped"', 'trading_state="HALTED"']
    target_matchers: ['severity="warning"']
    equal: [strategy_id]
fallback_receiver: log
"""


def write(tmp_path, text: str, name: str = "routes.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path, text: str) -> list[str]:
    """The lines of the error for ``text``, each checked to start with the file name."""
    path = write(tmp_path, text)
    with pytest.raises(AlertingConfigError) as caught:
        load_alerting_config(path)
    lines = str(caught.value).splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines), lines
    assert caught.value.source == str(path)
    assert [line.removeprefix(f"{path}: ") for line in lines] == caught.value.problems
    assert "pydantic" not in str(caught.value)
    return caught.value.problems


def edited(**changes) -> str:
    """EXAMPLE with top-level sections replaced (None removes one)."""
    data = yaml.safe_load(EXAMPLE)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return yaml.safe_dump(data, sort_keys=False)


def with_routes(*routes: dict, **root) -> str:
    return edited(route={"receiver": "log", **root, "routes": list(routes)})


# ------------------------------------------------------------------ the shipped file


def test_the_default_file_loads_and_routes_by_severity():
    config = load_alerting_config(DEFAULT_ROUTES_PATH)
    assert config.source == str(DEFAULT_ROUTES_PATH)

    def receivers(severity):
        return [m.receiver for m in config.match({"alertname": "StaleFeed", "severity": severity, "strategy_id": "mm-1"})]

    assert receivers("critical") == ["pagerduty-oncall", "slack-trading"]
    assert receivers("warning") == ["slack-trading"]
    assert receivers("info") == ["log"]
    assert config.fallback_receiver == "log"
    assert load_alerting_config() == config  # the default path is the default argument


def test_the_default_file_timings():
    config = load_alerting_config()
    pager, slack = config.match({"alertname": "A", "severity": "critical"})
    assert (pager.group_wait, pager.repeat_interval, pager.group_interval) == (timedelta(0), timedelta(hours=1), timedelta(minutes=1))
    assert (slack.group_wait, slack.repeat_interval) == (timedelta(seconds=10), timedelta(hours=4))
    (log,) = config.match({"alertname": "A", "severity": "info"})
    assert log.group_wait == timedelta(seconds=30)
    assert pager.group_by == slack.group_by == log.group_by == ("alertname", "strategy_id", "symbol", "component")


def test_the_default_file_receivers_and_inhibit_rules():
    config = load_alerting_config()
    assert list(config.receivers) == ["pagerduty-oncall", "slack-trading", "log"]
    assert config.receivers["pagerduty-oncall"].kind == "pagerduty"
    assert config.receivers["slack-trading"].slack == SlackConfig(channel="#trading-alerts", mention="<!here>")
    assert config.receivers["log"].log == LogConfig(level="warning")
    halted, global_halt, critical = config.inhibit_rules
    assert global_halt.source_matchers == (Matcher("alertname", "=", "CircuitBreakerTripped"), Matcher("scope", "=", "global"),
                                           Matcher("trading_state", "=", "HALTED"))
    assert global_halt.equal == ()
    assert halted.source_matchers == (Matcher("alertname", "=", "CircuitBreakerTripped"), Matcher("trading_state", "=", "HALTED"))
    assert halted.target_matchers == (Matcher("severity", "=", "warning"),) and halted.equal == ("strategy_id",)
    assert critical.source_matchers == (Matcher("severity", "=", "critical"),)
    assert critical.target_matchers == (Matcher("severity", "=", "warning"),)
    assert critical.equal == ("alertname", "strategy_id", "symbol", "component", "source", "detector", "metric",
                              "issue_key")


# ------------------------------------------------------------------ shapes


def test_the_example_parses_into_effective_routes():
    config = parse_alerting_config(yaml.safe_load(EXAMPLE), "routes.yaml")
    assert config.route.receiver == "log" and config.route.path == "route"
    first, second = config.route.routes
    assert (first.path, first.receiver, first.continue_, first.group_wait) == ("route.routes[0]", "pagerduty-oncall", True, timedelta(0))
    assert (second.receiver, second.continue_, second.group_wait, second.repeat_interval) == (
        "slack-trading", False, timedelta(seconds=30), timedelta(hours=4))
    assert second.matchers == (Matcher("severity", "=~", "critical|warning"),)
    assert config.source == "routes.yaml"


def test_receiver_settings():
    config = parse_alerting_config(yaml.safe_load(edited(receivers=[
        {"name": "pagerduty-oncall", "pagerduty": {"severity": {"warning": "error"}, "component": "pricing",
                                                   "group": "trading", "class": "risk"}},
        {"name": "slack-trading", "slack": {"channel": "C0123456789", "mention": "<!channel>"}},
        {"name": "log", "log": None},
        {"name": "quiet-log", "log": {"level": "info"}},
    ])), "routes.yaml")
    pagerduty = config.receivers["pagerduty-oncall"].pagerduty
    assert pagerduty == PagerDutyConfig(severity={Severity.CRITICAL: "critical", Severity.WARNING: "error", Severity.INFO: "info"},
                                        component="pricing", group="trading", class_="risk")
    assert pagerduty.severity["warning"] == "error"  # str keys work too
    assert config.receivers["slack-trading"].settings == SlackConfig(channel="C0123456789", mention="<!channel>")
    assert config.receivers["log"].settings == LogConfig(level="warning")  # `log:` with nothing is the defaults
    assert config.receivers["quiet-log"].kind == "log" and config.receivers["quiet-log"].log.level == "info"


def test_pagerduty_severity_defaults_to_identity():
    config = parse_alerting_config(yaml.safe_load(edited(receivers=[
        {"name": "pagerduty-oncall", "pagerduty": {}}, {"name": "slack-trading", "slack": {}}, {"name": "log", "log": {}},
    ])), "routes.yaml")
    assert dict(config.receivers["pagerduty-oncall"].pagerduty.severity) == {"critical": "critical", "warning": "warning", "info": "info"}
    assert config.receivers["slack-trading"].slack == SlackConfig(channel=None, mention=None)


def test_optional_sections_and_keys():
    config = parse_alerting_config(yaml.safe_load(edited(inhibit_rules=None, route={"receiver": "log"})), "routes.yaml")
    assert config.inhibit_rules == () and config.route.routes == ()
    assert config.route.group_by == ()
    config = parse_alerting_config(yaml.safe_load(edited(inhibit_rules=[], route={"receiver": "log", "group_by": ["..."]})), "x")
    assert config.inhibit_rules == () and config.route.group_by == GROUP_BY_ALL


def test_inheritance_of_receiver_group_by_and_timings_from_yaml():
    config = parse_alerting_config(yaml.safe_load(with_routes(
        {"matchers": ["team=risk"], "group_by": ["alertname"], "repeat_interval": "2h",
         "routes": [{"matchers": ["severity=critical"], "group_wait": "1s"}]},
        group_wait="20s", group_by=["alertname", "strategy_id"],
    )), "routes.yaml")
    (grandchild,) = config.route.routes[0].routes
    assert (grandchild.receiver, grandchild.group_by, grandchild.group_wait, grandchild.group_interval, grandchild.repeat_interval) == (
        "log", ("alertname",), timedelta(seconds=1), timedelta(minutes=5), timedelta(hours=2))
    assert grandchild.path == "route.routes[0].routes[0]"


# ------------------------------------------------------------------ errors


def test_unknown_receiver(tmp_path):
    assert problems(tmp_path, with_routes({"matchers": ["a=b"], "receiver": "log"}, {"matchers": ["a=c"], "receiver": "slak"})) == [
        "route.routes[1].receiver: unknown receiver 'slak'; defined: log, pagerduty-oncall, slack-trading",
    ]


def test_root_route_needs_a_receiver_and_no_matchers(tmp_path):
    assert problems(tmp_path, edited(route={"group_wait": "30s"})) == ["route: the root route needs a receiver"]
    assert problems(tmp_path, edited(route={"receiver": "log", "matchers": ['severity="critical"']})) == [
        "route: the root route must not have matchers (it receives every alert)",
    ]
    assert problems(tmp_path, edited(route={"receiver": "log", "continue": True})) == [
        "route: the root route cannot have continue (it has no siblings)",
    ]


def test_bad_matchers(tmp_path):
    assert problems(tmp_path, with_routes({"matchers": ['strategy_id=~"foo("', "severity", 'severity="ok"'], "receiver": "log"})) == [
        "route.routes[0].matchers[0]: bad regex 'foo(' for strategy_id: missing ), unterminated subpattern at position 3",
        "route.routes[0].matchers[1]: 'severity' has no operator; accepted: =, !=, =~, !~ (e.g. severity=\"critical\")",
    ]
    assert problems(tmp_path, with_routes({"matchers": 'severity="critical"'})) == [
        "route.routes[0].matchers: expected a list of matchers like ['severity=\"critical\"'], got the text "
        "'severity=\"critical\"'; write it as a list: ['severity=\"critical\"']",
    ]
    assert problems(tmp_path, with_routes({"matchers": [3]})) == [
        "route.routes[0].matchers[0]: a matcher is a string like severity=\"critical\", got int 3",
    ]


def test_bad_durations(tmp_path):
    found = problems(tmp_path, edited(route={"receiver": "log", "group_wait": "5 minutes", "group_interval": 30,
                                             "repeat_interval": "0s", "routes": [{"group_wait": "-1s"}, {"group_interval": True}]}))
    assert found == [
        "route.group_wait: bad duration '5 minutes'; expected e.g. 0s, 30s, 5m, 4h (units ms, s, m, h, d, w, largest first, as in 1h30m)",
        "route.group_interval: bad duration '30': a number needs a unit; expected e.g. 0s, 30s, 5m, 4h "
        "(units ms, s, m, h, d, w, largest first, as in 1h30m)",
        "route.repeat_interval: must be longer than 0s (got 0s); it is how often an unchanged group is notified again",
        "route.routes[0].group_wait: bad duration '-1s': a duration cannot be negative; expected e.g. 0s, 30s, 5m, 4h",
        "route.routes[1].group_interval: expected a duration like 30s or 5m, got a boolean (true)",
    ]


def test_bad_group_by_and_continue(tmp_path):
    assert problems(tmp_path, with_routes(
        {"group_by": ["alertname", "alertname"]}, {"group_by": ["...", "symbol"]}, {"group_by": "alertname"},
        {"group_by": ["1abc"], "continue": "yes please"},
    )) == [
        "route.routes[0].group_by[1]: 'alertname' is listed twice",
        "route.routes[1].group_by: '...' (group by every label) cannot be combined with other labels",
        "route.routes[2].group_by: expected a list of label names like [alertname, strategy_id], got the text 'alertname'",
        "route.routes[3].continue: expected true or false, got the text 'yes please'",
        "route.routes[3].group_by[0]: bad label name '1abc': expected letters, digits and underscores, not starting "
        "with a digit (or '...' alone, for every label)",
    ]


def test_unknown_keys_are_named_with_the_accepted_ones(tmp_path):
    text = edited(route={"receiver": "log", "recevier": "x", "routes": [{"match": {"severity": "critical"}, "receiver": "log"}]})
    text += "global: {resolve_timeout: 5m}\n"
    assert problems(tmp_path, text) == [
        "top level: unknown key 'global'; accepted: route, receivers, inhibit_rules, fallback_receiver",
        "route: unknown key 'recevier'; accepted: receiver, matchers, continue, group_by, group_wait, group_interval, "
        "repeat_interval, routes",
        "route.routes[0]: unknown key 'match' (Alertmanager's older form; write matchers: ['severity=\"critical\"']); "
        "accepted: receiver, matchers, continue, group_by, group_wait, group_interval, repeat_interval, routes",
    ]


def test_receivers_need_exactly_one_kind(tmp_path):
    assert problems(tmp_path, edited(receivers=[
        {"name": "pagerduty-oncall", "pagerduty": {}, "slack": {"channel": "#x"}},
        {"name": "slack-trading"},
        {"name": "log", "log": {}, "email_configs": [{"to": "a@b"}]},
    ])) == [
        "receivers[0]: receiver 'pagerduty-oncall' needs exactly one of pagerduty, slack, log; found pagerduty, slack",
        "receivers[1]: receiver 'slack-trading' needs exactly one of pagerduty, slack, log; found none",
        "receivers[2]: unknown key 'email_configs' (receivers here are pagerduty, slack or log); accepted: name, pagerduty, slack, log",
    ]


def test_receiver_names(tmp_path):
    assert problems(tmp_path, edited(receivers=[
        {"name": "log", "log": {}}, {"name": "pagerduty-oncall", "pagerduty": {}}, {"name": "slack-trading", "slack": {}},
        {"name": "log", "slack": {}}, {"log": {}}, {"name": "bad name/x", "log": {}}, "log",
    ])) == [
        "receivers[3].name: duplicate receiver name 'log' (also receivers[0])",
        "receivers[4]: every receiver needs a name",
        "receivers[5].name: bad receiver name 'bad name/x': letters, digits, '-', '_' and '.', starting with a letter "
        "or digit, at most 100 characters",
        "receivers[6]: expected a mapping with name and one of pagerduty, slack, log, got the text 'log'",
    ]


def test_receiver_settings_errors(tmp_path):
    assert problems(tmp_path, edited(receivers=[
        {"name": "pagerduty-oncall", "pagerduty": {"severity": {"critical": "high", "major": "critical"}, "component": 3,
                                                   "priority": "P1"}},
        {"name": "slack-trading", "slack": {"channel": "#trading alerts", "mention": "@here", "username": "bot"}},
        {"name": "log", "log": {"level": "debug"}},
    ])) == [
        "receivers[0].pagerduty: unknown key 'priority'; accepted: severity, component, group, class",
        "receivers[0].pagerduty.severity.critical: unknown PagerDuty severity 'high'; accepted: critical, error, warning, info",
        "receivers[0].pagerduty.severity: unknown tradewatch severity 'major'; accepted: critical, warning, info",
        "receivers[0].pagerduty.component: expected non-empty text, got a number (3)",
        "receivers[1].slack: unknown key 'username'; accepted: channel, mention",
        "receivers[1].slack.channel: bad channel '#trading alerts': a name like #trading-alerts or an ID like C0123456789",
        "receivers[1].slack.mention: mention '@here' would not notify anyone; Slack needs the escaped form, e.g. <!here>, "
        "<!channel>, <@U0123456789> or <!subteam^S0123456789>",
        "receivers[2].log.level: unknown level 'debug'; accepted: info, warning, error",
    ]


def test_secrets_are_refused_and_never_echoed(tmp_path):
    found = problems(tmp_path, edited(receivers=[
        {"name": "pagerduty-oncall", "pagerduty": {"routing_key": "R0UT1NG-SECRET"}},
        {"name": "slack-trading", "slack": {"webhook_url": "https://hooks.slack.com/services/HOOK-SECRET",
                                            "token": "xoxb-TOKEN-SECRET", "channel": "#trading-alerts"}},
        {"name": "log", "log": {}, "service_key": "SERVICE-SECRET"},
    ]))
    assert found == [
        "receivers[0].pagerduty.routing_key: secrets are never kept in this file; the PagerDuty routing key comes from "
        "the environment variable TRADEWATCH_PAGERDUTY_ROUTING_KEY",
        "receivers[1].slack.webhook_url: secrets are never kept in this file; the Slack webhook URL comes from the "
        "environment variable TRADEWATCH_SLACK_WEBHOOK_URL",
        "receivers[1].slack.token: secrets are never kept in this file; the Slack bot token comes from the environment "
        "variable TRADEWATCH_SLACK_BOT_TOKEN",
        "receivers[2].service_key: secrets are never kept in this file; the PagerDuty routing key comes from the "
        "environment variable TRADEWATCH_PAGERDUTY_ROUTING_KEY",
    ]
    assert "SECRET" not in "\n".join(found)


def test_a_broken_receiver_is_not_also_reported_as_unknown(tmp_path):
    assert problems(tmp_path, edited(receivers=[
        {"name": "pagerduty-oncall", "pagerduty": {"severity": {"critical": "urgent"}}},
        {"name": "slack-trading", "slack": {}}, {"name": "log", "log": {}},
    ])) == ["receivers[0].pagerduty.severity.critical: unknown PagerDuty severity 'urgent'; accepted: critical, error, warning, info"]


def test_missing_and_malformed_sections(tmp_path):
    assert problems(tmp_path, edited(route=None, receivers=None, fallback_receiver=None)) == [
        "route: required: the root route (receiver, group_by, timings, child routes)",
        "receivers: required: a list of receivers, each with a name and one of pagerduty, slack, log",
        "fallback_receiver: required: the receiver used when a route's receiver cannot be used, e.g. fallback_receiver: log",
    ]
    assert problems(tmp_path, edited(route=["receiver", "log"], receivers={"log": {}}, inhibit_rules={"a": 1},
                                     fallback_receiver=3)) == [
        "route: expected a mapping (receiver, matchers, routes, ...), got a list",
        "receivers: expected a list of receivers, got a mapping",
        "inhibit_rules: expected a list of rules, got a mapping",
        "fallback_receiver: expected a receiver name, got a number (3)",
    ]
    assert problems(tmp_path, edited(receivers=[], fallback_receiver="log", route={"receiver": "log", "routes": ["x"]})) == [
        "route.receiver: unknown receiver 'log'; defined: none",
        "route.routes[0]: expected a mapping (receiver, matchers, routes, ...), got the text 'x'",
        "receivers: at least one receiver is needed, e.g. - {name: log, log: {}}",
        "fallback_receiver: unknown receiver 'log'; defined: none",
    ]


def test_unknown_fallback_receiver(tmp_path):
    assert problems(tmp_path, edited(fallback_receiver="lg")) == [
        "fallback_receiver: unknown receiver 'lg'; defined: log, pagerduty-oncall, slack-trading",
    ]


def test_inhibit_rule_errors(tmp_path):
    assert problems(tmp_path, edited(inhibit_rules=[
        {"source_matchers": [], "equal": ["strategy_id", "strategy_id"]},
        {"source_match": {"severity": "critical"}, "target_matchers": ['severity="warning"']},
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity=~"warn("'], "equal": "strategy_id"},
        "severity=critical",
    ])) == [
        "inhibit_rules[0].source_matchers: needs at least one matcher, e.g. ['severity=\"critical\"']",
        "inhibit_rules[0]: target_matchers is required (at least one matcher, e.g. ['severity=\"critical\"'])",
        "inhibit_rules[0].equal[1]: 'strategy_id' is listed twice",
        "inhibit_rules[1]: unknown key 'source_match' (Alertmanager's older form; write source_matchers: "
        "['severity=\"critical\"']); accepted: source_matchers, target_matchers, equal",
        "inhibit_rules[1]: source_matchers is required (at least one matcher, e.g. ['severity=\"critical\"'])",
        "inhibit_rules[2].target_matchers[0]: bad regex 'warn(' for severity: missing ), unterminated subpattern at position 4",
        "inhibit_rules[2].equal: expected a list of label names like [alertname, strategy_id], got the text 'strategy_id'",
        "inhibit_rules[3]: expected a mapping with source_matchers, target_matchers, equal, got the text 'severity=critical'",
    ]


def test_all_problems_are_reported_at_once(tmp_path):
    found = problems(tmp_path, """\
        route:
          group_wait: soon
          routes:
            - receiver: slak
        receivers:
          - name: log
            log: {level: loud}
        fallback_receiver: nobody
        """)
    assert found == [
        "route: the root route needs a receiver",
        "route.group_wait: bad duration 'soon'; expected e.g. 0s, 30s, 5m, 4h (units ms, s, m, h, d, w, largest first, as in 1h30m)",
        "route.routes[0].receiver: unknown receiver 'slak'; defined: log",
        "receivers[0].log.level: unknown level 'loud'; accepted: info, warning, error",
        "fallback_receiver: unknown receiver 'nobody'; defined: log",
    ]


def test_yaml_syntax_error_gives_the_line(tmp_path):
    found = problems(tmp_path, """\
        route:
          receiver: log
          routes: [
        receivers: []
        """)
    assert found == ["line 5, column 1: YAML syntax error: expected ',' or ']', but got '<stream end>' "
                     "(while parsing a flow sequence started on line 3)"]
    found = problems(tmp_path, "route:\n  receiver: log\n   group_wait: 30s\n")
    assert found == ["line 3, column 14: YAML syntax error: mapping values are not allowed here"]


def test_duplicate_keys_are_refused(tmp_path):
    found = problems(tmp_path, """\
        route:
          receiver: log
          routes:
            - receiver: log
          routes:
            - receiver: log
        """)
    assert found == ["line 5, column 3: duplicate key 'routes' (first on line 3); the second would silently replace the first"]


def test_empty_and_non_mapping_files(tmp_path):
    assert problems(tmp_path, "") == [
        "the file is empty; expected a mapping with route, receivers and fallback_receiver (and optionally inhibit_rules), "
        "see default_routes.yaml",
    ]
    assert problems(tmp_path, "# only a comment\n")[0].startswith("the file is empty")
    assert problems(tmp_path, "- route\n") == [
        "expected a mapping with keys route, receivers, inhibit_rules, fallback_receiver at the top level, got a list",
    ]


def test_unreadable_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(AlertingConfigError) as caught:
        load_alerting_config(missing)
    assert str(caught.value) == f"{missing}: cannot read the file: No such file or directory"


def test_parse_names_the_given_source():
    with pytest.raises(AlertingConfigError) as caught:
        parse_alerting_config({"route": {"receiver": "log"}, "receivers": [{"name": "log", "log": {}}]}, "inline.yaml")
    assert str(caught.value) == (
        "inline.yaml: fallback_receiver: required: the receiver used when a route's receiver cannot be used, "
        "e.g. fallback_receiver: log"
    )
    assert isinstance(caught.value, ValueError)
