"""``RealtimeDashboardAggregator``: the desk's live picture, built incrementally from events.

Pure. ``apply(events, state)`` folds events (validated ``EventBase`` models, as the trail's
``follow(cursor)`` returns them, in that order) into a ``DashboardState``; ``apply_records``
does the same with ``DashboardEvent`` records (``events``: the fields read here, built straight
from SQL by ``storage.dashboard``; ``apply`` converts models with ``from_model``); ``snapshot(state,
now_ns)`` reads a ``RealtimeDashboardSnapshot`` off it. Nothing rescans history: each event
costs O(1) (O(log buckets) for a histogram), and the state is bounded (latest values, windows of
fixed size, open orders pruned after ``order_ttl_seconds``). The caller persists the state with
its cursor, so a restart continues and a redelivered batch (the cursor already past it) changes
nothing.

What each number is (money in the account currency, times UTC):

- portfolio value, cash, buying power: sums over engines (``source``) of their latest
  ``account`` event (the engine's own view of its account).
- positions: the latest ``position_update`` per (source, strategy, symbol): quantity (signed),
  average price; marked at the symbol's last mid (``(bid + ask) / 2`` of the last
  ``market_data``, else its last price, else the update's ``market_price``).
  notional = quantity x mark; gross exposure = sum |notional|; net exposure = sum notional.
- realized PnL: sum of the positions' ``realized_pnl``; unrealized = sum quantity x (mark -
  average price) (the update's ``unrealized_pnl`` when it has no average price).
- daily PnL: (realized + unrealized) now - (realized + unrealized) at the start of the trading
  day (the date in the policy's timezone; the value carried over from the last event before).
- drawdown: 1 - portfolio value / its running peak (a fraction, 0.15 = 15%); maximum drawdown
  the largest seen. Rolling Sharpe: mean / std (ddof 1) of the portfolio value's one-minute
  returns over the last ``sharpe_window_minutes``, x sqrt(``periods_per_year``) (empyrical's
  convention, risk-free 0); None with fewer than 2 returns or no variation.
- hit rate and profit factor: each change of a position's ``realized_pnl`` is one closed piece
  of a trade; hit rate = winning pieces / pieces, profit factor = sum of gains / |sum of
  losses| (None when undefined).
- orders by status: ``order`` events counted by (symbol, side, type, status); rejection rate =
  rejected / (accepted + rejected).
- slippage, bps, per fill: s x (price - arrival) / arrival x 1e4, s = +1 buy, -1 sell; arrival =
  the fill's arrival price, else its order's decision price (positive = cost).
- latencies, seconds: signal generation (the signal's ``generation_seconds``), order to
  acknowledgement (accepted or rejected - submitted), order to fill (first fill - submitted).
  Percentiles p50/p95/p99 over the last ``window_size`` values; histograms since the start.
- risk-limit consumption, percent of the compliance policy's limits in use (the policy is the one
  place limits live): gross and net exposure, daily loss and drawdown (``account_limits``),
  per-instrument position (``max_position``: the largest share used by any strategy, of notional
  or quantity) and the day's ordered notional (``notional_limits.per_instrument_per_day``).
- broker connection, per source: 1 while its last system event from a broker component
  (``broker_components``) is not an error and at most ``broker_timeout_seconds`` old.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tradewatch.domain.compliance.notional import order_price
from tradewatch.domain.compliance.policy import CompliancePolicy
from tradewatch.domain.compliance.trading_day import TradingDay
from tradewatch.domain.dashboard.distributions import Histogram, Window
from tradewatch.domain.dashboard.events import DashboardEvent, from_model
from tradewatch.domain.dashboard.snapshot import (
    InstrumentMetrics,
    RealtimeDashboardSnapshot,
)
from tradewatch.domain.events.models import EventBase

NS = 1_000_000_000
_SEP = "\x1f"
STATE_VERSION = 1
#: Prometheus bucket bounds (the monitoring guide's).
ORDER_LATENCY_BOUNDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SIGNAL_LATENCY_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)
SLIPPAGE_BOUNDS = (-10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


@dataclass(frozen=True)
class DashboardConfig:
    window_size: int = 2_000
    """Latest values the percentiles are read from, per distribution."""
    sharpe_window_minutes: int = 60
    periods_per_year: float = 252 * 390
    """One-minute periods in a year (252 trading days of 6.5 hours)."""
    order_ttl_seconds: float = 3_600.0
    """An order not acknowledged or filled this long after submission is forgotten."""
    broker_components: tuple[str, ...] = ("order-router", "broker")
    broker_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.window_size < 10:
            raise ValueError(f"window_size {self.window_size}: accepted at least 10")
        if self.sharpe_window_minutes < 2:
            raise ValueError(f"sharpe_window_minutes {self.sharpe_window_minutes}: accepted at least 2")


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


@dataclass
class DashboardState:
    """Everything the aggregator keeps (module docstring); ``to_dict``/``from_dict`` for storage."""

    accounts: dict[str, list] = field(default_factory=dict)  # source -> [equity, cash, buying_power]
    positions: dict[str, list] = field(default_factory=dict)  # source SEP strategy SEP symbol -> [qty, avg, realized, unrealized, market]
    marks: dict[str, float] = field(default_factory=dict)  # symbol -> last mid
    orders: dict[str, int] = field(default_factory=dict)  # symbol SEP side SEP type SEP status -> count
    signals: dict[str, int] = field(default_factory=dict)  # strategy SEP direction -> count
    errors: dict[str, int] = field(default_factory=dict)  # error_type SEP component -> count
    open_orders: dict[str, list] = field(default_factory=dict)  # order_id -> [submitted_ns, side, decision_price, acked, filled]
    broker: dict[str, list] = field(default_factory=dict)  # source -> [last_ns, ok]
    instruments: dict[str, list] = field(default_factory=dict)  # symbol -> [orders, fills, volume, traded_notional, slip_sum, slip_n]
    day_notional: dict[str, float] = field(default_factory=dict)  # symbol -> notional ordered today
    trades: list = field(default_factory=lambda: [0, 0, 0.0, 0.0])  # wins, losses, gains, losses_abs
    peak_value: float | None = None
    max_drawdown: float = 0.0
    minute: int | None = None  # minute index of the last portfolio sample
    minute_values: list = field(default_factory=list)  # portfolio value at the end of recent minutes
    day: str | None = None
    day_start_pnl: float = 0.0
    last_event_ns: int | None = None
    events: int = 0
    order_latency: Histogram = field(default_factory=lambda: Histogram(ORDER_LATENCY_BOUNDS))
    fill_latency: Histogram = field(default_factory=lambda: Histogram(ORDER_LATENCY_BOUNDS))
    signal_latency: Histogram = field(default_factory=lambda: Histogram(SIGNAL_LATENCY_BOUNDS))
    slippage: Histogram = field(default_factory=lambda: Histogram(SLIPPAGE_BOUNDS))
    order_latency_window: Window | None = None
    fill_latency_window: Window | None = None
    signal_latency_window: Window | None = None
    slippage_window: Window | None = None

    _HISTOGRAMS = ("order_latency", "fill_latency", "signal_latency", "slippage")

    def to_dict(self) -> dict[str, Any]:
        body = {name: getattr(self, name) for name in (
            "accounts", "positions", "marks", "orders", "signals", "errors", "open_orders", "broker", "instruments",
            "day_notional", "trades", "peak_value", "max_drawdown", "minute", "minute_values", "day", "day_start_pnl",
            "last_event_ns", "events")}
        for name in self._HISTOGRAMS:
            body[name] = getattr(self, name).to_list()
            window = getattr(self, f"{name}_window")
            body[f"{name}_window"] = None if window is None else window.to_list()
        body["version"] = STATE_VERSION
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> DashboardState:
        if body.get("version") != STATE_VERSION:
            raise ValueError(f"dashboard state version {body.get('version')!r}; this tradewatch reads {STATE_VERSION}")
        plain = {k: v for k, v in body.items() if k != "version" and not k.endswith("_window") and k not in cls._HISTOGRAMS}
        state = cls(**plain)
        for name in cls._HISTOGRAMS:
            setattr(state, name, Histogram.from_list(body[name]))
            window = body.get(f"{name}_window")
            setattr(state, f"{name}_window", None if window is None else Window.from_list(window))
        return state


class RealtimeDashboardAggregator:
    """Folds events into a ``DashboardState`` and reads snapshots off it (module docstring)."""

    def __init__(self, policy: CompliancePolicy, config: DashboardConfig | None = None) -> None:
        self.policy = policy
        self.config = config or DashboardConfig()
        self._day = TradingDay(policy.zone)
        self._handlers = {
            "account": self._account, "position_update": self._position, "market_data": self._market_data,
            "order": self._order, "fill": self._fill, "signal": self._signal, "system": self._system,
        }

    def new_state(self) -> DashboardState:
        size = self.config.window_size
        return DashboardState(order_latency_window=Window(size), fill_latency_window=Window(size),
                              signal_latency_window=Window(size), slippage_window=Window(size))

    # ------------------------------------------------------------------ applying events

    def apply(self, events: Iterable[EventBase], state: DashboardState) -> int:
        """Fold ``events`` (validated models) into ``state`` (in place); returns how many were
        applied. The same as ``apply_records`` of their ``from_model`` records."""
        return self.apply_records(map(from_model, events), state)

    def apply_records(self, events: Iterable[DashboardEvent], state: DashboardState) -> int:
        """Fold ``events`` (``DashboardEvent`` records, as the trail's SQL reader builds them)
        into ``state`` (in place); returns how many were applied."""
        applied = 0
        handlers = self._handlers
        for event in events:
            t = event.occurred_at_ns
            self._roll_day(t, state)
            handler = handlers.get(event.event_type)
            if handler is not None:
                handler(event, t, state)
            if state.last_event_ns is None or t > state.last_event_ns:
                state.last_event_ns = t
            applied += 1
        state.events += applied
        if state.open_orders and applied:
            horizon = (state.last_event_ns or 0) - int(self.config.order_ttl_seconds * NS)
            if len(state.open_orders) > 10_000 or applied >= 1_000:
                state.open_orders = {k: v for k, v in state.open_orders.items() if v[0] >= horizon}
        return applied

    def _roll_day(self, t: int, state: DashboardState) -> None:
        day = self._day.of(t)
        if day != state.day:
            if state.day is not None and day < state.day:
                return  # an event of an earlier day arriving late does not roll the day back
            state.day = day
            state.day_start_pnl = self._total_pnl(state)
            state.day_notional = {}

    def _account(self, event: DashboardEvent, t: int, state: DashboardState) -> None:
        state.accounts[event.source] = [_float(event.equity), _float(event.cash), _float(event.buying_power)]
        self._sample_value(t, state)

    def _sample_value(self, t: int, state: DashboardState) -> None:
        value = self._portfolio_value(state)
        if value is None:
            return
        if state.peak_value is None or value > state.peak_value:
            state.peak_value = value
        if state.peak_value and state.peak_value > 0:
            state.max_drawdown = max(state.max_drawdown, 1.0 - value / state.peak_value)
        minute = t // (60 * NS)
        if state.minute is None or minute > state.minute:
            state.minute_values.append(value)
            del state.minute_values[:-(self.config.sharpe_window_minutes + 1)]
            state.minute = minute
        elif minute == state.minute and state.minute_values:
            state.minute_values[-1] = value  # the value at the end of the minute

    def _position(self, event: DashboardEvent, t: int, state: DashboardState) -> None:
        key = f"{event.source}{_SEP}{event.strategy_id or ''}{_SEP}{event.symbol}"
        realized = _float(event.realized_pnl)
        previous = state.positions.get(key)
        if previous is not None and realized is not None and previous[2] is not None:
            delta = realized - previous[2]
            if delta > 0:
                state.trades[0] += 1
                state.trades[2] += delta
            elif delta < 0:
                state.trades[1] += 1
                state.trades[3] += -delta
        state.positions[key] = [_float(event.quantity) or 0.0, _float(event.avg_price), realized,
                                _float(event.unrealized_pnl), _float(event.market_price)]
        if event.symbol not in state.marks and _float(event.market_price) is not None:
            state.marks[event.symbol] = float(event.market_price)

    def _market_data(self, event: DashboardEvent, t: int, state: DashboardState) -> None:
        bid, ask, last = _float(event.bid), _float(event.ask), _float(event.last)
        if bid is not None and ask is not None:
            state.marks[event.symbol] = (bid + ask) / 2.0
        elif last is not None:
            state.marks[event.symbol] = last

    def _instrument(self, symbol: str, state: DashboardState) -> list:
        row = state.instruments.get(symbol)
        if row is None:
            row = state.instruments[symbol] = [0, 0, 0.0, 0.0, 0.0, 0]
        return row

    def _order(self, event: DashboardEvent, t: int, state: DashboardState) -> None:
        key = _SEP.join((event.symbol, event.side, event.order_type, event.status))
        state.orders[key] = state.orders.get(key, 0) + 1
        open_order = state.open_orders.get(event.order_id)
        if event.status == "submitted":
            self._instrument(event.symbol, state)[0] += 1
            state.open_orders[event.order_id] = [t, event.side, _float(event.decision_price), False, False]
            price, _ = order_price(event.order_type, _float(event.limit_price), _float(event.decision_price),
                                   state.marks.get(event.symbol))
            if price is not None:
                state.day_notional[event.symbol] = state.day_notional.get(event.symbol, 0.0) + float(event.quantity) * price
        elif event.status in ("accepted", "rejected") and open_order is not None and not open_order[3]:
            open_order[3] = True
            latency = (t - open_order[0]) / NS
            state.order_latency.observe(latency)
            state.order_latency_window.add(latency)

    def _fill(self, event: DashboardEvent, t: int, state: DashboardState) -> None:
        quantity, price = float(event.quantity), float(event.price)
        row = self._instrument(event.symbol, state)
        row[1] += 1
        row[2] += quantity
        row[3] += quantity * price
        open_order = state.open_orders.get(event.order_id)
        if open_order is not None and not open_order[4]:
            open_order[4] = True
            latency = (t - open_order[0]) / NS
            state.fill_latency.observe(latency)
            state.fill_latency_window.add(latency)
        arrival = _float(event.arrival_price) or (open_order[2] if open_order is not None else None)
        if arrival:
            sign = 1.0 if event.side == "buy" else -1.0
            slippage = sign * (price - arrival) / arrival * 1e4
            state.slippage.observe(slippage)
            state.slippage_window.add(slippage)
            row[4] += slippage
            row[5] += 1

    def _signal(self, event: DashboardEvent, t: int, state: DashboardState) -> None:
        key = f"{event.strategy_id}{_SEP}{event.direction}"
        state.signals[key] = state.signals.get(key, 0) + 1
        seconds = _float(event.generation_seconds)
        if seconds is not None:
            state.signal_latency.observe(seconds)
            state.signal_latency_window.add(seconds)

    def _system(self, event: DashboardEvent, t: int, state: DashboardState) -> None:
        if event.level in ("error", "critical"):
            key = f"{event.level}{_SEP}{event.component}"
            state.errors[key] = state.errors.get(key, 0) + 1
        if event.component in self.config.broker_components:
            state.broker[event.source] = [t, event.level not in ("error", "critical")]

    # ------------------------------------------------------------------ reading

    def _portfolio_value(self, state: DashboardState) -> float | None:
        values = [account[0] for account in state.accounts.values() if account[0] is not None]
        return sum(values) if values else None

    def _marked(self, state: DashboardState) -> list[tuple[str, str, str, float, float | None, float, float]]:
        """(source, strategy, symbol, quantity, mark, notional, unrealized) per position."""
        out = []
        for key, (quantity, average, _realized, reported_unrealized, market) in state.positions.items():
            source, strategy, symbol = key.split(_SEP)
            mark = state.marks.get(symbol, market)
            notional = quantity * mark if mark is not None else 0.0
            if mark is not None and average is not None:
                unrealized = quantity * (mark - average)
            else:
                unrealized = reported_unrealized or 0.0
            out.append((source, strategy, symbol, quantity, mark, notional, unrealized))
        return out

    def _total_pnl(self, state: DashboardState) -> float:
        realized = sum(p[2] or 0.0 for p in state.positions.values())
        return realized + sum(row[6] for row in self._marked(state))

    def snapshot(self, state: DashboardState, now_ns: int) -> RealtimeDashboardSnapshot:
        """The snapshot of ``state`` as of ``now_ns`` (only the broker status and the snapshot's
        own time depend on it)."""
        marked = self._marked(state)
        realized = sum(p[2] or 0.0 for p in state.positions.values())
        unrealized = sum(row[6] for row in marked)
        gross = sum(abs(row[5]) for row in marked)
        net = sum(row[5] for row in marked)
        value = self._portfolio_value(state)
        drawdown = (1.0 - value / state.peak_value) if value is not None and state.peak_value else None
        daily_pnl = realized + unrealized - state.day_start_pnl
        wins, losses, gains, losses_abs = state.trades
        orders_by_status: dict[str, int] = {}
        for key, count in state.orders.items():
            status = key.rsplit(_SEP, 1)[1]
            orders_by_status[status] = orders_by_status.get(status, 0) + count
        acknowledged = orders_by_status.get("accepted", 0) + orders_by_status.get("rejected", 0)
        limits = self._limits(state, marked, gross, net, daily_pnl, drawdown)
        timeout_ns = int(self.config.broker_timeout_seconds * NS)
        broker = {source: int(ok and now_ns - last <= timeout_ns) for source, (last, ok) in sorted(state.broker.items())}
        return RealtimeDashboardSnapshot(
            as_of_ns=int(now_ns), last_event_ns=state.last_event_ns, events_applied=state.events,
            trading_day=state.day, portfolio_value=value,
            cash=_sum(a[1] for a in state.accounts.values()), buying_power=_sum(a[2] for a in state.accounts.values()),
            realized_pnl=realized, unrealized_pnl=unrealized, daily_pnl=daily_pnl,
            position_count=sum(1 for row in marked if row[3] != 0), gross_exposure=gross, net_exposure=net,
            positions=[{"source": r[0], "strategy_id": r[1] or None, "symbol": r[2], "quantity": r[3], "mark": r[4],
                        "notional": r[5], "unrealized_pnl": r[6]} for r in sorted(marked, key=lambda r: r[:3]) if r[3] != 0],
            rolling_sharpe=self._sharpe(state), drawdown=drawdown, max_drawdown=state.max_drawdown,
            hit_rate=wins / (wins + losses) if wins + losses else None,
            profit_factor=gains / losses_abs if losses_abs > 0 else None,
            orders_by_status=dict(sorted(orders_by_status.items())),
            rejection_rate=orders_by_status.get("rejected", 0) / acknowledged if acknowledged else None,
            orders=dict(state.orders), signals=dict(state.signals), errors=dict(state.errors),
            slippage_bps=state.slippage_window.percentiles(), slippage_histogram=state.slippage,
            signal_generation_seconds=state.signal_latency_window.percentiles(),
            order_acknowledgement_seconds=state.order_latency_window.percentiles(),
            order_fill_seconds=state.fill_latency_window.percentiles(),
            order_latency_histogram=state.order_latency, signal_latency_histogram=state.signal_latency,
            instruments=self._instruments(state, marked), risk_limits=limits, broker_connected=broker,
        )

    def _sharpe(self, state: DashboardState) -> float | None:
        values = state.minute_values
        returns = [b / a - 1.0 for a, b in zip(values, values[1:]) if a]
        if len(returns) < 2:
            return None
        mean = sum(returns) / len(returns)
        variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
        if variance <= 0:
            return None
        return mean / math.sqrt(variance) * math.sqrt(self.config.periods_per_year)

    def _instruments(self, state: DashboardState, marked: list) -> dict[str, InstrumentMetrics]:
        held: dict[str, list[float]] = {}
        for _, _, symbol, quantity, _, notional, unrealized in marked:
            row = held.setdefault(symbol, [0.0, 0.0, 0.0])
            row[0] += quantity
            row[1] += notional
            row[2] += unrealized
        out = {}
        for symbol in sorted(set(state.instruments) | set(held) | set(state.marks)):
            orders, fills, volume, traded, slip_sum, slip_n = state.instruments.get(symbol, [0, 0, 0.0, 0.0, 0.0, 0])
            quantity, notional, unrealized = held.get(symbol, [0.0, 0.0, 0.0])
            out[symbol] = InstrumentMetrics(
                symbol=symbol, mark=state.marks.get(symbol), position=quantity, notional=notional,
                unrealized_pnl=unrealized, orders=orders, fills=fills, volume=volume, traded_notional=traded,
                mean_slippage_bps=slip_sum / slip_n if slip_n else None,
                day_ordered_notional=state.day_notional.get(symbol, 0.0))
        return out

    def _limits(self, state: DashboardState, marked: list, gross: float, net: float, daily_pnl: float,
                drawdown: float | None) -> list[dict[str, Any]]:
        """Percent of each policy limit in use: [{"limit", "symbol", "used", "limit_value", "percent"}]."""
        policy = self.policy
        account = policy.account_limits
        out: list[dict[str, Any]] = []

        def add(name: str, symbol: str, used: float | None, limit: float | None) -> None:
            if limit is None or used is None:
                return
            out.append({"limit": name, "symbol": symbol, "used": used, "limit_value": limit,
                        "percent": 100.0 * used / limit})

        add("gross_exposure", "", gross, account.max_gross_exposure)
        add("net_exposure", "", abs(net), account.max_net_exposure)
        add("daily_loss", "", max(0.0, -daily_pnl), account.max_daily_loss)
        add("drawdown", "", drawdown, account.max_drawdown)
        worst: dict[str, tuple[float, float, float]] = {}  # symbol -> (percent, used, limit)
        for _, _, symbol, quantity, _, notional, _ in marked:
            limit = policy.max_position.for_symbol(symbol)
            for used, bound in ((abs(notional), limit.max_notional), (abs(quantity), limit.max_quantity)):
                if bound is not None:
                    candidate = (100.0 * used / bound, used, bound)
                    if symbol not in worst or candidate[0] > worst[symbol][0]:
                        worst[symbol] = candidate
        for symbol, (_, used, bound) in sorted(worst.items()):
            add("position_notional", symbol, used, bound)
        daily = policy.notional_limits.per_instrument_per_day
        for symbol, ordered in sorted(state.day_notional.items()):
            add("order_notional_daily", symbol, ordered, daily)
        return out


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


__all__ = ["DashboardConfig", "DashboardState", "RealtimeDashboardAggregator"]
