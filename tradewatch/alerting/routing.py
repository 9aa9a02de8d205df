"""The routing tree: which receivers get an alert, how it is grouped, and why.

Modelled on Prometheus Alertmanager's route tree. Every alert enters at the root, which has no
matchers and so receives everything. A route matches when all its matchers match the alert's
labels; its child routes are then tried in order and the first matching child wins, unless that
child has ``continue: true``, in which case later siblings are tried as well. When no child
matches, the route itself is the match. One alert can therefore reach several receivers (a
critical goes to PagerDuty and, through ``continue``, to Slack).

Receiver, ``group_by`` and the three timings are inherited down the tree. :func:`build_route`
resolves inheritance once, from a :class:`RouteSpec` (what a configuration says, ``None`` for
"inherit") into a :class:`Route` (the effective values), so matching never walks back up.

Every :class:`RouteMatch` carries an explanation, step by step, of how the alert got there,
for ``tradewatch alerts routes --label severity=critical ...``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from tradewatch.alerting.durations import format_duration
from tradewatch.alerting.matchers import Matcher, parse_matcher, quote_value

#: ``group_by: ['...']`` groups by every label, so each distinct alert is its own group.
GROUP_BY_ALL: tuple[str, ...] = ("...",)

#: Alertmanager's defaults, used when the root does not set a timing.
DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)

ROOT_PATH = "route"


@dataclass(frozen=True)
class Route:
    """One node of the tree with its effective (inherited and resolved) settings.

    ``path`` names the node the way the configuration file does (``route.routes[1].routes[0]``);
    it appears in explanations and group keys. ``group_by`` is a tuple of label names, or
    :data:`GROUP_BY_ALL`; empty means every alert on the route falls into one group.
    """

    receiver: str
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    group_by: tuple[str, ...] = ()
    group_wait: timedelta = DEFAULT_GROUP_WAIT
    group_interval: timedelta = DEFAULT_GROUP_INTERVAL
    repeat_interval: timedelta = DEFAULT_REPEAT_INTERVAL
    routes: tuple[Route, ...] = ()
    path: str = ROOT_PATH

    def __post_init__(self) -> None:
        if not self.receiver:
            raise ValueError(f"{self.path}: a route needs a receiver")
        if "..." in self.group_by and self.group_by != GROUP_BY_ALL:
            raise ValueError(f"{self.path}.group_by: '...' (every label) cannot be combined with other labels")
        for name, value in (("group_wait", self.group_wait), ("group_interval", self.group_interval),
                            ("repeat_interval", self.repeat_interval)):
            if value < timedelta():
                raise ValueError(f"{self.path}.{name}: cannot be negative")

    def match(self, labels: Mapping[str, str]) -> list[RouteMatch]:
        """The routes an alert with ``labels`` is delivered through, in tree order; empty when this
        route's own matchers do not match (never the case for the root, which has none)."""
        if _failures(self.matchers, labels):
            return []
        if self.path == ROOT_PATH and not self.matchers:
            entered = f"{self.path} (receiver {self.receiver}): the root route receives every alert"
        elif self.matchers:
            entered = f"{self.path} (receiver {self.receiver}): matched {_joined(self.matchers)}"
        else:
            entered = f"{self.path} (receiver {self.receiver}): entered (no matchers)"
        return self._match_children(labels, (entered,))

    def _match_children(self, labels: Mapping[str, str], steps: tuple[str, ...]) -> list[RouteMatch]:
        found: list[RouteMatch] = []
        # Lines about earlier siblings (skipped, or matched with continue) explain why a later
        # sibling was reached, so they go into the explanations of that sibling's matches.
        siblings: list[str] = []
        for child in self.routes:
            failed = _failures(child.matchers, labels)
            if failed:
                reasons = "; ".join(_why_not(matcher, labels) for matcher in failed)
                siblings.append(f"{child.path}: skipped, {reasons}")
                continue
            what = f"matched {_joined(child.matchers)}" if child.matchers else "matched (no matchers: every alert)"
            line = f"{child.path} (receiver {child.receiver}): {what}; continue: {str(child.continue_).lower()}"
            found.extend(child._match_children(labels, (*steps, *siblings, line)))
            if not child.continue_:
                break
            siblings.append(line)
        if not found:
            if self.routes:
                why = f"none of its {len(self.routes)} child routes matched" if len(self.routes) > 1 else "its child route did not match"
            else:
                why = "no child routes"
            final = f"{self.path}: delivers to {self.receiver} ({why})"
            found.append(RouteMatch.of(self, (*steps, *siblings, final)))
        return found

    def walk(self) -> Iterator[Route]:
        """This route and every route below it, depth first in file order."""
        yield self
        for child in self.routes:
            yield from child.walk()

    def describe(self) -> str:
        """One line of this route's own settings, for listings."""
        group_by = "..." if self.group_by == GROUP_BY_ALL else ", ".join(self.group_by) or "(one group)"
        matchers = _joined(self.matchers) if self.matchers else "(every alert)"
        flag = "; continue" if self.continue_ else ""
        return (
            f"{self.path}: {matchers} -> {self.receiver}; group_by {group_by}; "
            f"group_wait {format_duration(self.group_wait)}, group_interval {format_duration(self.group_interval)}, "
            f"repeat_interval {format_duration(self.repeat_interval)}{flag}"
        )


@dataclass(frozen=True)
class RouteMatch:
    """One delivery decision: the route reached, its effective settings, and how it was reached."""

    route: Route
    receiver: str
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    explanation: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, route: Route, explanation: Sequence[str]) -> RouteMatch:
        return cls(route=route, receiver=route.receiver, group_by=route.group_by, group_wait=route.group_wait,
                   group_interval=route.group_interval, repeat_interval=route.repeat_interval,
                   explanation=tuple(explanation))

    @property
    def path(self) -> str:
        return self.route.path


@dataclass(frozen=True)
class RouteSpec:
    """A route as written in a configuration: ``None`` means "inherit from the parent".

    ``matchers`` may hold :class:`Matcher` objects or their string form (``'severity="critical"'``).
    """

    receiver: str | None = None
    matchers: tuple[Matcher | str, ...] = ()
    continue_: bool = False
    group_by: tuple[str, ...] | None = None
    group_wait: timedelta | None = None
    group_interval: timedelta | None = None
    repeat_interval: timedelta | None = None
    routes: tuple[RouteSpec, ...] = ()


def build_route(spec: RouteSpec, parent: Route | None = None, path: str = ROOT_PATH) -> Route:
    """Resolve inheritance: the effective route tree for ``spec``.

    The root takes Alertmanager's defaults for timings it leaves unset (30s, 5m, 4h) and groups
    everything into one group when it sets no ``group_by``. Raises ValueError when the root has
    no receiver or has matchers (it must receive every alert).
    """
    if parent is None:
        if not spec.receiver:
            raise ValueError(f"{path}: the root route needs a receiver")
        if spec.matchers:
            raise ValueError(f"{path}: the root route must not have matchers (it receives every alert)")
        if spec.continue_:
            raise ValueError(f"{path}: the root route cannot have continue (it has no siblings)")

    def inherit(own, inherited, default):
        if own is not None:
            return own
        return inherited if parent is not None else default

    resolved = Route(
        receiver=inherit(spec.receiver, parent.receiver if parent else None, None) or "",
        matchers=tuple(m if isinstance(m, Matcher) else parse_matcher(m) for m in spec.matchers),
        continue_=spec.continue_,
        group_by=tuple(inherit(spec.group_by, parent.group_by if parent else None, ())),
        group_wait=inherit(spec.group_wait, parent.group_wait if parent else None, DEFAULT_GROUP_WAIT),
        group_interval=inherit(spec.group_interval, parent.group_interval if parent else None, DEFAULT_GROUP_INTERVAL),
        repeat_interval=inherit(spec.repeat_interval, parent.repeat_interval if parent else None, DEFAULT_REPEAT_INTERVAL),
        path=path,
    )
    children = tuple(build_route(child, resolved, f"{path}.routes[{index}]") for index, child in enumerate(spec.routes))
    return _with_children(resolved, children)


def _with_children(route: Route, children: tuple[Route, ...]) -> Route:
    # Children need their parent's effective values, so the parent is built first and then
    # given its children (a frozen dataclass is rebuilt rather than mutated).
    return Route(receiver=route.receiver, matchers=route.matchers, continue_=route.continue_, group_by=route.group_by,
                 group_wait=route.group_wait, group_interval=route.group_interval,
                 repeat_interval=route.repeat_interval, routes=children, path=route.path)


def group_labels(match: RouteMatch, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels an alert is grouped by on this route: the ``group_by`` labels it carries (a
    missing or empty one is left out, as Alertmanager does), or all of them for ``...``."""
    if match.group_by == GROUP_BY_ALL:
        return {name: value for name, value in labels.items() if value}
    return {name: labels[name] for name in match.group_by if labels.get(name)}


def group_key(match: RouteMatch, labels: Mapping[str, str]) -> str:
    """Identifies an alert group for its whole life: route path, receiver and sorted group labels,
    e.g. ``route.routes[0]/pagerduty-oncall/{alertname="StaleFeed",strategy_id="mm-1"}``.

    Deterministic, so the resolve of a group reaches the PagerDuty incident its trigger opened.
    It contains the route's path: reordering routes in the file changes the keys of the groups
    on the moved routes.
    """
    grouped = group_labels(match, labels)
    body = ",".join(f"{name}={quote_value(grouped[name])}" for name in sorted(grouped))
    return f"{match.route.path}/{match.receiver}/{{{body}}}"


def _failures(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> list[Matcher]:
    return [matcher for matcher in matchers if not matcher.matches(labels)]


def _joined(matchers: Sequence[Matcher]) -> str:
    return ", ".join(str(matcher) for matcher in matchers)


def _why_not(matcher: Matcher, labels: Mapping[str, str]) -> str:
    if matcher.name in labels:
        return f"{matcher} did not match {matcher.name}={quote_value(labels[matcher.name])}"
    return f"{matcher} did not match ({matcher.name} is not set)"
