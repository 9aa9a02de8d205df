"""The alert routing configuration: the route tree, receivers, inhibit rules, from one YAML file.

Modelled on Prometheus Alertmanager's configuration, smaller. The shape::

    route:
      receiver: log                      # root: receiver required, matchers forbidden
      group_by: [alertname, strategy_id, symbol]   # or ['...'] for every label
      group_wait: 30s                    # wait before the first notification of a new group
      group_interval: 5m                 # wait before notifying changes to a group
      repeat_interval: 4h                # wait before repeating an unchanged firing group
      routes:                            # tried in order; the first match wins...
        - matchers: ['severity="critical"']
          receiver: pagerduty-oncall
          group_wait: 0s
          continue: true                 # ...unless it has continue: true
        - matchers: ['severity=~"critical|warning"']
          receiver: slack-trading
    receivers:
      - name: pagerduty-oncall
        pagerduty:
          # tradewatch severity -> PagerDuty severity (critical, error, warning, info);
          # unset keys map to themselves
          severity: {critical: critical, warning: warning, info: info}
          component: pricing             # optional, passed to PagerDuty as is
          group: trading                 # optional
          class: risk                    # optional
      - name: slack-trading
        slack:
          channel: "#trading-alerts"     # required when posting with a bot token
          mention: "<!here>"             # optional, added to critical messages
      - name: log
        log: {level: warning}            # info, warning (default) or error
    inhibit_rules:
      - source_matchers: ['alertname="CircuitBreakerTripped"', 'trading_state="HALTED"']
        target_matchers: ['severity="warning"']
        equal: [strategy_id]
    fallback_receiver: log               # used when a route's receiver cannot be used

Child routes inherit receiver, group_by and the timings they do not set. Matchers use
Alertmanager's string form (see :mod:`tradewatch.alerting.matchers`), durations the Prometheus
form (see :mod:`tradewatch.alerting.durations`).

Secrets are never in this file: the PagerDuty routing key, the Slack webhook URL and the Slack
bot token come from the environment (TRADEWATCH_PAGERDUTY_ROUTING_KEY,
TRADEWATCH_SLACK_WEBHOOK_URL, TRADEWATCH_SLACK_BOT_TOKEN) when receivers are wired. A file that
contains one is rejected, so a key never ends up in version control.

Every problem found is reported at once, one line each, naming the file, the place in it and
what is accepted: ``routes.yaml: route.routes[1].receiver: unknown receiver 'slak'; defined: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal


from tradewatch.alerting.durations import DurationError, parse_duration
from tradewatch.alerting.inhibition import InhibitRule
from tradewatch.alerting.matchers import Matcher, MatcherError, parse_matcher
from tradewatch.alerting.model import LABEL_NAME_PATTERN, Severity
from tradewatch.alerting.routing import GROUP_BY_ALL, Route, RouteMatch, RouteSpec, build_route
from tradewatch.domain.strict_yaml import ConfigFileError, YamlProblem, load_strict_yaml

#: The configuration shipped with tradewatch.
DEFAULT_ROUTES_PATH = Path(__file__).with_name("default_routes.yaml")

PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
LOG_LEVELS = ("info", "warning", "error")
RECEIVER_KINDS = ("pagerduty", "slack", "log")

PAGERDUTY_ROUTING_KEY_VARIABLE = "TRADEWATCH_PAGERDUTY_ROUTING_KEY"
SLACK_WEBHOOK_URL_VARIABLE = "TRADEWATCH_SLACK_WEBHOOK_URL"
SLACK_BOT_TOKEN_VARIABLE = "TRADEWATCH_SLACK_BOT_TOKEN"

_TOP_KEYS = ("route", "receivers", "inhibit_rules", "fallback_receiver")
_ROUTE_KEYS = ("receiver", "matchers", "continue", "group_by", "group_wait", "group_interval", "repeat_interval", "routes")
_INHIBIT_KEYS = ("source_matchers", "target_matchers", "equal")
_PAGERDUTY_KEYS = ("severity", "component", "group", "class")
_SLACK_KEYS = ("channel", "mention")
_LOG_KEYS = ("level",)

_LABEL_NAME = re.compile(LABEL_NAME_PATTERN)
# Receiver names appear in group keys (`route/receiver/{...}`), logs and metrics labels.
_RECEIVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SLACK_CHANNEL = re.compile(r"^#?[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_MATCHER_EXAMPLE = "['severity=\"critical\"']"

# Keys people bring from an Alertmanager configuration, and what to write instead.
_HINTS = {
    "match": f"Alertmanager's older form; write matchers: {_MATCHER_EXAMPLE}",
    "match_re": "Alertmanager's older form; write matchers: ['severity=~\"critical|warning\"']",
    "source_match": f"Alertmanager's older form; write source_matchers: {_MATCHER_EXAMPLE}",
    "source_match_re": "Alertmanager's older form; write source_matchers: ['severity=~\"critical|warning\"']",
    "target_match": "Alertmanager's older form; write target_matchers: ['severity=\"warning\"']",
    "target_match_re": "Alertmanager's older form; write target_matchers: ['severity=~\"warning|info\"']",
    "pagerduty_configs": "write one pagerduty: block per receiver",
    "slack_configs": "write one slack: block per receiver",
    "email_configs": "receivers here are pagerduty, slack or log",
    "webhook_configs": "receivers here are pagerduty, slack or log",
    "mute_time_intervals": "time intervals are not supported; create a silence instead",
    "active_time_intervals": "time intervals are not supported; create a silence instead",
    "receiver_name": "the key is name",
}


class AlertingConfigError(ConfigFileError):
    """The alert routing configuration is invalid (see ConfigFileError)."""


@dataclass(frozen=True)
class PagerDutyConfig:
    """How a receiver calls the PagerDuty Events API v2 (its routing key comes from the environment).

    ``severity`` maps each tradewatch severity to a PagerDuty severity; ``component``, ``group``
    and ``class_`` (YAML ``class``) are passed in the event payload when set."""

    severity: Mapping[Severity, str] = field(default_factory=lambda: {s: s.value for s in Severity})
    component: str | None = None
    group: str | None = None
    class_: str | None = None


@dataclass(frozen=True)
class SlackConfig:
    """Where a receiver posts in Slack. ``channel`` is required when posting with a bot token
    (checked when receivers are wired, since the mode depends on which secret is set);
    ``mention`` (e.g. ``<!here>``) is added to critical messages."""

    channel: str | None = None
    mention: str | None = None


@dataclass(frozen=True)
class LogConfig:
    """A receiver that writes notifications to the structured log at ``level``."""

    level: Literal["info", "warning", "error"] = "warning"


@dataclass(frozen=True)
class ReceiverConfig:
    """One named receiver; exactly one of the three settings is set."""

    name: str
    pagerduty: PagerDutyConfig | None = None
    slack: SlackConfig | None = None
    log: LogConfig | None = None

    @property
    def kind(self) -> Literal["pagerduty", "slack", "log"]:
        if self.pagerduty is not None:
            return "pagerduty"
        if self.slack is not None:
            return "slack"
        return "log"

    @property
    def settings(self) -> PagerDutyConfig | SlackConfig | LogConfig:
        return self.pagerduty or self.slack or self.log or LogConfig()


@dataclass(frozen=True)
class AlertingConfig:
    """The validated configuration: the effective route tree and everything it refers to."""

    route: Route
    receivers: Mapping[str, ReceiverConfig]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    fallback_receiver: str = ""
    source: str = ""

    def match(self, labels: Mapping[str, str]) -> list[RouteMatch]:
        """The routes (and so receivers) an alert with these labels goes to, with explanations."""
        return self.route.match(labels)


def load_alerting_config(path: str | Path = DEFAULT_ROUTES_PATH) -> AlertingConfig:
    """Read, parse and validate a routing file; raises :class:`AlertingConfigError`."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AlertingConfigError(source, [f"cannot read the file: {reason}"]) from None
    return parse_alerting_config(_load_yaml(text, source), source)


def parse_alerting_config(data: object, source: str) -> AlertingConfig:
    """Validate already-parsed YAML ``data``; ``source`` names it in messages."""
    if data is None:
        raise AlertingConfigError(source, [
            "the file is empty; expected a mapping with route, receivers and fallback_receiver "
            f"(and optionally inhibit_rules), see {DEFAULT_ROUTES_PATH.name}"
        ])
    if not isinstance(data, dict):
        raise AlertingConfigError(source, [
            f"expected a mapping with keys route, receivers, inhibit_rules, fallback_receiver at the top level, got {_kind(data)}"
        ])
    problems = _Problems()
    problems.keys(data, _TOP_KEYS, "")

    # Receivers are read first, since routes refer to them, but reported after the route, in the
    # order the sections usually appear in the file.
    receiver_problems = _Problems()
    receivers = _receivers(data.get("receivers"), "receivers" in data, receiver_problems)
    names = None if receivers is None else set(receivers)

    route_spec = None
    if "route" not in data:
        problems.add("route", "required: the root route (receiver, group_by, timings, child routes)")
    else:
        route_spec = _route(data["route"], "route", names, problems, root=True)
    problems.items.extend(receiver_problems.items)

    rules: tuple[InhibitRule, ...] | None = ()
    if data.get("inhibit_rules") is not None:  # absent or empty: no rules
        rules = _inhibit_rules(data["inhibit_rules"], problems)

    fallback = data.get("fallback_receiver")
    if "fallback_receiver" not in data:
        problems.add("fallback_receiver", "required: the receiver used when a route's receiver cannot be used, e.g. fallback_receiver: log")
    elif not isinstance(fallback, str) or not fallback:
        problems.add("fallback_receiver", f"expected a receiver name, got {_kind(fallback)}")
    elif names is not None and fallback not in names:
        problems.add("fallback_receiver", _unknown_receiver(fallback, names))

    if problems.items or route_spec is None or receivers is None or rules is None:
        raise AlertingConfigError(source, problems.items or ["invalid configuration"])
    return AlertingConfig(route=build_route(route_spec), receivers=receivers, inhibit_rules=rules,
                          fallback_receiver=fallback, source=source)


# ------------------------------------------------------------------ YAML


def _load_yaml(text: str, source: str) -> object:
    try:
        return load_strict_yaml(text)
    except YamlProblem as problem:
        raise AlertingConfigError(source, [str(problem)]) from None


# ------------------------------------------------------------------ validation


class _Problems:
    """Collects ``place: problem`` lines so every problem is reported in one go."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def keys(self, node: Mapping[Any, Any], accepted: tuple[str, ...], path: str,
             special: Callable[[str], str | None] | None = None) -> None:
        """Report keys not in ``accepted``; ``special`` may claim a key with its own message."""
        unknown = []
        for key in node:
            if key in accepted:
                continue
            message = special(str(key)) if special else None
            if message is not None:
                self.add(_join(path, str(key)), message)
            else:
                unknown.append(key)
        if not unknown:
            return
        named = ", ".join(repr(k) if isinstance(k, str) else str(k) for k in unknown)
        hints = "".join(f" ({_HINTS[k]})" for k in unknown if isinstance(k, str) and k in _HINTS)
        noun = "key" if len(unknown) == 1 else "keys"
        self.add(path or "top level", f"unknown {noun} {named}{hints}; accepted: {', '.join(accepted)}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _unknown_receiver(name: str, names: set[str]) -> str:
    defined = ", ".join(sorted(names)) if names else "none"
    return f"unknown receiver {name!r}; defined: {defined}"


def _route(node: object, path: str, names: set[str] | None, problems: _Problems, *, root: bool) -> RouteSpec | None:
    if not isinstance(node, dict):
        problems.add(path, f"expected a mapping (receiver, matchers, routes, ...), got {_kind(node)}")
        return None
    problems.keys(node, _ROUTE_KEYS, path)
    ok = True

    receiver = node.get("receiver")
    if receiver is None:
        if root:
            problems.add(path, "the root route needs a receiver")
            ok = False
        elif "receiver" in node:
            problems.add(f"{path}.receiver", "expected a receiver name, got nothing (leave the key out to inherit)")
            ok = False
    elif not isinstance(receiver, str) or not receiver:
        problems.add(f"{path}.receiver", f"expected a receiver name, got {_kind(receiver)}")
        ok = False
    elif names is not None and receiver not in names:
        problems.add(f"{path}.receiver", _unknown_receiver(receiver, names))
        ok = False

    matchers: tuple[Matcher, ...] = ()
    if root and node.get("matchers"):
        problems.add(path, "the root route must not have matchers (it receives every alert)")
        ok = False
    elif "matchers" in node:
        parsed = _matchers(node["matchers"], f"{path}.matchers", problems)
        ok = ok and parsed is not None
        matchers = parsed or ()

    continue_ = node.get("continue", False)
    if root and continue_:
        problems.add(path, "the root route cannot have continue (it has no siblings)")
        ok = False
    elif not isinstance(continue_, bool):
        problems.add(f"{path}.continue", f"expected true or false, got {_kind(continue_)}")
        ok = False

    group_by = None
    if "group_by" in node:
        group_by = _group_by(node["group_by"], f"{path}.group_by", problems)
        ok = ok and group_by is not None

    timings: dict[str, timedelta | None] = {}
    for key in ("group_wait", "group_interval", "repeat_interval"):
        timings[key] = None
        if key in node:
            value = _duration(node[key], f"{path}.{key}", problems, positive=key != "group_wait")
            ok = ok and value is not None
            timings[key] = value

    children: list[RouteSpec] = []
    if "routes" in node and node["routes"] is not None:
        if not isinstance(node["routes"], list):
            problems.add(f"{path}.routes", f"expected a list of routes, got {_kind(node['routes'])}")
            ok = False
        else:
            for index, child in enumerate(node["routes"]):
                spec = _route(child, f"{path}.routes[{index}]", names, problems, root=False)
                ok = ok and spec is not None
                if spec is not None:
                    children.append(spec)

    if not ok:
        return None
    return RouteSpec(receiver=receiver, matchers=matchers, continue_=continue_, group_by=group_by,
                     group_wait=timings["group_wait"], group_interval=timings["group_interval"],
                     repeat_interval=timings["repeat_interval"], routes=tuple(children))


def _matchers(node: object, path: str, problems: _Problems, *, required: bool = False) -> tuple[Matcher, ...] | None:
    if not isinstance(node, list):
        hint = f"; write it as a list: [{node!r}]" if isinstance(node, str) else ""
        problems.add(path, f"expected a list of matchers like {_MATCHER_EXAMPLE}, got {_kind(node)}{hint}")
        return None
    if required and not node:
        problems.add(path, f"needs at least one matcher, e.g. {_MATCHER_EXAMPLE}")
        return None
    parsed: list[Matcher] = []
    ok = True
    for index, item in enumerate(node):
        try:
            parsed.append(parse_matcher(item))
        except MatcherError as exc:
            problems.add(f"{path}[{index}]", str(exc))
            ok = False
    return tuple(parsed) if ok else None


def _label_names(node: object, path: str, problems: _Problems, *, allow_all: bool) -> tuple[str, ...] | None:
    if not isinstance(node, list):
        problems.add(path, f"expected a list of label names like [alertname, strategy_id], got {_kind(node)}")
        return None
    ok = True
    seen: set[str] = set()
    for index, name in enumerate(node):
        if allow_all and name == "...":
            continue
        if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
            extra = " (or '...' alone, for every label)" if allow_all else ""
            problems.add(f"{path}[{index}]", f"bad label name {name!r}: expected letters, digits and underscores, "
                                             f"not starting with a digit{extra}")
            ok = False
        elif name in seen:
            problems.add(f"{path}[{index}]", f"{name!r} is listed twice")
            ok = False
        else:
            seen.add(name)
    if allow_all and "..." in node and len(node) > 1:
        problems.add(path, "'...' (group by every label) cannot be combined with other labels")
        ok = False
    return tuple(node) if ok else None


def _group_by(node: object, path: str, problems: _Problems) -> tuple[str, ...] | None:
    names = _label_names(node, path, problems, allow_all=True)
    if names is not None and "..." in names:
        return GROUP_BY_ALL
    return names


def _duration(node: object, path: str, problems: _Problems, *, positive: bool) -> timedelta | None:
    if isinstance(node, bool) or not isinstance(node, (str, int, float)):
        problems.add(path, f"expected a duration like 30s or 5m, got {_kind(node)}")
        return None
    try:
        value = parse_duration(str(node))
    except DurationError as exc:
        problems.add(path, str(exc))
        return None
    if positive and value <= timedelta():
        what = "how often an unchanged group is notified again" if path.endswith("repeat_interval") \
            else "the pause between notifications of a group's changes"
        problems.add(path, f"must be longer than 0s (got {node}); it is {what}")
        return None
    return value


# ------------------------------------------------------------------ receivers


def _receivers(node: object, present: bool, problems: _Problems) -> dict[str, ReceiverConfig] | None:
    """The receivers by name, or None when the section is unusable (so names are not checked)."""
    if not present or node is None:
        problems.add("receivers", "required: a list of receivers, each with a name and one of pagerduty, slack, log")
        return None
    if not isinstance(node, list):
        problems.add("receivers", f"expected a list of receivers, got {_kind(node)}")
        return None
    if not node:
        problems.add("receivers", "at least one receiver is needed, e.g. - {name: log, log: {}}")
    found: dict[str, ReceiverConfig] = {}
    first_index: dict[str, int] = {}
    for index, item in enumerate(node):
        path = f"receivers[{index}]"
        if not isinstance(item, dict):
            problems.add(path, f"expected a mapping with name and one of pagerduty, slack, log, got {_kind(item)}")
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.add(f"{path}.name" if "name" in item else path,
                         f"every receiver needs a name, got {_kind(name)}" if "name" in item else "every receiver needs a name")
            name = None
        elif not _RECEIVER_NAME.fullmatch(name):
            problems.add(f"{path}.name", f"bad receiver name {name!r}: letters, digits, '-', '_' and '.', "
                                         "starting with a letter or digit, at most 100 characters")
        elif name in first_index:
            problems.add(f"{path}.name", f"duplicate receiver name {name!r} (also receivers[{first_index[name]}])")
            name = None
        receiver = _receiver(item, name, path, problems)
        if name is not None:
            first_index.setdefault(name, index)
            # Record the name even when its settings are wrong, so routes that use it are not
            # also reported as naming an unknown receiver.
            found[name] = receiver or ReceiverConfig(name=name, log=LogConfig())
    return found


def _receiver(item: dict[Any, Any], name: str | None, path: str, problems: _Problems) -> ReceiverConfig | None:
    label = f"receiver {name!r}" if name else "a receiver"
    problems.keys(item, ("name", *RECEIVER_KINDS), path, special=lambda key: _secret_message(key, None))
    before = len(problems.items)
    kinds = [kind for kind in RECEIVER_KINDS if kind in item]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        problems.add(path, f"{label} needs exactly one of pagerduty, slack, log; found {found}")
    # Every block present is checked, even when there are too many, so all problems show at once.
    settings: dict[str, Any] = {}
    for kind in kinds:
        block = item[kind] if item[kind] is not None else {}
        block_path = f"{path}.{kind}"
        if not isinstance(block, dict):
            problems.add(block_path, f"expected a mapping of settings (or {{}}), got {_kind(block)}")
            continue
        settings[kind] = _KIND_PARSERS[kind](block, block_path, problems)
    if len(problems.items) != before or len(settings) != 1:
        return None
    return ReceiverConfig(name=name or "", **settings)


def _secret_message(key: str, kind: str | None) -> str | None:
    """A message for a key that looks like a secret, naming the variable it comes from; None otherwise.

    The value is never echoed: the point is to keep it out of files and logs."""
    lowered = key.lower()
    # By suffix, so that e.g. webhook_configs is reported as an unknown key, not as a secret.
    if not lowered.endswith(("key", "token", "secret", "password", "url")):
        return None
    head = "secrets are never kept in this file"
    if kind == "pagerduty" or (kind is None and lowered.endswith("key") and
                               any(word in lowered for word in ("routing", "service", "integration"))):
        return f"{head}; the PagerDuty routing key comes from the environment variable {PAGERDUTY_ROUTING_KEY_VARIABLE}"
    if kind in ("slack", None):
        if lowered.endswith("token"):
            return f"{head}; the Slack bot token comes from the environment variable {SLACK_BOT_TOKEN_VARIABLE}"
        if lowered.endswith("url"):
            return f"{head}; the Slack webhook URL comes from the environment variable {SLACK_WEBHOOK_URL_VARIABLE}"
    return (f"{head}; receiver secrets come from the environment variables {PAGERDUTY_ROUTING_KEY_VARIABLE}, "
            f"{SLACK_WEBHOOK_URL_VARIABLE} or {SLACK_BOT_TOKEN_VARIABLE}")


def _optional_text(block: Mapping[Any, Any], key: str, path: str, problems: _Problems) -> str | None:
    value = block.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(_join(path, key), f"expected non-empty text, got {_kind(value)}")
        return None
    return value.strip()


def _pagerduty(block: Mapping[Any, Any], path: str, problems: _Problems) -> PagerDutyConfig:
    problems.keys(block, _PAGERDUTY_KEYS, path, special=lambda key: _secret_message(key, "pagerduty"))
    mapping: dict[Severity, str] = {severity: severity.value for severity in Severity}
    given = block.get("severity")
    if given is not None and not isinstance(given, dict):
        problems.add(f"{path}.severity", "expected a mapping of tradewatch severity to PagerDuty severity, "
                                         f"e.g. {{critical: critical, warning: warning}}, got {_kind(given)}")
    elif given:
        accepted_keys = ", ".join(s.value for s in Severity)
        for key, value in given.items():
            if key not in Severity.__members__.values():
                problems.add(f"{path}.severity", f"unknown tradewatch severity {key!r}; accepted: {accepted_keys}")
            elif value not in PAGERDUTY_SEVERITIES:
                problems.add(f"{path}.severity.{key}",
                             f"unknown PagerDuty severity {value!r}; accepted: {', '.join(PAGERDUTY_SEVERITIES)}")
            else:
                mapping[Severity(key)] = value
    return PagerDutyConfig(
        severity=mapping,
        component=_optional_text(block, "component", path, problems),
        group=_optional_text(block, "group", path, problems),
        class_=_optional_text(block, "class", path, problems),
    )


def _slack(block: Mapping[Any, Any], path: str, problems: _Problems) -> SlackConfig:
    problems.keys(block, _SLACK_KEYS, path, special=lambda key: _secret_message(key, "slack"))
    channel = _optional_text(block, "channel", path, problems)
    if channel is not None and not _SLACK_CHANNEL.fullmatch(channel):
        problems.add(f"{path}.channel", f"bad channel {channel!r}: a name like #trading-alerts or an ID like C0123456789")
    mention = _optional_text(block, "mention", path, problems)
    if mention is not None and not (mention.startswith("<") and mention.endswith(">")):
        # Slack only notifies for its escaped form; `@here` would be posted as plain text.
        problems.add(f"{path}.mention", f"mention {mention!r} would not notify anyone; Slack needs the escaped form, "
                                        "e.g. <!here>, <!channel>, <@U0123456789> or <!subteam^S0123456789>")
    return SlackConfig(channel=channel, mention=mention)


def _log(block: Mapping[Any, Any], path: str, problems: _Problems) -> LogConfig:
    problems.keys(block, _LOG_KEYS, path)
    level = block.get("level", "warning")
    if level not in LOG_LEVELS:
        problems.add(f"{path}.level", f"unknown level {level!r}; accepted: {', '.join(LOG_LEVELS)}")
        return LogConfig()
    return LogConfig(level=level)


# ------------------------------------------------------------------ inhibit rules


def _inhibit_rules(node: object, problems: _Problems) -> tuple[InhibitRule, ...] | None:
    if not isinstance(node, list):
        problems.add("inhibit_rules", f"expected a list of rules, got {_kind(node)}")
        return None
    rules: list[InhibitRule] = []
    ok = True
    for index, item in enumerate(node):
        path = f"inhibit_rules[{index}]"
        if not isinstance(item, dict):
            problems.add(path, f"expected a mapping with source_matchers, target_matchers, equal, got {_kind(item)}")
            ok = False
            continue
        problems.keys(item, _INHIBIT_KEYS, path)
        sides: dict[str, tuple[Matcher, ...] | None] = {}
        for side in ("source_matchers", "target_matchers"):
            if side not in item:
                # An empty side would make the rule apply to every alert: a source of silent outages.
                problems.add(path, f"{side} is required (at least one matcher, e.g. {_MATCHER_EXAMPLE})")
                sides[side] = None
            else:
                sides[side] = _matchers(item[side], f"{path}.{side}", problems, required=True)
        equal: tuple[str, ...] | None = ()
        if item.get("equal") is not None:
            equal = _label_names(item["equal"], f"{path}.equal", problems, allow_all=False)
        source, target = sides["source_matchers"], sides["target_matchers"]
        if source is None or target is None or equal is None:
            ok = False
            continue
        rules.append(InhibitRule(source_matchers=source, target_matchers=target, equal=equal))
    return tuple(rules) if ok else None


_KIND_PARSERS: dict[str, Callable[[Mapping[Any, Any], str, _Problems], Any]] = {
    "pagerduty": _pagerduty,
    "slack": _slack,
    "log": _log,
}
