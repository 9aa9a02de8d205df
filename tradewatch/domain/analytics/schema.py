"""The documented column schema of every DataFrame the analytics read, and its validation.

The analytics take plain pandas DataFrames, so they work the same on the audit trail
(``frames_from_trail``) and in a notebook. One row per fill, per order, per signal, per quote,
per account update. Times are ``datetime64[ns, UTC]`` (naive times are read as UTC; strings and
integer nanoseconds are converted); money and prices are float64 in the account currency;
quantities are positive float64 with the direction in ``side``.

``prepare(frame, SPEC)`` checks and converts a frame. A missing required column is an error
that names the frame, the column and what is accepted. A bad value in one row (a negative
quantity, an unknown side, an unparseable time) drops that row only and is reported as a
``RowProblem``: the good rows beside it are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["time", "text", "float", "positive", "nonnegative", "side", "direction", "status", "object"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = True
    meaning: str = ""


@dataclass(frozen=True)
class FrameSpec:
    name: str
    columns: tuple[Column, ...]
    key: str | None = None  # unique per row when set (duplicates keep the first and are reported)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def describe(self) -> str:
        """A Markdown table of the columns, for error messages and the README."""
        lines = ["| column | type | required | meaning |", "| --- | --- | --- | --- |"]
        lines += [f"| {c.name} | {c.kind} | {'yes' if c.required else 'no'} | {c.meaning} |" for c in self.columns]
        return "\n".join(lines)


FILLS = FrameSpec(
    "fills",
    (
        Column("occurred_at", "time", meaning="when the fill happened (UTC)"),
        Column("fill_id", "text", meaning="unique per fill"),
        Column("symbol", "text", meaning="instrument"),
        Column("side", "side", meaning="buy or sell"),
        Column("quantity", "positive", meaning="filled quantity, > 0"),
        Column("price", "positive", meaning="fill price"),
        Column("fee", "float", required=False, meaning="fees paid, currency (default 0)"),
        Column("order_id", "text", required=False, meaning="the order filled (default: the fill_id)"),
        Column("signal_id", "text", required=False, meaning="the signal behind the order"),
        Column("strategy_id", "text", required=False, meaning="strategy"),
        Column("venue", "text", required=False, meaning="execution venue"),
        Column("bid", "float", required=False, meaning="best bid at the fill"),
        Column("ask", "float", required=False, meaning="best ask at the fill"),
        Column("arrival_price", "float", required=False, meaning="mid when the order arrived"),
        Column("vwap", "float", required=False, meaning="market VWAP over the order's life so far"),
    ),
    key="fill_id",
)

ORDERS = FrameSpec(
    "orders",
    (
        Column("order_id", "text", meaning="unique per order"),
        Column("symbol", "text", meaning="instrument"),
        Column("side", "side", meaning="buy or sell"),
        Column("quantity", "positive", meaning="ordered quantity Q, > 0"),
        Column("submitted_at", "time", meaning="when the order was submitted (UTC)"),
        Column("status", "status", meaning="final status: submitted, accepted, rejected, cancelled, expired"),
        Column("accepted_at", "time", required=False, meaning="when the venue accepted it"),
        Column("ended_at", "time", required=False, meaning="when it was rejected, cancelled or expired"),
        Column("decision_price", "float", required=False, meaning="P_d, the price when the decision was taken"),
        Column("order_type", "text", required=False, meaning="market or limit"),
        Column("limit_price", "float", required=False, meaning="limit price"),
        Column("signal_id", "text", required=False, meaning="the signal behind the order"),
        Column("strategy_id", "text", required=False, meaning="strategy"),
        Column("venue", "text", required=False, meaning="venue"),
    ),
    key="order_id",
)

SIGNALS = FrameSpec(
    "signals",
    (
        Column("signal_id", "text", meaning="unique per signal"),
        Column("occurred_at", "time", meaning="when the signal was produced (UTC)"),
        Column("symbol", "text", meaning="instrument"),
        Column("direction", "direction", meaning="long, short or flat"),
        Column("confidence", "nonnegative", required=False, meaning="0..1 (default 1)"),
        Column("strategy_id", "text", required=False, meaning="strategy"),
        Column("horizon_seconds", "float", required=False, meaning="the horizon the signal is for"),
        Column("model", "text", required=False, meaning="model that produced it"),
    ),
    key="signal_id",
)

# Long format: one row per (signal, factor). A signal with no row has no factors.
FACTOR_EXPOSURES = FrameSpec(
    "factor_exposures",
    (
        Column("signal_id", "text", meaning="the signal"),
        Column("factor", "text", meaning="factor name"),
        Column("exposure", "float", meaning="the signal's exposure to the factor (any sign)"),
    ),
)

QUOTES = FrameSpec(
    "quotes",
    (
        Column("occurred_at", "time", meaning="when the quote was observed (UTC)"),
        Column("symbol", "text", meaning="instrument"),
        Column("bid", "float", required=False, meaning="best bid"),
        Column("ask", "float", required=False, meaning="best ask"),
        Column("last", "float", required=False, meaning="last trade price"),
    ),
)

ACCOUNT = FrameSpec(
    "account",
    (
        Column("occurred_at", "time", meaning="when the engine reported it (UTC)"),
        Column("equity", "float", meaning="account equity, currency"),
    ),
)

SIDES = ("buy", "sell")
DIRECTIONS = ("long", "short", "flat")
STATUSES = ("submitted", "accepted", "rejected", "cancelled", "expired")
_CATEGORIES = {"side": SIDES, "direction": DIRECTIONS, "status": STATUSES}


class SchemaError(ValueError):
    """A frame cannot be used at all (a required column is missing)."""


@dataclass(frozen=True)
class RowProblem:
    frame: str
    row: object  # the index label of the dropped row
    column: str
    problem: str

    def __str__(self) -> str:
        return f"{self.frame} row {self.row!r}, column {self.column!r}: {self.problem}; the row was left out"

    def to_dict(self) -> dict:
        return {"frame": self.frame, "row": str(self.row), "column": self.column, "problem": self.problem}


@dataclass
class Prepared:
    frame: pd.DataFrame
    problems: list[RowProblem] = field(default_factory=list)
    # Positions (in the input frame) of the rows kept; None when every row was kept.
    kept: np.ndarray | None = None


def _as_utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(values):
        return pd.to_datetime(values, unit="ns", utc=True)
    if pd.api.types.is_datetime64_any_dtype(values):
        converted = pd.to_datetime(values, utc=True)
    else:
        converted = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    return converted.astype("datetime64[ns, UTC]")


def prepare(frame: pd.DataFrame, spec: FrameSpec, *, max_problems: int = 100,
            key_codes: np.ndarray | None = None) -> Prepared:
    """Check ``frame`` against ``spec``; return a converted copy and the rows left out.

    Missing optional columns are added (NaN, None, or the documented default). Columns the
    spec does not name are kept as they are. At most ``max_problems`` problems are listed
    individually; the count of dropped rows is always exact (``len(frame) - len(result)``).

    ``key_codes``: the key column already hashed by the caller (one integer per row, equal for
    equal keys, numbered in order of first appearance, -1 for missing, as ``pd.factorize``
    gives them); the duplicate check then uses them instead of hashing the keys again.
    """
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"{spec.name}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{spec.name}: missing required column(s) {', '.join(missing)}; the {spec.name} frame has these columns:\n"
            + spec.describe()
        )
    out = frame.copy()
    bad = np.zeros(len(out), dtype=bool)
    problems: list[RowProblem] = []

    def flag(mask: np.ndarray, column: str, problem: str) -> None:
        nonlocal bad
        new = mask & ~bad
        if new.any():
            for label in out.index[new][: max(0, max_problems - len(problems))]:
                problems.append(RowProblem(spec.name, label, column, problem))
        bad |= mask

    for col in spec.columns:
        if col.name not in out.columns:
            if col.kind == "time" or col.kind in ("float", "positive", "nonnegative"):
                default = 0.0 if col.name == "fee" else (1.0 if col.name == "confidence" else np.nan)
                out[col.name] = pd.Series(default, index=out.index, dtype="float64") if col.kind != "time" else pd.Series(
                    pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
            else:
                out[col.name] = pd.Series(None, index=out.index, dtype=object)
            continue
        values = out[col.name]
        if col.kind == "time":
            converted = _as_utc(values)
            if col.required:
                flag(converted.isna().to_numpy(), col.name, "missing or not a time (accepted: RFC 3339 text, datetime, integer nanoseconds)")
            out[col.name] = converted
        elif col.kind in ("float", "positive", "nonnegative"):
            converted = pd.to_numeric(values, errors="coerce").astype("float64")
            unparsable = converted.isna().to_numpy() & values.notna().to_numpy()
            flag(unparsable, col.name, "not a number")
            arr = converted.to_numpy()
            if col.required:
                flag(~np.isfinite(arr), col.name, "missing or not finite")
            if col.kind == "positive":
                flag(np.isfinite(arr) & (arr <= 0), col.name, "must be > 0")
            elif col.kind == "nonnegative":
                flag(np.isfinite(arr) & (arr < 0), col.name, "must be >= 0")
            if col.name == "fee":
                converted = converted.fillna(0.0)
            if col.name == "confidence":
                converted = converted.fillna(1.0)
            out[col.name] = converted
        elif col.kind in _CATEGORIES:
            allowed = _CATEGORIES[col.kind]
            valid = values.isin(allowed).to_numpy()
            if not valid.all():  # tolerate case ("BUY") before calling a value wrong
                values = values.where(valid, values[~valid].map(lambda v: v.lower() if isinstance(v, str) else v))
                valid = values.isin(allowed).to_numpy()
                flag(~valid, col.name, f"must be one of {', '.join(allowed)}")
                out[col.name] = values
        elif col.kind == "text":
            if col.required:
                flag(values.isna().to_numpy(), col.name, "missing")
    if spec.key is not None:
        # factorize numbers values in order of first appearance, so a row repeats an earlier key
        # exactly when its code is not above every code before it (one hash pass, not two).
        if key_codes is None:
            codes, _ = pd.factorize(out[spec.key])
        elif len(key_codes) != len(out):
            raise ValueError(f"{spec.name}: {len(key_codes)} key codes for {len(out)} rows")
        else:
            codes = np.asarray(key_codes)
        duplicated = np.zeros(len(codes), dtype=bool)
        if len(codes) > 1:
            duplicated[1:] = (codes[1:] <= np.maximum.accumulate(codes)[:-1]) & (codes[1:] >= 0)
        flag(duplicated & ~bad, spec.key, f"duplicate {spec.key} (the first row with it is kept)")
    if spec is FILLS and "order_id" in out.columns:
        out["order_id"] = out["order_id"].where(out["order_id"].notna(), out["fill_id"])
    if not bad.any():
        return Prepared(out, problems)
    kept = np.flatnonzero(~bad)
    return Prepared(out.iloc[kept], problems, kept)
