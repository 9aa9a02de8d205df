"""The analytics' input: fills, orders, signals, factor exposures, quotes and account equity.

``TradingData`` holds plain DataFrames in the documented schema (``schema.py``), so a notebook
can build one by hand. ``trading_data_from_trail`` builds one from the audit trail's events as
``AuditStore.to_dataframe`` returns them (one frame per event type, payload flattened to
``payload.<field>`` columns):

- fills: one row per ``fill`` event; a fill without a signal_id takes its order's.
- orders: one row per order_id, collapsed from its ``order`` status events: side, quantity,
  type, prices, venue, signal and strategy from the earliest event that has them;
  ``submitted_at`` the time of the ``submitted`` event (else the first event); ``accepted_at``
  the first ``accepted``; ``status`` the last status; ``ended_at`` the time of a final status
  (rejected, cancelled, expired).
- signals and factor exposures: one row per ``signal``; its ``factors`` object becomes one
  exposure row per factor.
- quotes: ``market_data`` bid, ask, last. account: ``account`` equity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradewatch.domain.analytics.schema import (
    ACCOUNT,
    FACTOR_EXPOSURES,
    FILLS,
    ORDERS,
    QUOTES,
    SIGNALS,
    FrameSpec,
)

_FINAL_STATUSES = ("rejected", "cancelled", "expired")


def _empty(spec: FrameSpec) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series(dtype="datetime64[ns, UTC]" if c.kind == "time" else ("float64" if c.kind in ("float", "positive", "nonnegative") else object)) for c in spec.columns})


@dataclass
class TradingData:
    """Frames in the documented schema; any may be empty (its sections are then empty too)."""

    fills: pd.DataFrame = field(default_factory=lambda: _empty(FILLS))
    orders: pd.DataFrame = field(default_factory=lambda: _empty(ORDERS))
    signals: pd.DataFrame = field(default_factory=lambda: _empty(SIGNALS))
    factor_exposures: pd.DataFrame = field(default_factory=lambda: _empty(FACTOR_EXPOSURES))
    quotes: pd.DataFrame = field(default_factory=lambda: _empty(QUOTES))
    account: pd.DataFrame = field(default_factory=lambda: _empty(ACCOUNT))

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("fills", "orders", "signals", "factor_exposures", "quotes", "account")}


def _payload(frame: pd.DataFrame, name: str) -> pd.Series:
    column = f"payload.{name}"
    if column in frame.columns:
        return frame[column]
    return pd.Series(np.nan, index=frame.index, dtype="float64")


def _fills(frame: pd.DataFrame, order_signals: pd.Series) -> pd.DataFrame:
    if frame.empty:
        return _empty(FILLS)
    out = pd.DataFrame({
        "occurred_at": frame["occurred_at"],
        "fill_id": _payload(frame, "fill_id"),
        "symbol": frame["symbol"],
        "side": _payload(frame, "side"),
        "quantity": _payload(frame, "quantity"),
        "price": _payload(frame, "price"),
        "fee": _payload(frame, "fee").fillna(0.0),
        "order_id": frame["order_id"],
        "signal_id": frame["signal_id"],
        "strategy_id": frame["strategy_id"],
        "venue": _payload(frame, "venue"),
        "bid": _payload(frame, "bid"),
        "ask": _payload(frame, "ask"),
        "arrival_price": _payload(frame, "arrival_price"),
        "vwap": _payload(frame, "vwap"),
        "liquidity": _payload(frame, "liquidity"),
    })
    if len(order_signals):
        missing = out["signal_id"].isna() & out["order_id"].notna()
        out.loc[missing, "signal_id"] = out.loc[missing, "order_id"].map(order_signals)
    return out.reset_index(drop=True)


def _orders(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return _empty(ORDERS)
    events = pd.DataFrame({
        "order_id": frame["order_id"],
        "occurred_at": frame["occurred_at"],
        "seq": frame["seq"] if "seq" in frame.columns else np.arange(len(frame)),
        "status": _payload(frame, "status"),
        "symbol": frame["symbol"],
        "side": _payload(frame, "side"),
        "quantity": _payload(frame, "quantity"),
        "order_type": _payload(frame, "order_type"),
        "limit_price": _payload(frame, "limit_price"),
        "decision_price": _payload(frame, "decision_price"),
        "venue": _payload(frame, "venue"),
        "signal_id": frame["signal_id"],
        "strategy_id": frame["strategy_id"],
    }).dropna(subset=["order_id"])
    events = events.sort_values(["order_id", "occurred_at", "seq"], kind="stable")
    grouped = events.groupby("order_id", sort=False)
    # Descriptive fields: the earliest event that carries them (groupby.first skips missing).
    orders = grouped[["symbol", "side", "quantity", "order_type", "limit_price", "decision_price", "venue", "signal_id", "strategy_id"]].first()
    orders["status"] = grouped["status"].last()
    first_time = grouped["occurred_at"].first()
    submitted = events[events["status"] == "submitted"].groupby("order_id")["occurred_at"].first()
    orders["submitted_at"] = submitted.reindex(orders.index).fillna(first_time)
    orders["accepted_at"] = events[events["status"] == "accepted"].groupby("order_id")["occurred_at"].first().reindex(orders.index)
    final = events[events["status"].isin(_FINAL_STATUSES)].groupby("order_id")["occurred_at"].last()
    orders["ended_at"] = final.reindex(orders.index)
    return orders.reset_index()


def _signals(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if frame.empty:
        return _empty(SIGNALS), _empty(FACTOR_EXPOSURES)
    signals = pd.DataFrame({
        "signal_id": frame["signal_id"],
        "occurred_at": frame["occurred_at"],
        "symbol": frame["symbol"],
        "direction": _payload(frame, "direction"),
        "confidence": _payload(frame, "confidence"),
        "strategy_id": frame["strategy_id"],
        "horizon_seconds": _payload(frame, "horizon_seconds"),
        "model": _payload(frame, "model"),
    }).reset_index(drop=True)
    factor_columns = [c for c in frame.columns if c.startswith("payload.factors.")]
    if not factor_columns:
        return signals, _empty(FACTOR_EXPOSURES)
    wide = frame[["signal_id", *factor_columns]].rename(columns=lambda c: c.removeprefix("payload.factors."))
    exposures = wide.melt(id_vars="signal_id", var_name="factor", value_name="exposure").dropna(subset=["exposure"])
    exposures["exposure"] = pd.to_numeric(exposures["exposure"], errors="coerce")
    return signals, exposures.reset_index(drop=True)


def trading_data_from_trail(frames: dict[str, pd.DataFrame]) -> TradingData:
    """``frames``: event type -> ``AuditStore.to_dataframe(event_types=type)`` (missing = none)."""
    empty = pd.DataFrame()
    orders = _orders(frames.get("order", empty))
    order_signals = orders.dropna(subset=["signal_id"]).set_index("order_id")["signal_id"] if len(orders) else pd.Series(dtype=object)
    signals, exposures = _signals(frames.get("signal", empty))
    market = frames.get("market_data", empty)
    quotes = _empty(QUOTES) if market.empty else pd.DataFrame({
        "occurred_at": market["occurred_at"], "symbol": market["symbol"],
        "bid": _payload(market, "bid"), "ask": _payload(market, "ask"), "last": _payload(market, "last"),
    }).reset_index(drop=True)
    account_events = frames.get("account", empty)
    account = _empty(ACCOUNT) if account_events.empty else pd.DataFrame({
        "occurred_at": account_events["occurred_at"], "equity": _payload(account_events, "equity"),
    }).reset_index(drop=True)
    return TradingData(
        fills=_fills(frames.get("fill", empty), order_signals),
        orders=orders,
        signals=signals,
        factor_exposures=exposures,
        quotes=quotes,
        account=account,
    )
