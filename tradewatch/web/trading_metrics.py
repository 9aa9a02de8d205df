"""Every metric the HTTP service exports (``EXPORTED_METRICS``) and the trading metrics read off
the latest dashboard snapshot.

``EXPORTED_METRICS`` is the one table of names, types, labels and help texts: the collectors
build their families from it, and the tests check that the Prometheus rules and Grafana
dashboards name only what is in it (``series_names`` gives the series PromQL can use: a counter
``x_total``, a histogram's ``x_bucket``, ``x_sum``, ``x_count``).

The trading metrics (``trading_*``) come from the snapshot the dashboard task writes to Redis
(``tradewatch.web.snapshots``), read again on each scrape: counters and histograms are sums since
the trail began, so they are monotonic across web restarts and whichever worker folded the events.
A number the snapshot leaves undefined (no account event yet: no portfolio value) is not
exported rather than exported as 0. With no snapshot at all, no ``trading_*`` series is exported
and ``tradewatch_metrics_source_up{source="snapshot"}`` is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricSpec:
    kind: Kind
    labels: tuple[str, ...]
    help: str


def _c(labels: tuple[str, ...], text: str) -> MetricSpec:
    return MetricSpec("counter", labels, text)


def _g(labels: tuple[str, ...], text: str) -> MetricSpec:
    return MetricSpec("gauge", labels, text)


def _h(text: str) -> MetricSpec:
    return MetricSpec("histogram", (), text)


#: name (as PromQL sees it: counters with ``_total``) -> type, labels, help.
EXPORTED_METRICS: dict[str, MetricSpec] = {
    # --- trading, from the dashboard snapshot -----------------------------------------------------
    "trading_orders_total": _c(("symbol", "side", "type", "status"),
                               "Order events (one per status change: submitted, accepted, rejected, cancelled, expired) "
                               "by symbol, side, order type and status, since the trail began."),
    "trading_signals_total": _c(("strategy", "direction"), "Signals by strategy and direction, since the trail began."),
    "trading_errors_total": _c(("error_type", "component"),
                               "System events of level error or critical (error_type is the level) by component, "
                               "since the trail began."),
    "trading_portfolio_value_usd": _g((), "Portfolio value: the sum over engines of the equity in their latest account event."),
    "trading_unrealized_pnl_usd": _g((), "Unrealized PnL of the open positions, marked at each symbol's last mid."),
    "trading_realized_pnl_usd": _g((), "Realized PnL: the sum of the positions' realized_pnl."),
    "trading_daily_pnl_usd": _g((), "PnL (realized + unrealized) since the start of the trading day (policy timezone)."),
    "trading_position_count": _g((), "Open positions (source, strategy, symbol with a non-zero quantity)."),
    "trading_drawdown_percent": _g((), "Drawdown from the running peak of the portfolio value, as a FRACTION: "
                                       "0.15 means 15% below the peak (the monitoring guide's convention)."),
    "trading_buying_power_usd": _g((), "Buying power: the sum over engines of their latest account event's buying_power."),
    "trading_gross_exposure_usd": _g((), "Gross exposure: the sum of |quantity x mark| over positions."),
    "trading_net_exposure_usd": _g((), "Net exposure: the sum of quantity x mark over positions."),
    "trading_broker_connection_status": _g(("source",),
                                           "1 while the engine's last broker/order-router system event is not an error "
                                           "and at most 60 s old, else 0."),
    "trading_order_latency_seconds": _h("Order acknowledgement latency: accepted or rejected minus submitted, "
                                        "engine clock, since the trail began."),
    "trading_signal_generation_seconds": _h("Time the engine took to produce a signal (its generation_seconds)."),
    "trading_slippage_basis_points": _h("Fill slippage against the arrival price (else the order's decision price), "
                                        "basis points, positive = cost."),
    "trading_risk_limit_used_percent": _g(("limit", "symbol"),
                                          "Percent (0-100, above 100 = breached) of a compliance policy limit in use; "
                                          "symbol is empty for account-wide limits."),
    "trading_instrument_position": _g(("symbol",), "Net position in the instrument over engines and strategies (quantity)."),
    "trading_instrument_notional_usd": _g(("symbol",), "Net notional of the instrument's positions (quantity x mark)."),
    "trading_instrument_unrealized_pnl_usd": _g(("symbol",), "Unrealized PnL of the instrument's positions."),
    # --- the pipeline ---------------------------------------------------------------------------
    "tradewatch_snapshot_age_seconds": _g((), "Seconds since the dashboard snapshot was written (wall clock of the "
                                              "writing worker and of this process)."),
    "tradewatch_snapshot_lag_seconds": _g((), "How far the snapshot is behind the trail: received_at of the newest event "
                                              "in the trail minus that of the newest event folded into the snapshot."),
    "tradewatch_snapshot_events_applied_total": _c((), "Events folded into the dashboard snapshot since the trail began."),
    "tradewatch_ingest_lag_seconds": _g((), "How far the trail is behind the engines: received_at minus occurred_at of "
                                            "the newest stored event; while ingest batches wait in the audit queue, at "
                                            "least the time since that event was stored. Never negative."),
    "tradewatch_queue_depth": _g(("queue",), "Messages waiting in the Celery queue (all priorities), not counting "
                                             "those a worker has taken."),
    "tradewatch_rejected_events_total": _c((), "Events refused at ingest (rows of rejected_events)."),
    "tradewatch_celery_workers": _g(("queue",), "Celery workers that answered a control ping consuming the queue "
                                                "(refreshed every few seconds)."),
    "tradewatch_metrics_source_up": _g(("source",), "1 when the source (snapshot, broker, database, workers, alerting) "
                                                    "was read for this scrape, 0 when it could not be (its series are "
                                                    "then missing)."),
    # --- the alert router (tradewatch.web.metrics) ------------------------------------------------
    "tradewatch_alert_notifications_total": _c(("receiver",), "Alert notifications decided, per receiver."),
    "tradewatch_alert_deliveries_total": _c(("receiver", "outcome"), "Alert notification deliveries, per receiver and outcome."),
    "tradewatch_alert_delivery_retries_total": _c(("receiver",), "Alert deliveries retried after a transient failure."),
    "tradewatch_alerts_suppressed_total": _c(("reason",), "Alerts left out of a notification, per reason."),
    # --- this process (prometheus_client's ProcessCollector) -------------------------------------
    "process_resident_memory_bytes": _g((), "Resident memory size in bytes."),
    "process_virtual_memory_bytes": _g((), "Virtual memory size in bytes."),
    "process_cpu_seconds_total": _c((), "Total user and system CPU time spent in seconds."),
    "process_open_fds": _g((), "Number of open file descriptors."),
    "process_max_fds": _g((), "Maximum number of open file descriptors."),
    "process_start_time_seconds": _g((), "Start time of the process since unix epoch in seconds."),
    # --- the host (psutil, tradewatch.web.system_metrics) -----------------------------------------
    "system_cpu_percent": _g((), "CPU use of the host in percent since the previous scrape (all cores)."),
    "system_memory_used_percent": _g((), "Memory of the host in use, percent."),
    "system_disk_used_percent": _g((), "Disk space in use on the filesystem of /, percent."),
}


def series_names() -> set[str]:
    """Every series name PromQL may use: metric names, and a histogram's _bucket, _sum, _count."""
    out: set[str] = set()
    for name, spec in EXPORTED_METRICS.items():
        out.add(name)
        if spec.kind == "histogram":
            out.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return out


def family(name: str) -> Metric:
    """An empty family of the exported metric ``name``, typed, labelled and documented from the table."""
    spec = EXPORTED_METRICS[name]
    labels = list(spec.labels)
    if spec.kind == "counter":
        return CounterMetricFamily(name, spec.help, labels=labels)
    if spec.kind == "gauge":
        return GaugeMetricFamily(name, spec.help, labels=labels)
    return HistogramMetricFamily(name, spec.help, labels=labels)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _gauge(name: str, value: Any) -> Iterator[Metric]:
    number = _number(value)
    if number is not None:
        metric = family(name)
        metric.add_metric([], number)
        yield metric


def _labelled_counts(name: str, rows: Any, width: int) -> Metric:
    metric = family(name)
    for row in rows or ():
        labels = row.get("labels") if isinstance(row, dict) else None
        count = _number(row.get("count")) if isinstance(row, dict) else None
        if isinstance(labels, list) and len(labels) == width and count is not None:
            metric.add_metric([str(label) for label in labels], count)
    return metric


def _histogram(name: str, body: Any) -> Iterator[Metric]:
    if not isinstance(body, dict) or not isinstance(body.get("buckets"), list):
        return
    buckets = []
    for le, cumulative in body["buckets"]:
        bound = math.inf if le == "+Inf" else float(le)
        buckets.append((floatToGoString(bound), float(cumulative)))
    if not buckets or buckets[-1][0] != "+Inf":
        return
    metric = family(name)
    total = _number(body.get("sum")) or 0.0
    metric.add_metric([], buckets, sum_value=total)
    if not any(sample.name.endswith("_count") for sample in metric.samples):
        # prometheus_client leaves _count and _sum out of a histogram with negative bounds (an
        # OpenMetrics rule); the text format Prometheus reads has them, and a dashboard rates
        # fills by the slippage histogram's _count. /metrics serves that text format only.
        metric.samples.append(Sample(f"{name}_count", {}, buckets[-1][1]))
        metric.samples.append(Sample(f"{name}_sum", {}, total))
    yield metric


def trading_families(snapshot: dict[str, Any]) -> Iterator[Metric]:
    """The ``trading_*`` families of one ``RealtimeDashboardSnapshot.to_dict()``."""
    yield _labelled_counts("trading_orders_total", snapshot.get("orders"), 4)
    yield _labelled_counts("trading_signals_total", snapshot.get("signals"), 2)
    yield _labelled_counts("trading_errors_total", snapshot.get("errors"), 2)
    for name, key in (
        ("trading_portfolio_value_usd", "portfolio_value"), ("trading_unrealized_pnl_usd", "unrealized_pnl"),
        ("trading_realized_pnl_usd", "realized_pnl"), ("trading_daily_pnl_usd", "daily_pnl"),
        ("trading_position_count", "position_count"), ("trading_drawdown_percent", "drawdown"),
        ("trading_buying_power_usd", "buying_power"), ("trading_gross_exposure_usd", "gross_exposure"),
        ("trading_net_exposure_usd", "net_exposure"),
    ):
        yield from _gauge(name, snapshot.get(key))

    broker = family("trading_broker_connection_status")
    for source, connected in sorted((snapshot.get("broker_connected") or {}).items()):
        if _number(connected) is not None:
            broker.add_metric([source], float(connected))
    yield broker

    yield from _histogram("trading_order_latency_seconds", snapshot.get("order_latency_histogram"))
    yield from _histogram("trading_signal_generation_seconds", snapshot.get("signal_latency_histogram"))
    yield from _histogram("trading_slippage_basis_points", snapshot.get("slippage_histogram"))

    limits = family("trading_risk_limit_used_percent")
    for row in snapshot.get("risk_limits") or ():
        percent = _number(row.get("percent")) if isinstance(row, dict) else None
        if percent is not None:
            limits.add_metric([str(row.get("limit", "")), str(row.get("symbol") or "")], percent)
    yield limits

    position = family("trading_instrument_position")
    notional = family("trading_instrument_notional_usd")
    unrealized = family("trading_instrument_unrealized_pnl_usd")
    for symbol, row in sorted((snapshot.get("instruments") or {}).items()):
        if not isinstance(row, dict):
            continue
        for metric, key in ((position, "position"), (notional, "notional"), (unrealized, "unrealized_pnl")):
            value = _number(row.get(key))
            if value is not None:
                metric.add_metric([symbol], value)
    yield from (position, notional, unrealized)


# --- the same families as exposition text ------------------------------------------------------
#
# ``trading_text`` writes what ``generate_latest`` makes of ``trading_families`` (Prometheus text
# format 0.0.4), with plain string building: a scrape of 100 instruments has ~1,700 trading
# samples, and building prometheus_client Metric and Sample objects for them, then formatting
# those, was most of the scrape's CPU. The two must stay equal: tests/web/test_trading_text.py
# compares them on the same snapshots, byte for byte.


def _header(name: str) -> str:
    spec = EXPORTED_METRICS[name]
    text = spec.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {text}\n# TYPE {name} {spec.kind}\n"


_HEADERS: dict[str, str] = {name: _header(name) for name in EXPORTED_METRICS if name.startswith("trading_")}


def _escape(value: str) -> str:
    """A label value as the text format quotes it (backslash, newline and double quote escaped)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def _needs_escape(text: str) -> bool:
    return "\\" in text or "\n" in text or '"' in text


def _go(value: float) -> str:
    """``floatToGoString`` of a finite float (what ``_number`` returns), without its checks for
    infinities and NaN."""
    text = repr(value)
    if value > 0:
        dot = text.find(".")
        if dot > 6:  # Go switches to exponents sooner than Python
            mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
            return f"{mantissa}e+{dot - 1:02d}"
    return text


def _template(name: str) -> str:
    """``str.format`` template of one sample line of a labelled family: label values by their
    position in the table, printed sorted by label name (as generate_latest does), then the value."""
    names = EXPORTED_METRICS[name].labels
    pairs = ",".join(f'{names[j]}="{{{j}}}"' for j in sorted(range(len(names)), key=names.__getitem__))
    return f"{name}{{{{{pairs}}}}} {{{len(names)}}}\n"


_TEMPLATES: dict[str, str] = {name: _template(name) for name, spec in EXPORTED_METRICS.items()
                              if name.startswith("trading_") and spec.labels}


def _labelled_lines(name: str, rows: list[tuple[list[str], float]]) -> list[str]:
    """Header and sample lines of a labelled family (values finite floats)."""
    template = _TEMPLATES[name].format
    out = [_HEADERS[name]]
    for labels, value in rows:
        if _needs_escape("".join(labels)):
            labels = [_escape(label) for label in labels]
        out.append(template(*labels, _go(value)))
    return out


def _counts_rows(rows: Any, width: int) -> list[tuple[list[str], float]]:
    out = []
    for row in rows or ():
        if not isinstance(row, dict):
            continue
        labels = row.get("labels")
        count = _number(row.get("count"))
        if isinstance(labels, list) and len(labels) == width and count is not None:
            out.append(([str(label) for label in labels], count))
    return out


def _histogram_lines(name: str, body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("buckets"), list):
        return []
    buckets = []
    for le, cumulative in body["buckets"]:
        bound = math.inf if le == "+Inf" else float(le)
        buckets.append((floatToGoString(bound), float(cumulative)))
    if not buckets or buckets[-1][0] != "+Inf":
        return []
    total = _number(body.get("sum")) or 0.0
    out = [_HEADERS[name]]
    out.extend(f'{name}_bucket{{le="{le}"}} {floatToGoString(count)}\n' for le, count in buckets)
    # _count and _sum even with negative bounds (see _histogram).
    out.append(f"{name}_count {floatToGoString(buckets[-1][1])}\n")
    out.append(f"{name}_sum {floatToGoString(total)}\n")
    return out


def trading_text(snapshot: dict[str, Any]) -> bytes:
    """The ``trading_*`` families of one snapshot as Prometheus text (format 0.0.4): exactly what
    ``generate_latest`` writes for ``trading_families(snapshot)``, built without Metric objects."""
    out: list[str] = []
    out += _labelled_lines("trading_orders_total", _counts_rows(snapshot.get("orders"), 4))
    out += _labelled_lines("trading_signals_total", _counts_rows(snapshot.get("signals"), 2))
    out += _labelled_lines("trading_errors_total", _counts_rows(snapshot.get("errors"), 2))
    for name, key in (
        ("trading_portfolio_value_usd", "portfolio_value"), ("trading_unrealized_pnl_usd", "unrealized_pnl"),
        ("trading_realized_pnl_usd", "realized_pnl"), ("trading_daily_pnl_usd", "daily_pnl"),
        ("trading_position_count", "position_count"), ("trading_drawdown_percent", "drawdown"),
        ("trading_buying_power_usd", "buying_power"), ("trading_gross_exposure_usd", "gross_exposure"),
        ("trading_net_exposure_usd", "net_exposure"),
    ):
        number = _number(snapshot.get(key))
        if number is not None:
            out.append(f"{_HEADERS[name]}{name} {_go(number)}\n")

    broker = [([source], float(connected)) for source, connected in sorted((snapshot.get("broker_connected") or {}).items())
              if _number(connected) is not None]
    out += _labelled_lines("trading_broker_connection_status", broker)

    out += _histogram_lines("trading_order_latency_seconds", snapshot.get("order_latency_histogram"))
    out += _histogram_lines("trading_signal_generation_seconds", snapshot.get("signal_latency_histogram"))
    out += _histogram_lines("trading_slippage_basis_points", snapshot.get("slippage_histogram"))

    limits = []
    for row in snapshot.get("risk_limits") or ():
        percent = _number(row.get("percent")) if isinstance(row, dict) else None
        if percent is not None:
            limits.append(([str(row.get("limit", "")), str(row.get("symbol") or "")], percent))
    out += _labelled_lines("trading_risk_limit_used_percent", limits)

    per_instrument: dict[str, list[tuple[list[str], float]]] = {"position": [], "notional": [], "unrealized_pnl": []}
    for symbol, row in sorted((snapshot.get("instruments") or {}).items()):
        if not isinstance(row, dict):
            continue
        for key, rows in per_instrument.items():
            value = _number(row.get(key))
            if value is not None:
                rows.append(([symbol], value))
    out += _labelled_lines("trading_instrument_position", per_instrument["position"])
    out += _labelled_lines("trading_instrument_notional_usd", per_instrument["notional"])
    out += _labelled_lines("trading_instrument_unrealized_pnl_usd", per_instrument["unrealized_pnl"])
    return "".join(out).encode("utf-8")


__all__ = ["EXPORTED_METRICS", "MetricSpec", "family", "series_names", "trading_families", "trading_text"]
