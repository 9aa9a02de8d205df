"""Summary statistics of round trips (the ``trips`` frame of ``match_round_trips``), vectorised."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tradewatch.domain.analytics.round_trips import nanoseconds

STATISTIC_KEYS = (
    "trades", "winning_trades", "losing_trades", "breakeven_trades", "win_rate", "profit_factor", "payoff_ratio",
    "expectancy", "average_win", "average_loss", "largest_win", "largest_loss", "longest_winning_streak",
    "longest_losing_streak", "total_pnl", "gross_profit", "gross_loss", "fees", "average_holding_seconds",
)


def longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of consecutive True values (0 when there is none)."""
    if len(flags) == 0:
        return 0
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    if len(starts) == 0:
        return 0
    return int((np.flatnonzero(edges == -1) - starts).max())


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator != 0 and not math.isnan(denominator) else math.nan


def trade_statistics(trips: pd.DataFrame) -> dict:
    """Win/loss statistics of round trips, by their ``pnl`` (net of fees, currency).

    A trip wins when pnl > 0, loses when pnl < 0 and is breakeven when pnl == 0 exactly.
    With N trades, W wins, L losses:

    - trades = N; winning_trades = W; losing_trades = L; breakeven_trades = N - W - L.
    - win_rate = W / N (NaN when N = 0).
    - gross_profit = sum of winning pnl (>= 0); gross_loss = sum of losing pnl (<= 0).
    - profit_factor = gross_profit / |gross_loss| (NaN when there is no loss).
    - average_win = gross_profit / W; average_loss = gross_loss / L (negative); NaN when 0 trips.
    - payoff_ratio = average_win / |average_loss| (NaN without both wins and losses).
    - expectancy = total_pnl / N, the mean pnl per trade, currency. Identity:
      expectancy = win_rate * average_win + loss_rate * average_loss (loss_rate = L / N;
      breakeven trades add 0).
    - largest_win = max pnl of a winner, largest_loss = min pnl of a loser (NaN if none).
    - longest_winning_streak / longest_losing_streak: most consecutive wins / losses with trips
      in exit_at order (stable; input order when there is no exit_at column); a breakeven trip
      ends a streak.
    - total_pnl = sum pnl; fees = sum fees (currency); average_holding_seconds = mean
      holding_seconds (seconds).

    Trips with a NaN pnl are left out. Floats are Python floats (NaN where undefined), counts
    Python ints. Empty input gives zero counts and sums and NaN ratios.
    """
    pnl = trips["pnl"].to_numpy(dtype="float64") if "pnl" in trips.columns else np.array([], dtype="float64")
    if "exit_at" in trips.columns and len(pnl) > 1:
        exit_ns = nanoseconds(trips["exit_at"])
        if bool(np.any(exit_ns[1:] < exit_ns[:-1])):  # already in exit order after match_round_trips
            pnl = pnl[np.argsort(exit_ns, kind="stable")]
    pnl = pnl[~np.isnan(pnl)]
    trades = len(pnl)
    winning = pnl > 0
    losing = pnl < 0
    wins = int(winning.sum())
    losses = int(losing.sum())
    gross_profit = float(pnl[winning].sum())
    gross_loss = float(pnl[losing].sum())
    total = float(pnl.sum())
    average_win = gross_profit / wins if wins else math.nan
    average_loss = gross_loss / losses if losses else math.nan
    fees = float(trips["fees"].to_numpy(dtype="float64").sum()) if "fees" in trips.columns else math.nan
    holding = trips["holding_seconds"].to_numpy(dtype="float64") if "holding_seconds" in trips.columns else np.array([])
    return {
        "trades": trades,
        "winning_trades": wins,
        "losing_trades": losses,
        "breakeven_trades": trades - wins - losses,
        "win_rate": wins / trades if trades else math.nan,
        "profit_factor": _ratio(gross_profit, abs(gross_loss)) if losses else math.nan,
        "payoff_ratio": _ratio(average_win, abs(average_loss)),
        "expectancy": total / trades if trades else math.nan,
        "average_win": float(average_win),
        "average_loss": float(average_loss),
        "largest_win": float(pnl[winning].max()) if wins else math.nan,
        "largest_loss": float(pnl[losing].min()) if losses else math.nan,
        "longest_winning_streak": longest_run(winning),
        "longest_losing_streak": longest_run(losing),
        "total_pnl": total,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "fees": fees,
        "average_holding_seconds": float(holding.mean()) if len(holding) else math.nan,
    }
