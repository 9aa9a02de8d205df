"""Slack receiver: one Block Kit message per notification, by incoming webhook or bot token.

Webhook mode posts with ``slack_sdk.webhook.WebhookClient`` (the webhook is bound to its
channel); bot mode calls ``chat.postMessage`` with ``slack_sdk.WebClient`` to a named channel.
Both clients get ``retry_handlers=[]`` so each send is one HTTP attempt: the Celery task retries
with backoff. Failures are sorted for that task: connection errors, timeouts, 5xx and 429 (with
its Retry-After) are transient; a rejected payload, a bad token or an unknown or archived
channel is permanent.

Slack takes about one message per second per channel; with a ``ChannelPacer`` the receiver waits
for its turn before posting instead of drawing a 429.

The webhook URL and the bot token are secrets: no message, repr or log line of this module
contains them, and slack_sdk's own logger is kept above DEBUG (its debug lines print the
webhook URL) with a filter that redacts them from anything it still logs.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

import structlog
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.webhook import WebhookClient

from tradewatch.alerting.model import IDENTITY_LABELS, Alert, AlertStatus, Severity
from tradewatch.alerting.notification import Notification
from tradewatch.alerting.receivers.base import DeliveryReceipt, PermanentDeliveryError, TransientDeliveryError
from tradewatch.alerting.receivers.pacing import ChannelPacer, parse_retry_after

DEFAULT_API_BASE_URL = "https://slack.com/api/"

SEVERITY_MARKERS = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
}
RESOLVED_MARKER = ":white_check_mark:"

# Block Kit limits (Slack reference, "Blocks" and "Composition objects").
BLOCKS_MAX = 50
HEADER_TEXT_MAX_CHARS = 150
SECTION_TEXT_MAX_CHARS = 3000
SECTION_FIELDS_MAX = 10
FIELD_TEXT_MAX_CHARS = 2000
#: An alert's summary is one line; longer ones are cut so the description and times still fit.
ALERT_SUMMARY_MAX_CHARS = 300
CONTEXT_ELEMENTS_MAX = 10
#: The plain ``text`` fallback (notifications, screen readers); Slack truncates text past 40,000
#: characters, and a notification preview needs far less.
FALLBACK_TEXT_MAX_CHARS = 3000
FALLBACK_LINE_MAX_CHARS = 500
#: How much of a service's error body goes into an exception message.
ERROR_TEXT_MAX_CHARS = 300

#: chat.postMessage errors worth retrying (Slack's "errors" list: server-side trouble).
TRANSIENT_API_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)


def _log():
    # Looked up per call: a logger cached at import would miss a later structlog.configure.
    return structlog.get_logger(__name__)


# ---------------------------------------------------------------------- message content


def build_blocks(notification: Notification, *, mention: str | None = None) -> list[dict[str, Any]]:
    """The Block Kit message for ``notification``, within Slack's limits.

    A header with the severity marker (``:red_circle: CRITICAL``, ``:large_orange_circle:
    WARNING``, ``:large_blue_circle: INFO``) or ``:white_check_mark: RESOLVED``; ``mention`` as its
    own section for a critical firing notification; then per alert (firing first, most severe
    first) a section with its marker, summary, description and times, its labels as fields, and
    a context block with its links and runbook. Alerts that do not fit in 50 blocks are counted
    in a final "and N more alerts" context block.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_cap(f"{_headline(notification)}: {notification.title}", HEADER_TEXT_MAX_CHARS))}
    ]
    if mention and _pages(notification):
        blocks.append({"type": "section", "text": _mrkdwn(_cap(mention, SECTION_TEXT_MAX_CHARS))})

    alerts = _ordered(notification.alerts)
    for index, alert in enumerate(alerts):
        alert_blocks = _alert_blocks(alert)
        more_after_this = index < len(alerts) - 1
        room = BLOCKS_MAX - 1 if more_after_this else BLOCKS_MAX  # keep one block for the note
        if len(blocks) + len(alert_blocks) > room:
            omitted = len(alerts) - index
            blocks.append({"type": "context", "elements": [_mrkdwn(f"_and {omitted} more {_plural(omitted, 'alert')}_")]})
            break
        blocks.extend(alert_blocks)
    return blocks


def build_text(notification: Notification, *, mention: str | None = None) -> str:
    """The plain-text fallback: mention (critical firing only), the headline and title, then one
    line per alert, cut at ``FALLBACK_TEXT_MAX_CHARS`` with "and N more alerts"."""
    head = _cap(f"{_headline(notification)}: {_escape(notification.title)}", FALLBACK_LINE_MAX_CHARS)
    if mention and _pages(notification):
        head = f"{mention} {head}"
    lines = [head]
    alerts = _ordered(notification.alerts)
    used = len(head)
    note_room = 40  # enough for "and 1000000 more alerts" after the last line that fits
    for index, alert in enumerate(alerts):
        line = _cap(f"• {_alert_marker(alert)} {_escape(alert.summary)}", FALLBACK_LINE_MAX_CHARS)
        if used + 1 + len(line) > FALLBACK_TEXT_MAX_CHARS - note_room:
            omitted = len(alerts) - index
            lines.append(f"and {omitted} more {_plural(omitted, 'alert')}")
            break
        lines.append(line)
        used += 1 + len(line)
    return _cap("\n".join(lines), FALLBACK_TEXT_MAX_CHARS)


def _headline(notification: Notification) -> str:
    if notification.status is AlertStatus.RESOLVED:
        return f"{RESOLVED_MARKER} RESOLVED"
    severity = _highest_severity(notification.firing)
    return f"{SEVERITY_MARKERS[severity]} {severity.value.upper()}"


def _pages(notification: Notification) -> bool:
    """Critical and firing: the only case that mentions someone."""
    return notification.status is AlertStatus.FIRING and _highest_severity(notification.firing) is Severity.CRITICAL


def _alert_blocks(alert: Alert) -> list[dict[str, Any]]:
    head = f"{_alert_marker(alert)} *{_escape(_cap(alert.summary, ALERT_SUMMARY_MAX_CHARS))}*"
    times = f"started {_when(alert.starts_at)}"
    if alert.ends_at is not None:
        times += f", resolved {_when(alert.ends_at)}"
    times = f"_{times}_"
    lines = [head]
    description = alert.annotations.get("description")
    if description:
        # The description gives way, so the times always show: 2 newlines join the 3 lines.
        room = SECTION_TEXT_MAX_CHARS - len(head) - len(times) - 2
        lines.append(_cap(_escape(description), room))
    lines.append(times)
    section: dict[str, Any] = {"type": "section", "text": _mrkdwn("\n".join(lines))}
    fields = _label_fields(alert.labels)
    if fields:
        section["fields"] = fields
    blocks = [section]
    links = _links(alert)
    if links:
        elements = [_mrkdwn(_cap(f"<{_href(href)}|{_escape(text)}>", SECTION_TEXT_MAX_CHARS)) for href, text in links]
        if len(elements) > CONTEXT_ELEMENTS_MAX:
            extra = len(elements) - (CONTEXT_ELEMENTS_MAX - 1)
            elements = elements[: CONTEXT_ELEMENTS_MAX - 1] + [_mrkdwn(f"and {extra} more {_plural(extra, 'link')}")]
        blocks.append({"type": "context", "elements": elements})
    return blocks


def _label_fields(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    # Identity labels first, in their usual order, then the rest alphabetically.
    names = [name for name in IDENTITY_LABELS if name in labels]
    names += sorted(name for name in labels if name not in IDENTITY_LABELS)
    fields = [_mrkdwn(_cap(f"*{name}*\n{_escape(labels[name])}", FIELD_TEXT_MAX_CHARS)) for name in names]
    if len(fields) > SECTION_FIELDS_MAX:
        extra = len(fields) - (SECTION_FIELDS_MAX - 1)
        fields = fields[: SECTION_FIELDS_MAX - 1] + [_mrkdwn(f"_and {extra} more {_plural(extra, 'label')}_")]
    return fields


def _links(alert: Alert) -> list[tuple[str, str]]:
    """The alert's links then its runbook_url, the first of each href kept."""
    candidates = [(link.href, link.text or link.href) for link in alert.links]
    runbook = alert.annotations.get("runbook_url")
    if runbook:
        candidates.append((runbook, "Runbook"))
    seen: set[str] = set()
    links = []
    for href, text in candidates:
        if href not in seen:
            seen.add(href)
            links.append((href, text))
    return links


def _ordered(alerts: tuple[Alert, ...]) -> list[Alert]:
    rank = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(alerts, key=lambda a: (a.status is not AlertStatus.FIRING, rank[a.severity], a.starts_at))


def _alert_marker(alert: Alert) -> str:
    return RESOLVED_MARKER if alert.status is AlertStatus.RESOLVED else SEVERITY_MARKERS[alert.severity]


def _highest_severity(alerts: tuple[Alert, ...]) -> Severity:
    order = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
    return min((alert.severity for alert in alerts), key=order.index, default=Severity.INFO)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _escape(text: str) -> str:
    """Slack mrkdwn control characters: &, < and > must be sent as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _href(url: str) -> str:
    # Inside <url|text>, '|' and '>' would end the URL early; percent-encode them (and '<').
    return url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


# ---------------------------------------------------------------------- the receiver


class SlackReceiver:
    """Posts notifications to one Slack channel.

    Give exactly one of ``webhook_url`` (an incoming webhook, bound to its channel) or
    ``bot_token`` with ``channel`` (chat.postMessage). ``mention`` (Slack mrkdwn, e.g.
    ``<!here>`` or ``<@U0123ABC>``) is prepended to critical firing notifications. ``base_url``
    is the Web API base for bot mode (default ``https://slack.com/api/``; a webhook posts to its
    own URL and ignores it). ``timeout_seconds``
    bounds each HTTP request. With a ``pacer``, each post first waits for ``pacer.wait(channel_key)``,
    where ``channel_key`` is the channel name without its ``#`` (in webhook mode ``channel`` is
    optional and only names the webhook's channel for pacing), else a hash of the webhook URL
    (never the URL itself). A pacer may raise TransientDeliveryError to defer a long wait.
    """

    kind = "slack"

    def __init__(
        self,
        name: str,
        *,
        webhook_url: SecretStr | None = None,
        bot_token: SecretStr | None = None,
        channel: str | None = None,
        mention: str | None = None,
        base_url: str | None = None,
        timeout_seconds: float = 5.0,
        pacer: ChannelPacer | None = None,
    ) -> None:
        _check_config(name, webhook_url, bot_token, channel, timeout_seconds)
        self.name = name
        self.channel = channel
        self.mention = mention
        self.timeout_seconds = float(timeout_seconds)
        self.pacer = pacer
        self._webhook_url = webhook_url
        self._bot_token = bot_token
        secrets = [s.get_secret_value() for s in (webhook_url, bot_token) if s is not None]
        sdk_logger = _sdk_logger(name, secrets)
        self._webhook: WebhookClient | None = None
        self._web: WebClient | None = None
        if webhook_url is not None:
            self.mode = "webhook"
            self.base_url = None
            self._webhook = WebhookClient(
                webhook_url.get_secret_value(),
                timeout=self.timeout_seconds,
                logger=sdk_logger,
                retry_handlers=[],  # one attempt per send; our task retries
            )
            digest = hashlib.sha256(webhook_url.get_secret_value().encode()).hexdigest()[:16]
            self.channel_key = _channel_key(channel) if channel else f"webhook-{digest}"
        else:
            assert bot_token is not None and channel is not None  # _check_config guarantees it
            self.mode = "bot"
            self.base_url = base_url or DEFAULT_API_BASE_URL
            self._web = WebClient(
                token=bot_token.get_secret_value(),
                base_url=self.base_url,
                timeout=self.timeout_seconds,
                logger=sdk_logger,
                retry_handlers=[],  # one attempt per send; our task retries
            )
            self.channel_key = _channel_key(channel)

    def send(self, notification: Notification) -> DeliveryReceipt:
        """Post ``notification`` once; the receipt's reference is the message ts in bot mode."""
        blocks = build_blocks(notification, mention=self.mention)
        text = build_text(notification, mention=self.mention)
        if self.pacer is not None:
            self.pacer.wait(self.channel_key)
        if self._webhook is not None:
            receipt = self._send_webhook(text, blocks)
        else:
            receipt = self._post_message(text, blocks)
        _log().debug("alert.delivery", receiver=self.name, kind=self.kind, mode=self.mode, status=receipt.status,
                   reference=receipt.reference, group_key=notification.group_key)
        return receipt

    # ------------------------------------------------------------------ webhook mode

    def _send_webhook(self, text: str, blocks: list[dict[str, Any]]) -> DeliveryReceipt:
        assert self._webhook is not None
        try:
            response = self._webhook.send(text=text, blocks=blocks)
        except SlackRequestError:
            # Its message quotes the URL; say what is wrong without it.
            raise self._permanent("the webhook URL was refused by slack_sdk (not an http(s) URL)") from None
        except (OSError, HTTPException) as exc:  # URLError, timeouts, resets
            raise self._network_error(exc) from None
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryReceipt(receiver=self.name, status=status)
        error = self._redact(_cap(" ".join(str(response.body or "").split()), ERROR_TEXT_MAX_CHARS)) or "no body"
        headers = response.headers or {}
        if status == 429 or status >= 500:
            raise self._transient(f"webhook answered {status} {error}", status, _retry_after(headers))
        raise self._permanent(f"webhook answered {status} {error}", status)

    # ------------------------------------------------------------------ bot mode

    def _post_message(self, text: str, blocks: list[dict[str, Any]]) -> DeliveryReceipt:
        assert self._web is not None
        try:
            response = self._web.chat_postMessage(channel=self.channel, text=text, blocks=blocks)
        except SlackApiError as exc:
            raise self._api_error(exc) from None
        except SlackRequestError:
            raise self._permanent("slack_sdk refused the request (check base_url)") from None
        except (OSError, HTTPException) as exc:
            raise self._network_error(exc) from None
        except SlackClientError as exc:
            raise self._permanent(f"slack_sdk error {type(exc).__name__}") from None
        return DeliveryReceipt(receiver=self.name, status=response.status_code, reference=response.get("ts"))

    def _api_error(self, exc: SlackApiError) -> Exception:
        response = exc.response
        status = getattr(response, "status_code", None)
        data = response.data if isinstance(getattr(response, "data", None), dict) else {}
        error = str(data.get("error") or "unknown_error")
        detail = error
        messages = (data.get("response_metadata") or {}).get("messages")
        if isinstance(messages, list) and messages:
            detail += " (" + "; ".join(str(m) for m in messages) + ")"
        detail = self._redact(_cap(detail, ERROR_TEXT_MAX_CHARS))
        what = f"chat.postMessage to {self.channel} answered {status} {detail}"
        if status == 429 or error in TRANSIENT_API_ERRORS or (status is not None and status >= 500):
            return self._transient(what, status, _retry_after(getattr(response, "headers", None) or {}))
        return self._permanent(what, status)

    # ------------------------------------------------------------------ errors

    def _transient(self, what: str, status: int | None, retry_after: float | None) -> TransientDeliveryError:
        hint = f" (retry after {retry_after:g} seconds)" if retry_after is not None else ""
        _log().debug("alert.delivery_failed", receiver=self.name, kind=self.kind, status=status, transient=True)
        return TransientDeliveryError(f"Slack receiver {self.name!r}: {what}{hint}", status=status, retry_after=retry_after)

    def _permanent(self, what: str, status: int | None = None) -> PermanentDeliveryError:
        _log().debug("alert.delivery_failed", receiver=self.name, kind=self.kind, status=status, transient=False)
        return PermanentDeliveryError(f"Slack receiver {self.name!r}: {what}", status=status)

    def _network_error(self, exc: BaseException) -> TransientDeliveryError:
        reason = getattr(exc, "reason", None) or exc  # URLError wraps the socket error in .reason
        text = self._redact(str(reason)) or type(reason).__name__
        return self._transient(f"not sent, {type(reason).__name__}: {text}", None, None)

    def _redact(self, text: str) -> str:
        return _redact_secrets(text, [s.get_secret_value() for s in (self._webhook_url, self._bot_token) if s])

    def close(self) -> None:
        """Nothing to release: slack_sdk's sync clients open a connection per request."""

    def __repr__(self) -> str:
        secret = "webhook_url" if self.mode == "webhook" else "bot_token"
        return f"SlackReceiver(name={self.name!r}, mode={self.mode!r}, channel={self.channel!r}, {secret}=SecretStr('**********'))"


# ---------------------------------------------------------------------- configuration


def _check_config(
    name: str,
    webhook_url: SecretStr | None,
    bot_token: SecretStr | None,
    channel: str | None,
    timeout_seconds: float,
) -> None:
    prefix = f"Slack receiver {name!r}:"
    for field, value in (("webhook_url", webhook_url), ("bot_token", bot_token)):
        if value is not None and not isinstance(value, SecretStr):
            raise TypeError(f"{prefix} {field} must be a pydantic SecretStr")
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(f"{prefix} {field} is empty")
    if webhook_url is None and bot_token is None:
        raise ValueError(f"{prefix} webhook_url or bot_token is missing; give exactly one of them")
    if webhook_url is not None and bot_token is not None:
        raise ValueError(f"{prefix} both webhook_url and bot_token are set; give exactly one of them")
    if bot_token is not None and not channel:
        raise ValueError(f"{prefix} channel is missing; bot_token mode posts to a channel (name or id)")
    if webhook_url is not None:
        if urlsplit(webhook_url.get_secret_value()).scheme not in ("http", "https"):
            # The value itself stays out of the message: it is the secret.
            raise ValueError(f"{prefix} webhook_url must be an https:// (or http://) URL")
    if not timeout_seconds > 0:
        raise ValueError(f"{prefix} timeout_seconds must be > 0; got {timeout_seconds!r}")


def _channel_key(channel: str) -> str:
    # "#trading-alerts" and "trading-alerts" are one channel, so one pace.
    return channel.lstrip("#")


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            return parse_retry_after(None if value is None else str(value))
    return None


# ---------------------------------------------------------------------- slack_sdk's logging

# Webhook URLs (any host: a proxy or a test double may stand in for hooks.slack.com) and tokens.
_SECRET_PATTERNS = (
    re.compile(r"https?://\S*/(?:services|workflows|triggers)/\S+"),
    re.compile(r"xox[abposre]-[A-Za-z0-9-]+"),
)


def _redact_secrets(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("<redacted>", text)
    return text


class _RedactSecrets(logging.Filter):
    """Rewrites a record's message with the receiver's secrets and anything shaped like a webhook
    URL or a token replaced by ``<redacted>``."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _redact_secrets(message, self._secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _sdk_logger(name: str, secrets: list[str]) -> logging.Logger:
    """The logger handed to slack_sdk for this receiver.

    slack_sdk writes its debug lines (which print the webhook URL and the request body) whenever
    ``logger.level <= DEBUG``, and a fresh logger's level is NOTSET (0); so the level is INFO.
    What it still logs (connection failures) goes through the redacting filter.
    """
    logger = logging.getLogger(f"{__name__}.sdk.{name}")
    logger.setLevel(logging.INFO)
    for old in [f for f in logger.filters if isinstance(f, _RedactSecrets)]:
        logger.removeFilter(old)  # a receiver rebuilt under the same name replaces the old filter
    logger.addFilter(_RedactSecrets(secrets))
    return logger


__all__ = [
    "DEFAULT_API_BASE_URL",
    "RESOLVED_MARKER",
    "SEVERITY_MARKERS",
    "SlackReceiver",
    "build_blocks",
    "build_text",
]
