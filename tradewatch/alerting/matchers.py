"""Label matchers: the conditions routes, inhibition rules and silences select alerts by.

A matcher is a label name, an operator and a value, written the way Prometheus Alertmanager
writes them: ``severity="critical"``, ``severity=critical``, ``strategy_id!~"mm-.*"``.

- ``=`` and ``!=`` compare the label's value with the text.
- ``=~`` and ``!~`` test it against a regular expression that is ANCHORED at both ends, as in
  Alertmanager (``^(?:re)$``): ``severity=~"crit"`` does not match ``critical``. Anchoring
  avoids the classic surprise where a short pattern matches far more than its author meant.
- A label the alert does not carry counts as the empty string, so ``team=""`` selects alerts
  without a team and ``team!=""`` selects those with one.

Regular expressions use Python's ``re`` syntax; for the patterns routing configurations use
(alternations, classes, ``.*``) it agrees with the RE2 syntax Alertmanager uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tradewatch.alerting.model import LABEL_NAME_PATTERN

#: The operators, in the order they are listed in messages.
OPERATORS = ("=", "!=", "=~", "!~")
_ACCEPTED = ", ".join(OPERATORS)
_EXAMPLE = 'severity="critical"'

_LABEL_NAME = re.compile(LABEL_NAME_PATTERN)
# Characters an operator is made of: a run of them after the name is read as one operator, so
# that a typo such as `==` is reported instead of being read as `=` followed by the value `="x"`.
_OPERATOR_CHARS = "=!~<>"
_NAME_RULE = "a label name starts with a letter or underscore, followed by letters, digits or underscores"


class MatcherError(ValueError):
    """A matcher could not be parsed or built; the message says what was wrong and what is accepted."""


@dataclass(frozen=True)
class Matcher:
    """``name op value``; build one directly or with :func:`parse_matcher`.

    Equality and hashing use name, operator and value, so two matchers written differently
    (``a=b`` and ``a="b"``) are the same matcher.
    """

    name: str
    op: str
    value: str
    # Compiled once here rather than on every alert; excluded from equality and repr.
    _regex: re.Pattern[str] | None = field(init=False, default=None, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _LABEL_NAME.fullmatch(self.name):
            raise MatcherError(f"bad label name {self.name!r}: {_NAME_RULE}")
        if self.op not in OPERATORS:
            raise MatcherError(f"unknown operator {self.op!r} for {self.name}; accepted: {_ACCEPTED} (e.g. {_EXAMPLE})")
        if not isinstance(self.value, str):
            raise MatcherError(f"the value for {self.name} must be a string, got {type(self.value).__name__}")
        if self.is_regex:
            try:
                # Compiled on its own (not wrapped in `^(?:...)$`) so an error position refers to the
                # author's text; fullmatch then gives the anchored semantics.
                compiled = re.compile(self.value)
            except re.error as exc:
                raise MatcherError(f"bad regex {self.value!r} for {self.name}: {exc}") from None
            object.__setattr__(self, "_regex", compiled)

    @property
    def is_regex(self) -> bool:
        return self.op in ("=~", "!~")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher; a missing label is the empty string."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{quote_value(self.value)}"


def quote_value(value: str) -> str:
    """``value`` in double quotes with backslash, double quote and newline escaped, as Alertmanager
    writes it; :func:`parse_matcher` reads it back to the same value."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (so an empty list matches everything)."""
    return all(matcher.matches(labels) for matcher in matchers)


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher in Alertmanager's string form.

    Accepted: ``name OP value`` with OP one of ``=``, ``!=``, ``=~``, ``!~``; whitespace around
    the operator; the value bare (``severity=critical``, surrounding whitespace dropped) or in
    double quotes with ``\\"``, ``\\\\`` and ``\\n`` escapes (any other backslash is kept as
    written, so a regex like ``"mm-\\d+"`` needs no doubling).
    """
    if not isinstance(text, str):
        raise MatcherError(f"a matcher is a string like {_EXAMPLE}, got {type(text).__name__} {text!r}")
    stripped = text.strip()
    if not stripped:
        raise MatcherError(f"empty matcher; expected a label name, an operator ({_ACCEPTED}) and a value, e.g. {_EXAMPLE}")

    start = next((i for i, char in enumerate(stripped) if char in _OPERATOR_CHARS), None)
    if start is None:
        raise MatcherError(f"{stripped!r} has no operator; accepted: {_ACCEPTED} (e.g. {_EXAMPLE})")
    end = start
    while end < len(stripped) and stripped[end] in _OPERATOR_CHARS:
        end += 1
    name, op, raw_value = stripped[:start].strip(), stripped[start:end], stripped[end:].strip()

    if not name:
        raise MatcherError(f"matcher {stripped!r} has no label name before the operator; expected e.g. {_EXAMPLE}")
    if not _LABEL_NAME.fullmatch(name):
        raise MatcherError(f"bad label name {name!r} in matcher {stripped!r}: {_NAME_RULE}")
    if op not in OPERATORS:
        raise MatcherError(
            f"unknown operator {op!r} in matcher {stripped!r}; accepted: {_ACCEPTED} (e.g. {_EXAMPLE}); "
            "quote a value that itself starts with one of = ! ~ < >"
        )
    return Matcher(name, op, _unquote(raw_value, stripped))


def _unquote(raw: str, text: str) -> str:
    """The value of a bare or double-quoted matcher value (Alertmanager's escaping rules)."""
    quoted = raw.startswith('"')
    if quoted:
        if len(raw) < 2 or not raw.endswith('"') or _ends_with_escape(raw[1:-1]):
            raise MatcherError(f"matcher {text!r}: the value opens a double quote but does not close it")
        raw = raw[1:-1]
    out: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            following = raw[index + 1]
            if following == "n":
                out.append("\n")
            elif following in ('"', "\\"):
                out.append(following)
            else:  # not an escape we know: keep the backslash, as Alertmanager does (regexes)
                out.append("\\" + following)
            index += 2
            continue
        if char == '"':
            where = "inside the quoted value" if quoted else "in the value"
            raise MatcherError(
                f"matcher {text!r}: unescaped double quote {where}; quote the whole value and write \\\" "
                f"for a quote inside it, e.g. {_EXAMPLE}"
            )
        out.append(char)
        index += 1
    return "".join(out)


def _ends_with_escape(body: str) -> bool:
    """Whether ``body`` ends in an odd run of backslashes (so its closing quote is escaped)."""
    run = len(body) - len(body.rstrip("\\"))
    return run % 2 == 1
