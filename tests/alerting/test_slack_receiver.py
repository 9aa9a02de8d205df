"""Contract tests: the real slack_sdk clients (WebhookClient, WebClient), through SlackReceiver,
against a local fake of Slack's incoming webhooks and chat.postMessage; and the Block Kit
message build_blocks makes."""

from __future__ import annotations

import logging

import pytest
import structlog
from pydantic import SecretStr

from tests.alerting.fake_services import FakeSlack, closed_port_url, make_alert, make_notification
from tradewatch.alerting.model import Link
from tradewatch.alerting.receivers.base import PermanentDeliveryError, TransientDeliveryError
from tradewatch.alerting.receivers.pacing import LocalChannelPacer
from tradewatch.alerting.receivers.slack import SlackReceiver, build_blocks, build_text


@pytest.fixture
def fake():
    with FakeSlack() as service:
        yield service


@pytest.fixture
def webhook(fake):
    return SlackReceiver("slack-webhook", webhook_url=SecretStr(fake.webhook_url))


@pytest.fixture
def bot(fake):
    return SlackReceiver("slack-bot", bot_token=SecretStr(fake.bot_token), channel="alerts", base_url=fake.api_base_url)


def _texts(blocks) -> str:
    """Every text in a Block Kit message, newline-joined, for assertions on content."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


# ---------------------------------------------------------------------- webhook mode


def test_webhook_posts_the_message(fake, webhook):
    notification = make_notification()
    receipt = webhook.send(notification)
    assert (receipt.receiver, receipt.status, receipt.reference) == ("slack-webhook", 200, None)
    (message,) = fake.messages()
    assert message.json["text"] == build_text(notification)
    assert message.json["blocks"] == build_blocks(notification)
    assert message.json["blocks"][0]["text"]["text"].startswith(":red_circle: CRITICAL")


def test_webhook_rate_limit_is_transient_with_retry_after(fake, webhook):
    fake.fail_next(429, retry_after=3, times=3)
    with pytest.raises(TransientDeliveryError) as raised:
        webhook.send(make_notification())
    assert (raised.value.status, raised.value.retry_after) == (429, 3)
    assert len(fake.requests) == 1  # slack_sdk's retry handlers are off


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, "invalid_payload"), (403, "action_prohibited"), (403, "invalid_token"), (404, "channel_not_found"),
     (410, "channel_is_archived")],
)
def test_webhook_refusals_are_permanent(fake, webhook, status, error):
    fake.fail_next(status, error=error)
    with pytest.raises(PermanentDeliveryError) as raised:
        webhook.send(make_notification())
    assert raised.value.status == status
    assert error in str(raised.value)


def test_an_unknown_webhook_is_permanent_no_service(fake):
    receiver = SlackReceiver("slack-webhook", webhook_url=SecretStr(fake.webhook_url + "0"))
    with pytest.raises(PermanentDeliveryError, match="404 no_service"):
        receiver.send(make_notification())


def test_webhook_server_error_is_transient_after_one_attempt(fake, webhook):
    fake.fail_next(500, times=3)
    with pytest.raises(TransientDeliveryError, match="500 rollup_error"):
        webhook.send(make_notification())
    assert len(fake.requests) == 1


def test_webhook_connection_refused_is_transient():
    receiver = SlackReceiver("slack-webhook", webhook_url=SecretStr(closed_port_url() + "/services/T0/B0/secret"))
    with pytest.raises(TransientDeliveryError, match="not sent") as raised:
        receiver.send(make_notification())
    assert raised.value.status is None


def test_webhook_timeout_is_transient(fake):
    receiver = SlackReceiver("slack-webhook", webhook_url=SecretStr(fake.webhook_url), timeout_seconds=0.2)
    fake.stall_next()
    with pytest.raises(TransientDeliveryError, match="not sent"):
        receiver.send(make_notification())


# ---------------------------------------------------------------------- bot mode


def test_post_message_returns_the_ts(fake, bot):
    notification = make_notification()
    receipt = bot.send(notification)
    (message,) = fake.messages("alerts")
    assert receipt.status == 200
    assert receipt.reference == "1700000000.000101"
    assert message.headers["Authorization"] == f"Bearer {fake.bot_token}"
    assert message.json["channel"] == "alerts"
    assert message.json["blocks"] == build_blocks(notification)
    assert message.json["text"] == build_text(notification)


def test_post_message_to_an_unknown_channel_is_permanent(fake):
    receiver = SlackReceiver("slack-bot", bot_token=SecretStr(fake.bot_token), channel="nope", base_url=fake.api_base_url)
    with pytest.raises(PermanentDeliveryError, match="channel_not_found") as raised:
        receiver.send(make_notification())
    assert raised.value.status == 200  # the Web API says ok: false with HTTP 200


def test_post_message_with_a_wrong_token_is_permanent(fake):
    receiver = SlackReceiver("slack-bot", bot_token=SecretStr("xoxb-wrong-token"), channel="alerts", base_url=fake.api_base_url)
    with pytest.raises(PermanentDeliveryError, match="invalid_auth"):
        receiver.send(make_notification())


def test_post_message_ratelimited_is_transient_with_retry_after(fake, bot):
    fake.fail_next(429, retry_after=3, times=3)
    with pytest.raises(TransientDeliveryError, match="ratelimited") as raised:
        bot.send(make_notification())
    assert (raised.value.status, raised.value.retry_after) == (429, 3)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("error", ["fatal_error", "internal_error", "service_unavailable", "request_timeout"])
def test_post_message_server_side_errors_are_transient(fake, bot, error):
    fake.fail_next(200, error=error)
    with pytest.raises(TransientDeliveryError, match=error):
        bot.send(make_notification())


@pytest.mark.parametrize("error", ["not_in_channel", "account_inactive", "token_revoked", "invalid_blocks", "msg_too_long"])
def test_post_message_client_side_errors_are_permanent(fake, bot, error):
    fake.fail_next(200, error=error)
    with pytest.raises(PermanentDeliveryError, match=error):
        bot.send(make_notification())


def test_post_message_outage_page_is_transient(fake, bot):
    fake.fail_next(503, times=3)  # a non-JSON error page in front of the API
    with pytest.raises(TransientDeliveryError) as raised:
        bot.send(make_notification())
    assert raised.value.status == 503
    assert len(fake.requests) == 1


def test_post_message_connection_refused_is_transient():
    receiver = SlackReceiver("slack-bot", bot_token=SecretStr("xoxb-1-2-3"), channel="alerts",
                             base_url=closed_port_url() + "/api/")
    with pytest.raises(TransientDeliveryError, match="not sent"):
        receiver.send(make_notification())


# ---------------------------------------------------------------------- configuration


def test_configuration_names_what_is_missing():
    with pytest.raises(ValueError, match="webhook_url or bot_token is missing"):
        SlackReceiver("s")
    with pytest.raises(ValueError, match="both webhook_url and bot_token are set"):
        SlackReceiver("s", webhook_url=SecretStr("https://hooks.slack.com/services/T/B/X"), bot_token=SecretStr("xoxb-1"))
    with pytest.raises(ValueError, match="channel is missing"):
        SlackReceiver("s", bot_token=SecretStr("xoxb-1"))
    with pytest.raises(ValueError, match="must be an https:// ") as raised:
        SlackReceiver("s", webhook_url=SecretStr("ftp://hooks.example/services/T/B/SECRETPATH"))
    assert "SECRETPATH" not in str(raised.value)
    with pytest.raises(ValueError, match="bot_token is empty"):
        SlackReceiver("s", bot_token=SecretStr(""), channel="alerts")
    webhook = SlackReceiver("s", webhook_url=SecretStr("https://hooks.slack.com/services/T/B/X"), channel="#alerts")
    assert webhook.channel_key == "alerts"  # the channel it posts to, for pacing


# ---------------------------------------------------------------------- pacing


class RecordingPacer:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def wait(self, key: str) -> None:
        self.keys.append(key)


def test_pacer_is_asked_before_each_post_with_the_channel_key(fake):
    pacer = RecordingPacer()
    bot = SlackReceiver("slack-bot", bot_token=SecretStr(fake.bot_token), channel="alerts",
                        base_url=fake.api_base_url, pacer=pacer)
    webhook = SlackReceiver("slack-webhook", webhook_url=SecretStr(fake.webhook_url), pacer=pacer)
    bot.send(make_notification())
    webhook.send(make_notification())
    webhook.send(make_notification())
    assert pacer.keys[0] == "alerts"
    assert pacer.keys[1] == pacer.keys[2] == webhook.channel_key
    assert webhook.channel_key.startswith("webhook-")
    assert fake.webhook_path not in webhook.channel_key and "services" not in webhook.channel_key


def test_two_posts_to_one_channel_are_spaced_by_the_pacer(fake):
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = LocalChannelPacer(1.0, clock=lambda: now[0], sleep=sleep)
    bot = SlackReceiver("slack-bot", bot_token=SecretStr(fake.bot_token), channel="alerts",
                        base_url=fake.api_base_url, pacer=pacer)
    bot.send(make_notification())
    bot.send(make_notification())
    assert slept == [1.0]
    assert len(fake.messages("alerts")) == 2


# ---------------------------------------------------------------------- Block Kit content


def test_blocks_show_severity_summary_description_labels_and_links():
    dashboard = Link(href="https://grafana.example/d/feeds", text="Feed dashboard")
    alert = make_alert(links=(dashboard,), annotations={
        "summary": "AAPL quotes stale", "description": "No quote for 30 seconds.",
        "runbook_url": "https://runbooks.example/stale",
    })
    blocks = build_blocks(make_notification(alert))

    header, section, context = blocks
    assert header["type"] == "header"
    assert header["text"]["text"] == ":red_circle: CRITICAL: [FIRING:1] StaleMarketData (strategy_id=mm-1)"
    assert section["text"]["text"].startswith(":red_circle: *AAPL quotes stale*\nNo quote for 30 seconds.")
    assert "started 2024-03-01 14:30:00 UTC" in section["text"]["text"]
    fields = [f["text"] for f in section["fields"]]
    assert fields[:2] == ["*alertname*\nStaleMarketData", "*severity*\ncritical"]
    assert "*symbol*\nAAPL" in fields and "*strategy_id*\nmm-1" in fields
    assert context["type"] == "context"
    assert [e["text"] for e in context["elements"]] == [
        "<https://grafana.example/d/feeds|Feed dashboard>", "<https://runbooks.example/stale|Runbook>",
    ]


@pytest.mark.parametrize(
    ("severity", "marker"),
    [("critical", ":red_circle: CRITICAL"), ("warning", ":large_orange_circle: WARNING"),
     ("info", ":large_blue_circle: INFO")],
)
def test_header_carries_the_severity_marker(severity, marker):
    notification = make_notification(make_alert(severity=severity))
    assert build_blocks(notification)[0]["text"]["text"].startswith(marker)
    assert build_text(notification).startswith(marker)


def test_resolved_notification_is_marked_resolved():
    notification = make_notification(make_alert(resolved=True))
    blocks = build_blocks(notification)
    assert blocks[0]["text"]["text"].startswith(":white_check_mark: RESOLVED")
    assert blocks[1]["text"]["text"].startswith(":white_check_mark: *")
    assert "resolved 2024-03-01 14:35:00 UTC" in blocks[1]["text"]["text"]
    assert build_text(notification).startswith(":white_check_mark: RESOLVED")


def test_a_mixed_group_lists_firing_alerts_first_with_their_own_markers():
    notification = make_notification(make_alert("Gone", resolved=True), make_alert("Still", severity="warning"))
    blocks = build_blocks(notification)
    assert blocks[0]["text"]["text"].startswith(":large_orange_circle: WARNING")
    sections = [b for b in blocks if b["type"] == "section"]
    assert sections[0]["text"]["text"].startswith(":large_orange_circle: *Still on mm-1*")
    assert sections[1]["text"]["text"].startswith(":white_check_mark: *Gone on mm-1*")


def test_many_alerts_are_truncated_within_slacks_limits(fake, bot):
    links = (Link(href="https://grafana.example/d/x", text="Dashboard"),)
    alerts = [make_alert(symbol=f"S{i:03d}", links=links) for i in range(60)]
    notification = make_notification(*alerts)
    blocks = build_blocks(notification)

    assert len(blocks) <= 50
    shown = sum(1 for b in blocks if b["type"] == "section")
    note = blocks[-1]
    assert note["type"] == "context"
    assert note["elements"][0]["text"] == f"_and {60 - shown} more alerts_"
    assert shown == 24  # header + 24 x (section + links) + the note = 50 blocks
    bot.send(notification)  # the fake enforces Block Kit's limits
    assert len(fake.messages()) == 1


def test_the_text_fallback_is_truncated_with_a_count():
    alerts = [make_alert(symbol=f"S{i:03d}") for i in range(200)]
    text = build_text(make_notification(*alerts))
    lines = text.split("\n")
    shown = sum(1 for line in lines if line.startswith("• "))
    assert len(text) <= 3000
    assert 0 < shown < 200
    assert lines[-1] == f"and {200 - shown} more alerts"


def test_long_texts_are_capped_to_slacks_limits(fake, bot):
    labels = {f"extra_{i:02d}": "v" * 1000 for i in range(8)}
    alert = make_alert(annotations={"summary": "s" * 2000, "description": "d" * 5000}, **labels)
    notification = make_notification(alert, group_labels={"strategy_id": "x" * 500})
    blocks = build_blocks(notification)

    assert len(blocks[0]["text"]["text"]) == 150
    section = blocks[1]
    text = section["text"]["text"]
    assert len(text) == 3000
    assert text.startswith(":red_circle: *" + "s" * 299 + "…*\n" + "d" * 100)
    assert "…\n_started 2024-03-01 14:30:00 UTC_" in text  # the description gave way, the times stayed
    assert len(section["fields"]) == 10
    assert section["fields"][-1]["text"] == "_and 5 more labels_"  # 14 labels, 9 shown
    assert all(len(f["text"]) <= 2000 for f in section["fields"])
    assert len(build_text(notification)) <= 3000
    bot.send(notification)
    assert len(fake.messages()) == 1


def test_mention_only_for_critical_firing():
    mention = "<!subteam^S0ONCALL>"
    critical = make_notification(make_alert(severity="critical"))
    warning = make_notification(make_alert(severity="warning"))
    resolved = make_notification(make_alert(severity="critical", resolved=True))

    assert build_text(critical, mention=mention).startswith(f"{mention} :red_circle: CRITICAL")
    assert build_blocks(critical, mention=mention)[1] == {"type": "section", "text": {"type": "mrkdwn", "text": mention}}
    for quiet in (warning, resolved):
        assert mention not in build_text(quiet, mention=mention)
        assert mention not in _texts(build_blocks(quiet, mention=mention))


def test_the_receiver_prepends_its_mention(fake):
    receiver = SlackReceiver("slack-webhook", webhook_url=SecretStr(fake.webhook_url), mention="<!here>")
    receiver.send(make_notification())
    assert fake.messages()[0].json["text"].startswith("<!here> :red_circle: CRITICAL")


def test_text_from_alerts_is_escaped_for_mrkdwn():
    alert = make_alert(annotations={"summary": "spread <5bps> & widening", "runbook_url": "https://r.example/a|b>c"})
    text = _texts(build_blocks(make_notification(alert)))
    assert "spread &lt;5bps&gt; &amp; widening" in text
    assert "<https://r.example/a%7Cb%3Ec|Runbook>" in text


# ---------------------------------------------------------------------- secrets


def test_webhook_url_and_token_never_leak(fake, caplog):
    caplog.set_level(logging.DEBUG)  # slack_sdk's own debug lines would print the webhook URL
    webhook = SlackReceiver("slack-webhook", webhook_url=SecretStr(fake.webhook_url))
    bot = SlackReceiver("slack-bot", bot_token=SecretStr(fake.bot_token), channel="alerts", base_url=fake.api_base_url)
    refused_url = closed_port_url() + fake.webhook_path
    refused_token = "xoxb-9999-refused-" + fake.bot_token[-8:]
    refused = [
        SlackReceiver("refused-webhook", webhook_url=SecretStr(refused_url)),
        SlackReceiver("refused-bot", bot_token=SecretStr(refused_token), channel="alerts",
                      base_url=closed_port_url() + "/api/"),
    ]
    failures: list[Exception] = []
    with structlog.testing.capture_logs() as structured:
        for receiver in (webhook, bot):
            receiver.send(make_notification())
            for status in (400, 404, 429, 500):
                fake.fail_next(status, retry_after=1)
                try:
                    receiver.send(make_notification())
                except Exception as exc:  # noqa: BLE001 - every failure's text is checked below
                    failures.append(exc)
        for receiver in refused:
            try:
                receiver.send(make_notification())
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)
    assert len(failures) == 10
    texts = [str(e) for e in failures] + [repr(e) for e in failures]
    texts += [repr(r) for r in (webhook, bot, *refused)] + [str(entry) for entry in structured] + [caplog.text]
    secret_path = fake.webhook_path.rsplit("/", 1)[-1]
    for text in texts:
        for secret in (fake.webhook_url, refused_url, secret_path, fake.bot_token, refused_token):
            assert secret not in text
    assert "SecretStr('**********')" in repr(webhook) and "SecretStr('**********')" in repr(bot)
