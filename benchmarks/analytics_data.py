"""Synthetic trading data for the analytics benchmark, generated with numpy in a few seconds.

One year, ``instruments`` instruments (random-walk mids quoted hourly), three strategies,
three venues. Each intended trade is a signal (three of five factors), an opening order filled
in two partial fills and a closing order filled in two, so 1,000,000 fills are about 250,000
trades; 5% of orders stop short of their quantity and 2% more are rejected outright. Each book's
trades follow one another, so FIFO matching gives one round trip per trade.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradewatch.domain.analytics.trading_data import TradingData

YEAR_SECONDS = 365 * 86_400
START = pd.Timestamp("2025-01-01T00:00:00Z")
FACTORS = np.array(["momentum", "value", "carry", "volatility", "liquidity"])
STRATEGIES = np.array(["momentum", "mean_reversion", "breakout"])
VENUES = np.array(["XNAS", "ARCX", "BATS"])


def generate(fills: int = 1_000_000, instruments: int = 50, seed: int = 7) -> TradingData:
    rng = np.random.default_rng(seed)
    trades = fills // 4
    symbols = np.array([f"SYM{i:03d}" for i in range(instruments)])
    start_ns = START.value

    # Quotes: hourly random-walk mids per instrument, spread 2 bps.
    quote_seconds = np.arange(0, YEAR_SECONDS, 3600, dtype=np.int64)
    base = rng.uniform(20, 500, instruments)
    steps = rng.normal(0, 0.004, (instruments, len(quote_seconds)))
    mids = base[:, None] * np.exp(np.cumsum(steps, axis=1))
    quote_times = start_ns + quote_seconds * 10**9
    half_spread = mids * 1e-4
    quotes = pd.DataFrame({
        "occurred_at": pd.to_datetime(np.tile(quote_times, instruments), unit="ns", utc=True),
        "symbol": np.repeat(symbols, len(quote_seconds)),
        "bid": (mids - half_spread).ravel(),
        "ask": (mids + half_spread).ravel(),
        "last": mids.ravel(),
    })

    def mid_at(symbol_index: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        # The mid in force at a time: the last hourly quote at or before it.
        column = np.clip(seconds // 3600, 0, len(quote_seconds) - 1).astype(np.int64)
        return mids[symbol_index, column]

    # Trades: each book (strategy, instrument) trades its slots one after another, so FIFO
    # matching finds one round trip per trade; holding periods from minutes to hours.
    books = instruments * len(STRATEGIES)
    book_of = np.arange(trades) % books
    symbol_of = book_of % instruments
    strategy_of = book_of // instruments
    slot_of = np.arange(trades) // books
    slot_seconds = (YEAR_SECONDS - 2 * 86_400) // (slot_of.max() + 1)
    signal_s = (3600 + slot_of * slot_seconds + rng.uniform(0, 0.2, trades) * slot_seconds).astype(np.int64)
    holding_s = (rng.uniform(0.002, 0.7, trades) * slot_seconds).astype(np.int64) + 30
    quantity = rng.integers(10, 1_000, trades).astype(np.float64)
    # A little skill: 2% of directions follow the move over the holding period, the rest are coin flips.
    move = mid_at(symbol_of, signal_s + holding_s) - mid_at(symbol_of, signal_s)
    long = np.where(rng.random(trades) < 0.02, move > 0, rng.random(trades) < 0.5)
    direction = np.where(long, "long", "short")
    signal_ids = np.char.add("sig-", np.arange(trades).astype(str))

    signals = pd.DataFrame({
        "signal_id": signal_ids,
        "occurred_at": pd.to_datetime(start_ns + signal_s * 10**9, unit="ns", utc=True),
        "symbol": symbols[symbol_of],
        "direction": direction,
        "confidence": rng.uniform(0.5, 1.0, trades),
        "strategy_id": STRATEGIES[strategy_of],
        "horizon_seconds": 3600.0,
    })
    chosen = np.argsort(rng.random((trades, len(FACTORS))), axis=1)[:, :3]
    exposures = pd.DataFrame({
        "signal_id": np.repeat(signal_ids, 3),
        "factor": FACTORS[chosen].ravel(),
        "exposure": rng.normal(0.3, 1.0, trades * 3),
    })

    # Orders: one opening and one closing order per trade, plus rejected extras.
    n_orders = 2 * trades
    order_trade = np.repeat(np.arange(trades), 2)
    closing = np.tile([False, True], trades)
    decision_s = np.where(closing, signal_s[order_trade] + holding_s[order_trade], signal_s[order_trade])
    buy = long[order_trade] ^ closing
    sign = np.where(buy, 1.0, -1.0)
    order_symbol = symbol_of[order_trade]
    decision_price = mid_at(order_symbol, decision_s)
    ordered = quantity[order_trade].copy()
    short_filled = rng.random(n_orders) < 0.05  # the engine wanted more than it got
    ordered[short_filled] *= 1.25
    submitted_ns = start_ns + decision_s * 10**9 + 50_000_000
    order_ids = np.char.add("ord-", np.arange(n_orders).astype(str))
    venue_of = rng.integers(0, len(VENUES), n_orders)
    status = np.where(short_filled, "cancelled", "accepted").astype(object)
    ended = np.where(short_filled, submitted_ns + 30 * 10**9, np.iinfo(np.int64).min)

    n_rejected = max(1, n_orders // 50)
    rejected_trade = rng.integers(0, trades, n_rejected)
    rejected_s = signal_s[rejected_trade] + 1
    orders = pd.DataFrame({
        "order_id": np.concatenate([order_ids, np.char.add("rej-", np.arange(n_rejected).astype(str))]),
        "symbol": symbols[np.concatenate([order_symbol, symbol_of[rejected_trade]])],
        "side": np.where(np.concatenate([buy, long[rejected_trade]]), "buy", "sell"),
        "quantity": np.concatenate([ordered, quantity[rejected_trade]]),
        "submitted_at": pd.to_datetime(np.concatenate([submitted_ns, start_ns + rejected_s * 10**9]), unit="ns", utc=True),
        "accepted_at": pd.to_datetime(np.concatenate([submitted_ns + rng.integers(1, 20, n_orders) * 1_000_000,
                                                      np.full(n_rejected, np.iinfo(np.int64).min)]), unit="ns", utc=True),
        "ended_at": pd.to_datetime(np.concatenate([ended, start_ns + rejected_s * 10**9 + 3_000_000]), unit="ns", utc=True),
        "status": np.concatenate([status, np.full(n_rejected, "rejected", dtype=object)]),
        "decision_price": np.concatenate([decision_price, mid_at(symbol_of[rejected_trade], rejected_s)]),
        "order_type": "market",
        "signal_id": np.concatenate([signal_ids[order_trade], signal_ids[rejected_trade]]),
        "strategy_id": STRATEGIES[np.concatenate([strategy_of[order_trade], strategy_of[rejected_trade]])],
        "venue": VENUES[np.concatenate([venue_of, rng.integers(0, len(VENUES), n_rejected)])],
    })

    # Fills: two per order, 40% / 60% of the filled quantity, at the mid plus half the spread
    # and a little impact against the order.
    first_part = np.floor(quantity[order_trade] * 0.4)
    fill_qty = np.column_stack([first_part, quantity[order_trade] - first_part]).ravel()
    fill_order = np.repeat(np.arange(n_orders), 2)
    fill_delay_ns = np.tile([200_000_000, 1_500_000_000], n_orders)
    fill_ns = submitted_ns[fill_order] + fill_delay_ns + rng.integers(0, 1_000_000, 2 * n_orders)
    fill_mid = mid_at(order_symbol[fill_order], (fill_ns - start_ns) // 10**9)
    fill_sign = sign[fill_order]
    fill_half_spread = fill_mid * 1e-4
    impact = fill_mid * rng.normal(0.5e-4, 1e-4, 2 * n_orders)
    price = np.round(fill_mid + fill_sign * (fill_half_spread + impact), 4)
    n_fills = 2 * n_orders
    fills_frame = pd.DataFrame({
        "occurred_at": pd.to_datetime(fill_ns, unit="ns", utc=True),
        "fill_id": np.char.add("fill-", np.arange(n_fills).astype(str)),
        "symbol": symbols[order_symbol[fill_order]],
        "side": np.where(fill_sign > 0, "buy", "sell"),
        "quantity": fill_qty,
        "price": price,
        "fee": np.round(price * fill_qty * 0.5e-4, 4),
        "order_id": order_ids[fill_order],
        "signal_id": signal_ids[order_trade[fill_order]],
        "strategy_id": STRATEGIES[strategy_of[order_trade[fill_order]]],
        "venue": VENUES[venue_of[fill_order]],
        "bid": fill_mid - fill_half_spread,
        "ask": fill_mid + fill_half_spread,
        "arrival_price": decision_price[fill_order],
        "vwap": fill_mid,
        "liquidity": np.where(rng.random(n_fills) < 0.3, "maker", "taker"),
    }).sort_values("occurred_at", kind="stable").reset_index(drop=True)
    return TradingData(fills=fills_frame, orders=orders, signals=signals, factor_exposures=exposures, quotes=quotes)


def subset(data: TradingData, fills: int) -> TradingData:
    """The first ``fills`` fills in time, the orders, signals and exposures they belong to, and
    the quotes of their period (from 30 days before to 2 days after, so as-of lookups find the
    same prices): a self-contained smaller book whose every input shrinks with the fills."""
    chosen = data.fills.iloc[:fills]
    first, last = chosen["occurred_at"].min(), chosen["occurred_at"].max()
    in_period = data.quotes["occurred_at"].between(first - pd.Timedelta(days=30), last + pd.Timedelta(days=2))
    order_ids = set(chosen["order_id"])
    orders = data.orders[data.orders["order_id"].isin(order_ids)]
    signal_ids = set(orders["signal_id"].dropna())
    return TradingData(
        fills=chosen.reset_index(drop=True),
        orders=orders.reset_index(drop=True),
        signals=data.signals[data.signals["signal_id"].isin(signal_ids)].reset_index(drop=True),
        factor_exposures=data.factor_exposures[data.factor_exposures["signal_id"].isin(signal_ids)].reset_index(drop=True),
        quotes=data.quotes[in_period].reset_index(drop=True),
        account=data.account,
    )
