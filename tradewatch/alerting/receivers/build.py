"""Build the configured receivers from the routing file and the secrets settings hold.

Secrets are passed in (tasks/settings.py is the one place that reads the environment). A
receiver whose secret is not set is not built: it is returned among ``missing`` with the reason,
so a notification routed to it fails over to the fallback receiver saying exactly what to set,
instead of vanishing.
"""

from __future__ import annotations

from pydantic import SecretStr

from tradewatch.alerting.config import AlertingConfig
from tradewatch.alerting.receivers.base import Receiver
from tradewatch.alerting.receivers.log import LogReceiver
from tradewatch.alerting.receivers.pacing import ChannelPacer
from tradewatch.alerting.receivers.pagerduty import PagerDutyReceiver
from tradewatch.alerting.receivers.slack import SlackReceiver


def build_receivers(
    config: AlertingConfig,
    *,
    pagerduty_routing_key: SecretStr | None,
    slack_webhook_url: SecretStr | None,
    slack_bot_token: SecretStr | None,
    pagerduty_url: str | None = None,
    slack_api_url: str | None = None,
    pacer: ChannelPacer | None = None,
) -> tuple[dict[str, Receiver], dict[str, str]]:
    """(receivers by name, reasons by name for the receivers that could not be built)."""
    built: dict[str, Receiver] = {}
    missing: dict[str, str] = {}
    for name, spec in config.receivers.items():
        if spec.pagerduty is not None:
            if pagerduty_routing_key is None or not pagerduty_routing_key.get_secret_value().strip():
                missing[name] = f"receiver {name!r} (pagerduty) has no routing key: set TRADEWATCH_PAGERDUTY_ROUTING_KEY"
                continue
            pd = spec.pagerduty
            built[name] = PagerDutyReceiver(
                name, pagerduty_routing_key, severity_map={str(k): v for k, v in pd.severity.items()},
                component=pd.component, group=pd.group, class_=pd.class_, base_url=pagerduty_url,
            )
        elif spec.slack is not None:
            if slack_webhook_url is not None:
                built[name] = SlackReceiver(name, webhook_url=slack_webhook_url, channel=spec.slack.channel,
                                            mention=spec.slack.mention, pacer=pacer)
            elif slack_bot_token is not None:
                if not spec.slack.channel:
                    missing[name] = f"receiver {name!r} (slack) posts with a bot token and needs `channel:` in the routing file"
                    continue
                built[name] = SlackReceiver(name, bot_token=slack_bot_token, channel=spec.slack.channel,
                                            mention=spec.slack.mention, base_url=slack_api_url, pacer=pacer)
            else:
                missing[name] = (f"receiver {name!r} (slack) has no credentials: set TRADEWATCH_SLACK_WEBHOOK_URL "
                                 "or TRADEWATCH_SLACK_BOT_TOKEN")
        else:
            built[name] = LogReceiver(name, level=spec.settings.level)
    return built, missing
