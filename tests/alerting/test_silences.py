"""Silences: validation, state over time, matching, expiry, JSON round trip."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from tradewatch.alerting.matchers import Matcher, parse_matcher
from tradewatch.alerting.model import Alert
from tradewatch.alerting.silences import Silence

T0 = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def silence(**overrides) -> Silence:
    fields = dict(id="s-1", matchers=['alertname="StaleFeed"', 'strategy_id=~"mm-.*"'], starts_at=T0, ends_at=T0 + HOUR,
                  created_by="ana@desk", comment="feed vendor maintenance until 10:30", created_at=T0 - timedelta(minutes=1))
    fields.update(overrides)
    return Silence(**fields)


def alert(**labels: str) -> Alert:
    return Alert(labels={"alertname": "StaleFeed", "severity": "warning", **labels}, starts_at=T0)


def test_strings_are_parsed_into_matchers():
    assert silence().matchers == (Matcher("alertname", "=", "StaleFeed"), Matcher("strategy_id", "=~", "mm-.*"))
    assert silence(matchers=[parse_matcher("a=b")]).matchers == (Matcher("a", "=", "b"),)


def test_state_over_time():
    s = silence()
    assert s.state(T0 - timedelta(seconds=1)) == "pending"
    assert s.state(T0) == "active"  # starts_at is inclusive
    assert s.state(T0 + HOUR - timedelta(microseconds=1)) == "active"
    assert s.state(T0 + HOUR) == "expired"  # ends_at is exclusive
    assert [s.is_active(t) for t in (T0 - HOUR, T0, T0 + 2 * HOUR)] == [False, True, False]


def test_state_accepts_other_timezones_and_refuses_naive_now():
    s = silence()
    assert s.state(datetime(2026, 11, 22, 10, 45, tzinfo=timezone(timedelta(hours=1)))) == "active"  # 09:45 UTC
    with pytest.raises(ValueError, match="naive datetime"):
        s.state(datetime(2026, 11, 22, 9, 45))


def test_matches_alerts_by_labels():
    s = silence()
    assert s.matches(alert(strategy_id="mm-1"))
    assert not s.matches(alert(strategy_id="momentum"))
    assert not s.matches(alert())  # missing strategy_id is "", which mm-.* does not match
    assert s.mutes(alert(strategy_id="mm-1"), T0 + timedelta(minutes=5))
    assert not s.mutes(alert(strategy_id="mm-1"), T0 + 2 * HOUR)


def test_expire_an_active_silence_ends_it_now():
    now = T0 + timedelta(minutes=10)
    expired = silence().expire(now)
    assert (expired.starts_at, expired.ends_at) == (T0, now)
    assert expired.state(now) == "expired"
    assert (expired.id, expired.created_by, expired.comment) == ("s-1", "ana@desk", "feed vendor maintenance until 10:30")


def test_expire_a_pending_silence_keeps_it_valid():
    now = T0 - timedelta(minutes=10)
    expired = silence().expire(now)
    assert expired.starts_at == expired.ends_at == now
    assert expired.state(now) == "expired"
    assert Silence.model_validate_json(expired.model_dump_json()) == expired


def test_expire_an_expired_silence_changes_nothing():
    s = silence()
    assert s.expire(T0 + 2 * HOUR) is s


def test_expire_converts_now_to_utc():
    now = datetime(2026, 11, 22, 10, 40, tzinfo=timezone(timedelta(hours=1)))
    assert silence().expire(now).ends_at == datetime(2026, 11, 22, 9, 40, tzinfo=timezone.utc)
    assert silence().expire(now).ends_at.tzinfo == timezone.utc


def test_json_round_trip_writes_matchers_as_text():
    s = silence(starts_at=datetime(2026, 11, 22, 10, 30, tzinfo=timezone(timedelta(hours=1))))
    text = s.model_dump_json()
    assert '"matchers":["alertname=\\"StaleFeed\\"","strategy_id=~\\"mm-.*\\""]' in text
    assert '"starts_at":"2026-11-22T09:30:00Z"' in text  # normalised to UTC
    again = Silence.model_validate_json(text)
    assert again == s
    assert again.matches(alert(strategy_id="mm-3"))


def _errors(**overrides) -> str:
    with pytest.raises(ValidationError) as caught:
        silence(**overrides)
    return str(caught.value)


def test_needs_at_least_one_matcher():
    assert 'a silence needs at least one matcher, e.g. alertname="StaleFeed"' in _errors(matchers=[])


def test_matchers_that_all_match_the_empty_string_are_refused():
    message = _errors(matchers=['strategy_id=~".*"', 'team=""', 'desk!="x"'])
    assert "all match the empty string, so the silence would mute every alert" in message
    assert 'matcher strategy_id=~".*" matches the empty string' in _errors(matchers=['strategy_id=~".*"'])
    # One matcher that needs a value is enough.
    assert silence(matchers=['strategy_id=~".*"', 'alertname="StaleFeed"']).matches(alert())


def test_bad_matcher_text_is_reported():
    assert "bad regex '(' for strategy_id" in _errors(matchers=['strategy_id=~"("'])


def test_ends_at_before_starts_at_is_refused():
    message = _errors(ends_at=T0 - timedelta(seconds=1))
    assert "ends_at 2026-11-22T09:29:59+00:00 is before starts_at 2026-11-22T09:30:00+00:00" in message


@pytest.mark.parametrize("field", ["created_by", "comment"])
@pytest.mark.parametrize("value", ["", "   "])
def test_author_and_comment_are_required_and_not_blank(field, value):
    assert f"{field} is required and must not be blank" in _errors(**{field: value})


@pytest.mark.parametrize("field", ["created_by", "comment", "id", "created_at", "matchers", "starts_at", "ends_at"])
def test_missing_fields_are_refused(field):
    fields = dict(id="s-1", matchers=['alertname="X"'], starts_at=T0, ends_at=T0 + HOUR, created_by="a", comment="b",
                  created_at=T0)
    del fields[field]
    with pytest.raises(ValidationError, match=field):
        Silence(**fields)


def test_naive_times_and_unknown_fields_are_refused():
    assert "naive datetime" in _errors(starts_at=datetime(2026, 11, 22, 9, 30))
    assert "extra" in _errors(reason="x").lower()


def test_silences_are_frozen():
    with pytest.raises(ValidationError):
        silence().comment = "changed"  # type: ignore[misc]
