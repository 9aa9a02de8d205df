"""The straightforward baseline: FIFO round trips and trade statistics with a per-fill and
per-trip Python loop (dicts, one ``collections.deque`` of open lots per book).

It produces the same results as ``tradewatch.domain.analytics.round_trips.match_round_trips``
and ``tradewatch.domain.analytics.trade_statistics.trade_statistics`` and serves both as the
baseline of the speed benchmark and as the oracle of their tests. Linear time; DataFrames
are built only at the very end.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import pandas as pd

# The output columns are the vectorised module's: the two must produce the same frames.
from tradewatch.domain.analytics.round_trips import OPEN_LOT_COLUMNS, TRIP_COLUMNS

TEXT_COLUMNS = {"strategy_id", "symbol", "direction", "opening_order_id", "closing_order_id", "opening_signal_id",
                "venue"}


@dataclass(frozen=True)
class NaiveRoundTrips:
    trips: pd.DataFrame
    open_lots: pd.DataFrame
    total_fees: float
    unallocated_fees: float

    @property
    def realized_pnl(self) -> float:
        total = 0.0
        for pnl in self.trips["pnl"].tolist():
            total += pnl
        return total


def _missing(value) -> bool:
    return value is None or value != value  # NaN is the only value not equal to itself


def _column_list(fills: pd.DataFrame, name: str) -> list:
    return fills[name].tolist() if name in fills.columns else [None] * len(fills)


def _frame(rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    data = {}
    for name in columns:
        values = [row[name] for row in rows]
        if name in ("entry_at", "exit_at"):
            data[name] = pd.DatetimeIndex(pd.to_datetime(values, unit="ns", utc=True)).as_unit("ns")
        elif name in TEXT_COLUMNS:
            data[name] = pd.array(values, dtype="str")
        else:
            data[name] = pd.Series(values, dtype="float64").to_numpy()
    return pd.DataFrame(data)


def naive_match_round_trips(fills: pd.DataFrame, *, quantity_decimals: int = 8) -> NaiveRoundTrips:
    """FIFO round trips of prepared fills, one fill at a time (see match_round_trips for the rules)."""
    scale = 10.0 ** quantity_decimals
    times = [timestamp.value for timestamp in fills["occurred_at"].tolist()]
    symbols = _column_list(fills, "symbol")
    strategies = _column_list(fills, "strategy_id")
    sides = fills["side"].tolist()
    quantities = fills["quantity"].tolist()
    prices = fills["price"].tolist()
    fees = [0.0 if _missing(f) else f for f in _column_list(fills, "fee")] if "fee" in fills.columns \
        else [0.0] * len(fills)
    order_ids = _column_list(fills, "order_id")
    signal_ids = _column_list(fills, "signal_id")
    venues = _column_list(fills, "venue")

    total_fees = 0.0
    for fee in fees:
        total_fees += fee
    unallocated = 0.0
    positions: dict = {}
    lots: dict = {}
    trips: dict = {}
    sequence = sorted(range(len(times)), key=lambda i: (times[i], i))
    for i in sequence:
        size = int(round(quantities[i] * scale))
        if size == 0:
            unallocated += fees[i]
            continue
        signed = size if sides[i] == "buy" else -size
        book = (None if _missing(strategies[i]) else strategies[i], symbols[i])
        position = positions.get(book, 0)
        queue = lots.setdefault(book, deque())
        closing = min(size, abs(position)) if position * signed < 0 else 0
        remaining = closing
        while remaining > 0:
            lot = queue[0]
            opener = lot[0]
            take = min(lot[1], remaining)
            key = (book, order_ids[opener], order_ids[i])
            trip = trips.get(key)
            if trip is None:
                trip = {"first_open": opener, "units": 0, "entry_value": 0.0, "exit_value": 0.0, "gross": 0.0,
                        "fees": 0.0}
                trips[key] = trip
            trip["last_close"] = i
            quantity = take / scale
            trip["units"] += take
            trip["entry_value"] += quantity * prices[opener]
            trip["exit_value"] += quantity * prices[i]
            trip["gross"] += quantity * (prices[i] - prices[opener])
            trip["fees"] += fees[opener] * take / lot[2] + fees[i] * take / size
            lot[1] -= take
            remaining -= take
            if lot[1] == 0:
                queue.popleft()
        opening = size - closing
        if opening > 0:
            queue.append([i, opening, size])
        positions[book] = position + signed

    rows = []
    for trip in trips.values():
        opener, closer = trip["first_open"], trip["last_close"]
        sign = 1.0 if sides[opener] == "buy" else -1.0
        quantity = trip["units"] / scale
        gross = sign * trip["gross"]
        rows.append({
            "strategy_id": strategies[opener], "symbol": symbols[opener],
            "direction": "long" if sign > 0 else "short", "quantity": quantity,
            "entry_at": times[opener], "exit_at": times[closer],
            "holding_seconds": (times[closer] - times[opener]) / 1e9,
            "entry_price": trip["entry_value"] / quantity, "exit_price": trip["exit_value"] / quantity,
            "gross_pnl": gross, "fees": trip["fees"], "pnl": gross - trip["fees"],
            "opening_order_id": order_ids[opener], "closing_order_id": order_ids[closer],
            "opening_signal_id": signal_ids[opener], "venue": venues[opener],
            "_sort": (times[closer], times[opener], opener, closer),
        })
    rows.sort(key=lambda row: row["_sort"])

    open_rows = []
    for queue in lots.values():
        for opener, units, size in queue:
            open_rows.append({
                "strategy_id": strategies[opener], "symbol": symbols[opener],
                "direction": "long" if sides[opener] == "buy" else "short", "quantity": units / scale,
                "entry_at": times[opener], "entry_price": prices[opener], "opening_order_id": order_ids[opener],
                "opening_signal_id": signal_ids[opener], "fees": fees[opener] * units / size,
                "_sort": (times[opener], opener),
            })
    open_rows.sort(key=lambda row: row["_sort"])
    return NaiveRoundTrips(_frame(rows, TRIP_COLUMNS), _frame(open_rows, OPEN_LOT_COLUMNS), total_fees, unallocated)


def naive_trade_statistics(trips: pd.DataFrame) -> dict:
    """Trade statistics with one loop over the trips (see trade_statistics for the definitions)."""
    exits = [t.value for t in trips["exit_at"].tolist()] if "exit_at" in trips.columns else list(range(len(trips)))
    pnls = trips["pnl"].tolist() if "pnl" in trips.columns else []
    ordered = [pnls[i] for i in sorted(range(len(pnls)), key=lambda i: (exits[i], i)) if not math.isnan(pnls[i])]
    trades = wins = losses = 0
    gross_profit = gross_loss = total = 0.0
    largest_win = largest_loss = math.nan
    win_streak = loss_streak = longest_win = longest_loss = 0
    for pnl in ordered:
        trades += 1
        total += pnl
        if pnl > 0:
            wins += 1
            gross_profit += pnl
            largest_win = pnl if math.isnan(largest_win) else max(largest_win, pnl)
            win_streak, loss_streak = win_streak + 1, 0
        elif pnl < 0:
            losses += 1
            gross_loss += pnl
            largest_loss = pnl if math.isnan(largest_loss) else min(largest_loss, pnl)
            win_streak, loss_streak = 0, loss_streak + 1
        else:
            win_streak = loss_streak = 0
        longest_win = max(longest_win, win_streak)
        longest_loss = max(longest_loss, loss_streak)
    fees = 0.0
    for fee in trips["fees"].tolist() if "fees" in trips.columns else [math.nan]:
        fees += fee
    holding = trips["holding_seconds"].tolist() if "holding_seconds" in trips.columns else []
    holding_total = 0.0
    for seconds in holding:
        holding_total += seconds
    average_win = gross_profit / wins if wins else math.nan
    average_loss = gross_loss / losses if losses else math.nan
    return {
        "trades": trades, "winning_trades": wins, "losing_trades": losses, "breakeven_trades": trades - wins - losses,
        "win_rate": wins / trades if trades else math.nan,
        "profit_factor": gross_profit / abs(gross_loss) if losses and gross_loss != 0 else math.nan,
        "payoff_ratio": average_win / abs(average_loss) if wins and losses else math.nan,
        "expectancy": total / trades if trades else math.nan,
        "average_win": average_win, "average_loss": average_loss,
        "largest_win": largest_win, "largest_loss": largest_loss,
        "longest_winning_streak": longest_win, "longest_losing_streak": longest_loss,
        "total_pnl": total, "gross_profit": gross_profit, "gross_loss": gross_loss, "fees": fees,
        "average_holding_seconds": holding_total / len(holding) if holding else math.nan,
    }
