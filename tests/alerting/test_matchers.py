"""Matchers: Alertmanager's string forms, anchored regexes, missing labels as empty, clear errors."""

from __future__ import annotations

import pytest

from tradewatch.alerting.matchers import Matcher, MatcherError, matches_all, parse_matcher


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('severity="critical"', "severity", "=", "critical"),
        ("severity=critical", "severity", "=", "critical"),
        ('strategy_id!~"mm-.*"', "strategy_id", "!~", "mm-.*"),
        ('strategy_id =~ "mm-.*"', "strategy_id", "=~", "mm-.*"),
        ("  symbol != AAPL  ", "symbol", "!=", "AAPL"),
        ('team=""', "team", "=", ""),
        ("team=", "team", "=", ""),
        (r'summary="say \"hi\""', "summary", "=", 'say "hi"'),
        (r'path="C:\\temp"', "path", "=", "C:\\temp"),
        (r'text="two\nlines"', "text", "=", "two\nlines"),
        # An escape that is not one of \" \\ \n keeps its backslash, so regexes need no doubling.
        (r'strategy_id=~"mm-\d+"', "strategy_id", "=~", r"mm-\d+"),
        ('summary="a = b"', "summary", "=", "a = b"),
        ("_private=x", "_private", "=", "x"),
    ],
)
def test_parses_alertmanager_forms(text, name, op, value):
    assert parse_matcher(text) == Matcher(name, op, value)


@pytest.mark.parametrize(
    "matcher",
    [
        Matcher("severity", "=", "critical"),
        Matcher("strategy_id", "!~", "mm-.*"),
        Matcher("summary", "=", 'say "hi" \\ back\nslash'),
        Matcher("strategy_id", "=~", r"mm-\d+"),
        Matcher("team", "!=", ""),
    ],
)
def test_renders_the_canonical_form_and_reads_it_back(matcher):
    text = str(matcher)
    assert text.startswith(f'{matcher.name}{matcher.op}"') and text.endswith('"')
    assert parse_matcher(text) == matcher


def test_canonical_form_examples():
    assert str(parse_matcher("severity=critical")) == 'severity="critical"'
    assert str(parse_matcher(" strategy_id !~ mm-.* ")) == 'strategy_id!~"mm-.*"'
    assert str(Matcher("summary", "=", 'a "b"')) == r'summary="a \"b\""'


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ('severity="critical"', {"severity": "warning"}, False),
        ('severity!="critical"', {"severity": "warning"}, True),
        ('severity!="critical"', {"severity": "critical"}, False),
        # Anchored: the regex must match the whole value.
        ('severity=~"crit"', {"severity": "critical"}, False),
        ('severity=~"crit.*"', {"severity": "critical"}, True),
        ('severity=~"critical|warning"', {"severity": "warning"}, True),
        ('severity=~"critical|warning"', {"severity": "critical-ish"}, False),
        ('strategy_id!~"mm-.*"', {"strategy_id": "mm-1"}, False),
        ('strategy_id!~"mm-.*"', {"strategy_id": "momentum"}, True),
        ('strategy_id!~"mm"', {"strategy_id": "mm-1"}, True),  # anchored for !~ too
        # A missing label is the empty string.
        ('team=""', {}, True),
        ('team=""', {"team": "risk"}, False),
        ('team!=""', {}, False),
        ('team!=""', {"team": "risk"}, True),
        ('team=~".*"', {}, True),
        ('team=~".+"', {}, False),
        ('team!~".+"', {}, True),
        ('strategy_id!~"mm-.*"', {}, True),
        ('strategy_id="mm-1"', {}, False),
        # A trailing newline is not ignored (Python's `$` would ignore it; fullmatch does not).
        ('symbol=~"AAPL"', {"symbol": "AAPL\n"}, False),
    ],
)
def test_matches(matcher, labels, expected):
    assert parse_matcher(matcher).matches(labels) is expected


def test_matches_all():
    matchers = [parse_matcher('severity="critical"'), parse_matcher('strategy_id=~"mm-.*"')]
    assert matches_all(matchers, {"severity": "critical", "strategy_id": "mm-1"})
    assert not matches_all(matchers, {"severity": "critical", "strategy_id": "momentum"})
    assert matches_all([], {"anything": "x"})  # no matchers: everything


def test_equal_and_hashable_regardless_of_how_written():
    assert parse_matcher('a="b"') == parse_matcher("a = b")
    assert len({parse_matcher('a="b"'), parse_matcher("a=b"), parse_matcher('a=~"b"')}) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("severity", "'severity' has no operator; accepted: =, !=, =~, !~ (e.g. severity=\"critical\")"),
        ("severity critical", "'severity critical' has no operator; accepted: =, !=, =~, !~"),
        ("", "empty matcher; expected a label name, an operator (=, !=, =~, !~) and a value"),
        ("   ", "empty matcher"),
        ('strategy_id=~"foo("', "bad regex 'foo(' for strategy_id: missing ), unterminated subpattern at position 3"),
        ('strategy_id!~"[a-"', "bad regex '[a-' for strategy_id: unterminated character set at position 0"),
        ('1abc="x"', "bad label name '1abc' in matcher '1abc=\"x\"': a label name starts with a letter or underscore"),
        ('sever-ity="x"', "bad label name 'sever-ity'"),
        ('="x"', "matcher '=\"x\"' has no label name before the operator"),
        ('severity=="critical"', "unknown operator '==' in matcher 'severity==\"critical\"'; accepted: =, !=, =~, !~"),
        ('severity<"x"', "unknown operator '<'"),
        ('severity="critical', "the value opens a double quote but does not close it"),
        (r'severity="critical\"', "the value opens a double quote but does not close it"),
        ('severity="crit"ical"', "unescaped double quote inside the quoted value; quote the whole value and write \\\""),
        ('severity=crit"ical', "unescaped double quote in the value"),
    ],
)
def test_errors_say_what_was_wrong_and_what_is_accepted(text, message):
    with pytest.raises(MatcherError) as caught:
        parse_matcher(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_non_text_is_rejected():
    with pytest.raises(MatcherError, match="a matcher is a string like severity=\"critical\", got int 3"):
        parse_matcher(3)  # type: ignore[arg-type]


def test_direct_construction_is_validated():
    with pytest.raises(MatcherError, match="unknown operator '==' for severity; accepted: =, !=, =~, !~"):
        Matcher("severity", "==", "critical")
    with pytest.raises(MatcherError, match="bad label name 'a b'"):
        Matcher("a b", "=", "x")
    with pytest.raises(MatcherError, match="bad regex '\\(' for x"):
        Matcher("x", "=~", "(")


def test_equality_operators_do_not_treat_the_value_as_a_regex():
    assert Matcher("symbol", "=", "BRK.B").matches({"symbol": "BRK.B"})
    assert not Matcher("symbol", "=", "BRK.B").matches({"symbol": "BRKXB"})
    assert Matcher("x", "=", "(").matches({"x": "("})  # no regex compiled, no error
