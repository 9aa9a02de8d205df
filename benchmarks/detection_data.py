"""A realistic synthetic event stream with injected, labelled anomalies, for the detection benchmark.

The stream is generated directly as an event frame (tradewatch.domain.detection.event_frame
columns) with numpy, about two seconds per million events. It starts at a session open
(14:30 UTC on the given day). What is in it:

* ``symbols`` instruments (default 20), each quoted by one of ``feeds`` market data feeds
  (sources ``marketdata-feed-1`` ..), about one quote per second per symbol.
* ``strategies`` (default 3), each one engine (source ``engine-<strategy>``) sending, per
  order: ``order`` submitted, ``order`` accepted (or, for ``rejection_probability`` of the
  orders, rejected), one ``fill`` and a ``position_update``. Each (strategy, symbol) book
  alternates opening and closing orders, so every second fill closes a round trip and changes
  the book's realized_pnl by the round trip's pnl.
* ``system`` heartbeats from every source every ``heartbeat_seconds`` (plus jitter).

Sessions of ``session_seconds`` (6.5 h) follow one another without an overnight gap (a gap
would make every feed stale). Within a session activity is U-shaped: the rate of quotes and
orders is twice the session mean at the open and the close and half of it at midday; spreads
follow a flatter U. Volatility regimes (multipliers 0.75, 1 and 1.5; exponential durations
with a mean of 90 minutes; each change ramps in over 15 minutes) scale spreads, slippage,
latency, round-trip pnl dispersion and the price random walk, and raise the event rate with
their square root. These are the stream's normal non-stationarity, never labelled.

Metric models (sigma is always the metric's local standard deviation, known exactly here):

| metric | model | local sigma |
| --- | --- | --- |
| spread_bps | s0 * U_spread(t) * R(t) * LogNormal(-v/2, v), v = 0.25^2 | mean * sqrt(e^v - 1) |
| slippage_bps | 0.25 s + 0.5 s * t4 / sqrt(2), s = s0 * U_spread(t) * R(t) | 0.5 s |
| acknowledgement_latency_seconds | LogNormal(median 3/5/8 ms * R^0.25, 0.35) | lognormal std |
| fill_latency_seconds | acknowledgement + LogNormal(median 30 ms * R^0.25, 0.5) | sqrt of the summed variances |
| round_trip_pnl_usd | 0.05 p + p * t5 / sqrt(5/3), p = 200/300/500 USD * R(t) | p |

Injected anomalies (``anomalies=True``), one every ``anomaly_every_seconds`` after a warm-up,
kinds and magnitudes (2.5, 3, 4, 6, 10 sigma) in equal shares, each on an entity that has
had no other anomaly for ``*_cooldown_seconds``:

| kind | entity | what changes | end |
| --- | --- | --- | --- |
| slippage_spike | symbol | the next fill's slippage + k sigma | that fill |
| slippage_level_shift | symbol | every fill's slippage + k sigma for 10 min | start + 10 min |
| spread_level_shift | symbol | every quote's (and fill's) spread + k sigma for 10 min | start + 10 min |
| latency_excursion | strategy | acknowledgement and fill latency of its orders submitted | start + 5 min |
| | | within 5 min + k sigma (each latency its own sigma) | |
| loss_streak | strategy | its next 6 round trips each lose k sigma (pnl = 0.05 p - k p) | the 6th closing fill |
| stale_feed | source | a market data feed silent (no quote, no heartbeat) | start + silence |
| | | for 20, 40, 80, 160 or 320 s | |

``generate`` returns a ``Stream``: the event frame (seq 0.. in time order, UUID event ids)
and the labels (one row per anomaly: id, kind, magnitude, start/end ns, the entities and
metrics it affects, and the ids of the events it changed). Streams of one seed and tag with and
without anomalies share every random draw but the schedule's, so they differ by exactly the
injections (the tests check the labels that way). ``StreamShape.time_scaled`` shortens the
schedule for short test streams.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradewatch.domain.detection.event_frame import EVENT_COLUMNS, NUMBER_PAYLOAD_COLUMNS

NS = 1_000_000_000
#: 2026-03-02T14:30:00Z, a Monday's US open.
START_NS = 1_772_461_800 * NS
MAGNITUDES: tuple[float, ...] = (2.5, 3.0, 4.0, 6.0, 10.0)
SILENCE_SECONDS: tuple[float, ...] = (20.0, 40.0, 80.0, 160.0, 320.0)
KINDS: tuple[str, ...] = ("slippage_spike", "slippage_level_shift", "spread_level_shift", "latency_excursion",
                          "loss_streak", "stale_feed")
#: The metrics each kind of anomaly moves: the metric streams (metrics.py), the rules' own metrics
#: (loss_streak's drawdown_speed_usd, stale_feed's feed_silence_seconds) and "fill_features", the
#: per-fill feature vector the model detectors score (features.py), for kinds that change fills.
KIND_METRICS: dict[str, tuple[str, ...]] = {
    "slippage_spike": ("slippage_bps", "fill_features"),
    "slippage_level_shift": ("slippage_bps", "fill_features"),
    "spread_level_shift": ("spread_bps", "fill_features"),
    "latency_excursion": ("fill_latency_seconds", "acknowledgement_latency_seconds", "fill_features"),
    "loss_streak": ("round_trip_pnl_usd", "drawdown_speed_usd"),
    "stale_feed": ("feed_silence_seconds",),
}
LABEL_COLUMNS = ("anomaly_id", "kind", "magnitude", "silence_seconds", "start_ns", "end_ns", "entity_kind", "entity",
                 "symbols", "strategies", "sources", "metrics", "sigma", "shift", "event_ids")
_SPREAD_LOG_SD = 0.25
_POSITION_DELAY_S = 0.001


@dataclass(frozen=True)
class StreamShape:
    """The stream's composition; rates are session means."""

    symbols: int = 20
    strategies: tuple[str, ...] = ("momentum", "mean_reversion", "breakout")
    feeds: int = 4
    quotes_per_second_per_symbol: float = 1.0
    fills_per_second_per_strategy: float = 2.0
    rejection_probability: float = 0.02
    heartbeat_seconds: float = 5.0
    session_seconds: float = 23_400.0
    slippage_degrees_of_freedom: float = 4.0
    pnl_degrees_of_freedom: float = 5.0
    regime_levels: tuple[float, ...] = (0.75, 1.0, 1.5)
    regime_mean_seconds: float = 5_400.0
    regime_ramp_seconds: float = 900.0
    warmup_seconds: float = 900.0
    anomaly_every_seconds: float = 90.0
    symbol_cooldown_seconds: float = 1_800.0
    strategy_cooldown_seconds: float = 600.0
    source_cooldown_seconds: float = 900.0
    level_shift_seconds: float = 600.0
    latency_excursion_seconds: float = 300.0
    loss_streak_length: int = 6
    magnitudes: tuple[float, ...] = MAGNITUDES
    silence_seconds: tuple[float, ...] = SILENCE_SECONDS

    def time_scaled(self, factor: float) -> StreamShape:
        """The same stream with the anomaly schedule's durations (warm-up, spacing, cooldowns,
        anomaly durations, silences) times ``factor``: short test streams still get anomalies."""
        names = ("warmup_seconds", "anomaly_every_seconds", "symbol_cooldown_seconds", "strategy_cooldown_seconds",
                 "source_cooldown_seconds", "level_shift_seconds", "latency_excursion_seconds")
        update = {name: getattr(self, name) * factor for name in names}
        update["silence_seconds"] = tuple(max(s * factor, 2 * self.heartbeat_seconds) for s in self.silence_seconds)
        return dataclasses.replace(self, **update)

    def events_per_second(self) -> float:
        """Expected events per second: quotes, 4 per filled order, 2 per rejected one, heartbeats."""
        fills = self.fills_per_second_per_strategy * len(self.strategies)
        return (self.quotes_per_second_per_symbol * self.symbols + 4 * fills
                + 2 * fills * self.rejection_probability + (self.feeds + len(self.strategies)) / self.heartbeat_seconds)


@dataclass
class Stream:
    events: pd.DataFrame
    labels: pd.DataFrame
    seed: int
    start_ns: int
    end_ns: int
    shape: StreamShape = field(default_factory=StreamShape)


def _symbol_names(shape: StreamShape) -> list[str]:
    return [f"SYM{i:02d}" for i in range(shape.symbols)]


def _feed_names(shape: StreamShape) -> list[str]:
    return [f"marketdata-feed-{i + 1}" for i in range(shape.feeds)]


def _engine_names(shape: StreamShape) -> list[str]:
    return [f"engine-{name}" for name in shape.strategies]


# ----------------------------------------------------------------------------- the clock


class _Clock:
    """Per-second grid of the intraday pattern and the volatility regime."""

    def __init__(self, rng: np.random.Generator, shape: StreamShape, seconds: float) -> None:
        self.seconds = seconds
        grid = np.arange(int(np.ceil(seconds)) + 2, dtype=np.float64)
        self.grid = grid
        tau = 2 * (grid % shape.session_seconds) / shape.session_seconds - 1  # -1 at the open, +1 at the close
        # E[tau^2] = 1/3 over a session: both patterns have mean 1.
        self.activity = (0.55 + 1.65 * tau**2) / 1.1
        self.spread_pattern = (0.8 + 0.9 * tau**2) / 1.1
        self.regime = self._regime(rng, shape, grid)

    @staticmethod
    def _regime(rng: np.random.Generator, shape: StreamShape, grid: np.ndarray) -> np.ndarray:
        levels = np.asarray(shape.regime_levels, dtype=np.float64)
        log_path = np.zeros_like(grid)
        current = float(np.log(1.0))
        t = 0.0
        log_path[:] = current
        while True:
            t += rng.exponential(shape.regime_mean_seconds)
            if t >= grid[-1]:
                break
            choices = levels[~np.isclose(np.log(levels), current)]
            target = float(np.log(rng.choice(choices)))
            ramp = np.clip((grid - t) / shape.regime_ramp_seconds, 0.0, 1.0)
            after = grid >= t
            log_path[after] = current + (target - current) * ramp[after]
            current = target
        return np.exp(log_path)

    def expected_rate(self, shape: StreamShape) -> np.ndarray:
        """Expected events per second at each second of the grid."""
        orders = shape.fills_per_second_per_strategy * len(shape.strategies) * (4 + 2 * shape.rejection_probability)
        varying = (shape.quotes_per_second_per_symbol * shape.symbols + orders) * self.activity * np.sqrt(self.regime)
        return varying + (shape.feeds + len(shape.strategies)) / shape.heartbeat_seconds

    def trim(self, shape: StreamShape, events: int) -> bool:
        """Cut the grid where ``events`` (plus 4%) are expected; False if the grid is too short."""
        cumulative = np.cumsum(self.expected_rate(shape))
        end = int(np.searchsorted(cumulative, events * 1.04 + 50)) + 1
        if end >= len(self.grid) - 2:
            return False
        self.seconds = float(end)
        for name in ("grid", "activity", "spread_pattern", "regime"):
            setattr(self, name, getattr(self, name)[:end + 2])
        return True

    def at(self, values: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        return values[np.clip(seconds.astype(np.int64), 0, len(values) - 1)]

    def arrivals(self, rng: np.random.Generator, rate: float, weight: np.ndarray) -> np.ndarray:
        """Times (s) of a Poisson process of intensity rate * weight[second] (time rescaling)."""
        cumulative = np.concatenate([[0.0], np.cumsum(rate * weight[:-1])])
        count = rng.poisson(cumulative[-1])
        points = np.sort(rng.uniform(0.0, cumulative[-1], count))
        return np.interp(points, cumulative, self.grid)


def _standard_t(rng: np.random.Generator, df: float, size: int) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size) / np.sqrt(df / (df - 2))


def _lognormal_sd(median: np.ndarray, log_sd: float) -> np.ndarray:
    variance = median**2 * np.exp(log_sd**2) * (np.exp(log_sd**2) - 1)
    return np.sqrt(variance)


# ----------------------------------------------------------------------------- the schedule


@dataclass
class _Label:
    anomaly_id: int
    kind: str
    magnitude: float
    silence_seconds: float
    start_s: float
    entity_kind: str
    entity: int  # index into symbols, strategies or feeds
    name: str = ""
    end_s: float = float("nan")
    sigma: float = float("nan")
    shift: float = float("nan")
    symbols: set = field(default_factory=set)
    strategies: set = field(default_factory=set)
    sources: set = field(default_factory=set)
    events: list = field(default_factory=list)  # (block, index) pairs


def _schedule(rng: np.random.Generator, shape: StreamShape, seconds: float) -> list[_Label]:
    """Anomaly start times, kinds, magnitudes and entities (entities rested for their cooldown)."""
    tail = shape.level_shift_seconds + shape.anomaly_every_seconds
    count = int((seconds - shape.warmup_seconds - tail) // shape.anomaly_every_seconds)
    if count <= 0:
        return []
    combos = [(kind, index) for kind in KINDS for index in range(len(shape.magnitudes))]
    order = np.concatenate([rng.permutation(len(combos)) for _ in range(count // len(combos) + 1)])[:count]
    entity_counts = {"symbol": shape.symbols, "strategy_id": len(shape.strategies), "source": shape.feeds}
    cooldowns = {"symbol": shape.symbol_cooldown_seconds, "strategy_id": shape.strategy_cooldown_seconds,
                 "source": shape.source_cooldown_seconds}
    last_used = {kind: np.full(n, -np.inf) for kind, n in entity_counts.items()}
    labels = []
    for i, combo in enumerate(order):
        kind, level = combos[combo]
        start = shape.warmup_seconds + (i + rng.uniform(0.1, 0.9)) * shape.anomaly_every_seconds
        entity_kind = ("symbol" if kind in ("slippage_spike", "slippage_level_shift", "spread_level_shift")
                       else "source" if kind == "stale_feed" else "strategy_id")
        rested = np.flatnonzero(last_used[entity_kind] <= start - cooldowns[entity_kind])
        if len(rested) == 0:
            continue  # every entity of this kind is still busy: skip rather than overlap
        entity = int(rng.choice(rested))
        last_used[entity_kind][entity] = start
        stale = kind == "stale_feed"
        labels.append(_Label(
            anomaly_id=len(labels), kind=kind, start_s=start, entity_kind=entity_kind, entity=entity,
            magnitude=float("nan") if stale else shape.magnitudes[level],
            silence_seconds=shape.silence_seconds[level] if stale else float("nan"),
        ))
    return labels


# ----------------------------------------------------------------------------- the generator


def generate(events: int, seed: int, *, anomalies: bool = True, start_ns: int = START_NS,
             shape: StreamShape | None = None, stream_tag: int | None = None) -> Stream:
    """A stream of exactly ``events`` events (the first ``events`` in time of a slightly longer
    one), with labelled anomalies when ``anomalies``. ``stream_tag`` goes into the event ids so
    that streams of one seed with and without anomalies never share an id."""
    shape = shape or StreamShape()
    tag = (1 if anomalies else 2) if stream_tag is None else stream_tag
    # Long enough at the quietest activity; the clock is then cut where the events are expected.
    horizon = events / (0.4 * shape.events_per_second()) + 120.0
    while True:
        stream = _generate(events, seed, anomalies, start_ns, shape, horizon, tag)
        if stream is not None:
            return stream
        horizon *= 1.5  # an unusually quiet draw: generate a longer stretch


def _generate(target: int, seed: int, anomalies: bool, start_ns: int, shape: StreamShape, horizon: float,
              tag: int) -> Stream | None:
    rng = np.random.default_rng([seed, tag])
    clock = _Clock(rng, shape, horizon)
    if not clock.trim(shape, target):
        return None
    seconds = clock.seconds
    symbols = np.array(_symbol_names(shape), dtype=object)
    strategies = np.array(shape.strategies, dtype=object)
    feeds = np.array(_feed_names(shape), dtype=object)
    engines = np.array(_engine_names(shape), dtype=object)
    n_sym, n_str = shape.symbols, len(shape.strategies)
    feed_of_symbol = np.arange(n_sym) % shape.feeds
    venues = np.array(["XNAS", "ARCX", "BATS"], dtype=object)
    liquidity = rng.uniform(0.5, 1.5, n_sym)
    liquidity /= liquidity.sum()
    base_spread = rng.uniform(2.0, 8.0, n_sym)  # bps
    base_price = rng.uniform(20.0, 500.0, n_sym)
    # The schedule has its own generator: a stream with anomalies and one without, of the same
    # seed and tag, share every other draw, so they differ by exactly the injections.
    labels = _schedule(np.random.default_rng([seed, tag, 1]), shape, seconds) if anomalies else []
    for label in labels:
        names = {"symbol": symbols, "strategy_id": strategies, "source": feeds}[label.entity_kind]
        label.name = str(names[label.entity])

    # Mid prices: a random walk per symbol on the one-second grid, 1 bp/s scaled by the regime.
    steps = rng.normal(0.0, 1e-4, (n_sym, len(clock.grid))) * clock.regime[None, :]
    log_mid = np.log(base_price)[:, None] + np.cumsum(steps, axis=1)

    def mid(symbol: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.exp(log_mid[symbol, np.clip(t.astype(np.int64), 0, len(clock.grid) - 1)])

    def spread_mean(symbol: np.ndarray, t: np.ndarray) -> np.ndarray:
        return base_spread[symbol] * clock.at(clock.spread_pattern, t) * clock.at(clock.regime, t)

    def spread_draw(symbol: np.ndarray, t: np.ndarray) -> np.ndarray:
        noise = np.exp(rng.normal(-_SPREAD_LOG_SD**2 / 2, _SPREAD_LOG_SD, len(t)))
        return spread_mean(symbol, t) * noise

    activity = clock.activity * np.sqrt(clock.regime)

    # ---- quotes
    q_t = clock.arrivals(rng, shape.quotes_per_second_per_symbol * n_sym, activity)
    q_sym = rng.choice(n_sym, len(q_t), p=liquidity)
    q_spread = spread_draw(q_sym, q_t)

    # ---- filled orders: submit, acknowledgement and execution latency, slippage
    o_t = clock.arrivals(rng, shape.fills_per_second_per_strategy * n_str, activity)
    n_o = len(o_t)
    o_str = rng.integers(0, n_str, n_o)
    o_sym = rng.choice(n_sym, n_o, p=liquidity)
    latency_scale = clock.at(clock.regime, o_t) ** 0.25
    ack_median = np.array([0.003, 0.005, 0.008] * (n_str // 3 + 1))[:n_str][o_str] * latency_scale
    exec_median = 0.030 * latency_scale
    ack = ack_median * np.exp(rng.normal(0.0, 0.35, n_o)) + 1e-4
    execution = exec_median * np.exp(rng.normal(0.0, 0.5, n_o))
    ack_sd = _lognormal_sd(ack_median, 0.35)
    fill_sd = np.sqrt(ack_sd**2 + _lognormal_sd(exec_median, 0.5) ** 2)

    for label in labels:
        if label.kind == "latency_excursion":
            hit = np.flatnonzero((o_str == label.entity) & (o_t >= label.start_s)
                                 & (o_t < label.start_s + shape.latency_excursion_seconds))
            label.end_s = label.start_s + shape.latency_excursion_seconds
            if len(hit) == 0:
                continue
            k = label.magnitude
            ack[hit] += k * ack_sd[hit]
            execution[hit] += k * (fill_sd[hit] - ack_sd[hit])
            label.sigma, label.shift = float(np.mean(fill_sd[hit])), float(k * np.mean(fill_sd[hit]))
            label.symbols.update(symbols[o_sym[hit]])
            label.strategies.add(strategies[label.entity])
            label.sources.add(engines[label.entity])
            label.events += [("submitted", int(j)) for j in hit] + [("accepted", int(j)) for j in hit]
            label.events += [("fill", int(j)) for j in hit]

    f_t = o_t + ack + execution
    f_sym = o_sym
    slip_scale = spread_mean(f_sym, f_t)
    slip_sd = 0.5 * slip_scale
    slippage = 0.25 * slip_scale + slip_sd * _standard_t(rng, shape.slippage_degrees_of_freedom, n_o)
    f_spread = spread_draw(f_sym, f_t)

    for label in labels:
        if label.kind not in ("slippage_spike", "slippage_level_shift", "spread_level_shift"):
            continue
        k = label.magnitude
        if label.kind == "slippage_spike":
            candidates = np.flatnonzero((f_sym == label.entity) & (f_t >= label.start_s))
            hit = candidates[np.argmin(f_t[candidates])][None] if len(candidates) else candidates
            label.end_s = float(f_t[hit[0]]) if len(hit) else label.start_s
        else:
            label.end_s = label.start_s + shape.level_shift_seconds
            hit = np.flatnonzero((f_sym == label.entity) & (f_t >= label.start_s) & (f_t < label.end_s))
        label.symbols.add(symbols[label.entity])
        if label.kind == "spread_level_shift":
            q_hit = np.flatnonzero((q_sym == label.entity) & (q_t >= label.start_s) & (q_t < label.end_s))
            sd = spread_mean(q_sym[q_hit], q_t[q_hit]) * np.sqrt(np.exp(_SPREAD_LOG_SD**2) - 1)
            q_spread[q_hit] += k * sd
            f_spread[hit] += k * spread_mean(f_sym[hit], f_t[hit]) * np.sqrt(np.exp(_SPREAD_LOG_SD**2) - 1)
            label.sigma = float(np.mean(sd)) if len(sd) else float("nan")
            label.sources.add(feeds[feed_of_symbol[label.entity]])
            label.events += [("quote", int(j)) for j in q_hit]
        else:
            slippage[hit] += k * slip_sd[hit]
            label.sigma = float(np.mean(slip_sd[hit])) if len(hit) else float("nan")
            label.strategies.update(strategies[o_str[hit]])
            label.sources.update(engines[o_str[hit]])
        label.shift = k * label.sigma
        label.events += [("fill", int(j)) for j in hit]

    # ---- books: in fill-time order each (strategy, symbol) book alternates open and close
    book = o_str * n_sym + o_sym
    order = np.lexsort((f_t, book))
    sorted_book = book[order]
    first_of_book = np.r_[True, sorted_book[1:] != sorted_book[:-1]]
    starts = np.maximum.accumulate(np.where(first_of_book, np.arange(n_o), 0))
    rank = np.empty(n_o, dtype=np.int64)
    rank[order] = np.arange(n_o) - starts
    closing = rank % 2 == 1
    open_buy = rng.random(n_o) < 0.5
    open_quantity = rng.integers(1, 11, n_o) * 100.0
    previous = np.empty(n_o, dtype=np.int64)  # for a close: its book's opening order
    previous[order[1:]] = order[:-1]
    previous[order[0]] = order[0]
    buy = np.where(closing, ~open_buy[previous], open_buy)
    quantity = np.where(closing, open_quantity[previous], open_quantity)
    sign = np.where(buy, 1.0, -1.0)

    arrival = mid(o_sym, o_t)
    price = arrival * (1 + sign * slippage / 1e4)
    f_mid = mid(f_sym, f_t)
    pnl_sd = np.array([200.0, 300.0, 500.0] * (n_str // 3 + 1))[:n_str][o_str] * clock.at(clock.regime, f_t)
    pnl = 0.05 * pnl_sd + pnl_sd * _standard_t(rng, shape.pnl_degrees_of_freedom, n_o)

    for label in labels:
        if label.kind != "loss_streak":
            continue
        candidates = np.flatnonzero(closing & (o_str == label.entity) & (f_t >= label.start_s))
        hit = candidates[np.argsort(f_t[candidates])][: shape.loss_streak_length]
        if len(hit) == 0:
            label.end_s = label.start_s
            continue
        k = label.magnitude
        pnl[hit] = 0.05 * pnl_sd[hit] - k * pnl_sd[hit]
        label.end_s = float(f_t[hit].max()) + _POSITION_DELAY_S
        label.sigma, label.shift = float(np.mean(pnl_sd[hit])), float(-k * np.mean(pnl_sd[hit]))
        label.symbols.update(symbols[o_sym[hit]])
        label.strategies.add(strategies[label.entity])
        label.sources.add(engines[label.entity])
        label.events += [("position", int(j)) for j in hit]

    # realized_pnl: the running sum of the book's round-trip pnl (in fill order within the book).
    step = np.where(closing, pnl, 0.0)[order]
    cumulative = np.cumsum(step)
    realized = np.empty(n_o)
    realized[order] = cumulative - _segment_base(cumulative - step, first_of_book)
    position = np.where(closing, 0.0, sign * quantity)

    # ---- rejected orders (their own order ids: a rejection changes no position)
    r_t = clock.arrivals(rng, shape.fills_per_second_per_strategy * n_str * shape.rejection_probability, activity)
    n_r = len(r_t)
    r_str = rng.integers(0, n_str, n_r)
    r_sym = rng.choice(n_sym, n_r, p=liquidity)
    r_ack = 0.004 * np.exp(rng.normal(0.0, 0.35, n_r)) + 1e-4

    # ---- heartbeats
    beat_sources = np.concatenate([feeds, engines])
    beat_t, beat_src = [], []
    for index in range(len(beat_sources)):
        times = np.arange(rng.uniform(0, shape.heartbeat_seconds), seconds, shape.heartbeat_seconds)
        beat_t.append(np.maximum(times + rng.uniform(-0.3, 0.3, len(times)), 0.0))
        beat_src.append(np.full(len(times), index))
    h_t = np.concatenate(beat_t)
    h_src = np.concatenate(beat_src)

    # ---- stale feeds: drop the feed's quotes and heartbeats for the silence
    q_keep = np.ones(len(q_t), dtype=bool)
    h_keep = np.ones(len(h_t), dtype=bool)
    for label in labels:
        if label.kind != "stale_feed":
            continue
        label.end_s = label.start_s + label.silence_seconds
        feed_symbols = np.flatnonzero(feed_of_symbol == label.entity)
        q_keep &= ~(np.isin(q_sym, feed_symbols) & (q_t >= label.start_s) & (q_t < label.end_s))
        h_keep &= ~((h_src == label.entity) & (h_t >= label.start_s) & (h_t < label.end_s))
        label.sources.add(feeds[label.entity])
        label.symbols.update(symbols[feed_symbols])

    # ---- the frame
    blocks = {
        "quote": _quotes(q_t, q_sym, q_spread, mid(q_sym, q_t), rng, symbols, feeds[feed_of_symbol[q_sym]], q_keep),
        "submitted": _orders(o_t, "submitted", o_str, o_sym, buy, quantity, arrival, symbols, strategies, engines,
                             venues),
        "accepted": _orders(o_t + ack, "accepted", o_str, o_sym, buy, quantity, arrival, symbols, strategies, engines,
                            venues),
        "fill": _fills(f_t, o_str, o_sym, buy, quantity, price, arrival, f_mid, f_spread, symbols, strategies, engines,
                       venues, rng),
        "position": _positions(f_t + _POSITION_DELAY_S, o_str, o_sym, position, realized, symbols, strategies,
                               engines),
        "rejected_submitted": _orders(r_t, "submitted", r_str, r_sym, rng.random(n_r) < 0.5,
                                      rng.integers(1, 11, n_r) * 100.0, mid(r_sym, r_t), symbols, strategies, engines,
                                      venues, order_prefix="r"),
        "rejected": _orders(r_t + r_ack, "rejected", r_str, r_sym, np.zeros(n_r, dtype=bool), np.full(n_r, 100.0),
                            mid(r_sym, r_t), symbols, strategies, engines, venues, order_prefix="r"),
        "heartbeat": _heartbeats(h_t, beat_sources[h_src], h_keep),
    }
    # The rejected order's second event repeats the first one's side and quantity.
    blocks["rejected"]["side"] = blocks["rejected_submitted"]["side"]
    blocks["rejected"]["quantity"] = blocks["rejected_submitted"]["quantity"]
    frame, ids = _assemble(blocks, seed, tag, start_ns)
    if len(frame) < target:
        return None
    frame = frame.iloc[:target].reset_index(drop=True)
    frame["seq"] = np.arange(target, dtype=np.int64)
    end_ns = int(frame["occurred_at_ns"].iloc[-1]) if target else start_ns
    return Stream(events=frame, labels=_label_frame(labels, ids, start_ns, end_ns, set(frame["event_id"])),
                  seed=seed, start_ns=start_ns, end_ns=end_ns, shape=shape)


def _segment_base(values_at_first: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Forward-fill each segment's first value over the segment."""
    index = np.maximum.accumulate(np.where(first, np.arange(len(first)), 0))
    return values_at_first[index]


def _block(t: np.ndarray, event_type: str, **columns) -> dict:
    body = {"event_type": event_type, "t": t}
    body.update(columns)
    return body


def _quotes(t, sym, spread, mid_price, rng, symbols, sources, keep) -> dict:
    half = mid_price * spread / 2e4
    volume = np.round(rng.lognormal(np.log(300), 0.8, len(t)))
    return _block(t[keep], "market_data", symbol=symbols[sym][keep], source=sources[keep],
                  bid=(mid_price - half)[keep], ask=(mid_price + half)[keep], last=mid_price[keep],
                  volume=volume[keep], index=np.flatnonzero(keep))


def _orders(t, status, strategy, sym, buy, quantity, decision_price, symbols, strategies, engines, venues,
            order_prefix="o") -> dict:
    n = len(t)
    return _block(t, "order", status=np.full(n, status, dtype=object), strategy_id=strategies[strategy],
                  symbol=symbols[sym], source=engines[strategy], order_index=np.arange(n), order_prefix=order_prefix,
                  side=np.where(buy, "buy", "sell").astype(object), quantity=quantity,
                  decision_price=decision_price, venue=venues[sym % len(venues)], index=np.arange(n))


def _fills(t, strategy, sym, buy, quantity, price, arrival, mid_price, spread, symbols, strategies, engines, venues,
           rng) -> dict:
    n = len(t)
    half = mid_price * spread / 2e4
    maker = rng.random(n) < 0.3
    return _block(t, "fill", strategy_id=strategies[strategy], symbol=symbols[sym], source=engines[strategy],
                  order_index=np.arange(n), order_prefix="o", side=np.where(buy, "buy", "sell").astype(object),
                  quantity=quantity, price=price, arrival_price=arrival, bid=mid_price - half, ask=mid_price + half,
                  fee=price * quantity * 0.5e-4, venue=venues[sym % len(venues)],
                  liquidity=np.where(maker, "maker", "taker").astype(object), index=np.arange(n))


def _positions(t, strategy, sym, position, realized, symbols, strategies, engines) -> dict:
    return _block(t, "position_update", strategy_id=strategies[strategy], symbol=symbols[sym],
                  source=engines[strategy], quantity=position, realized_pnl=realized,
                  unrealized_pnl=np.zeros(len(t)), index=np.arange(len(t)))


def _heartbeats(t, sources, keep) -> dict:
    n = int(keep.sum())
    return _block(t[keep], "system", source=sources[keep], component=np.full(n, "heartbeat", dtype=object),
                  level=np.full(n, "info", dtype=object), index=np.flatnonzero(keep))


def _assemble(blocks: dict[str, dict], seed: int, tag: int, start_ns: int) -> tuple[pd.DataFrame, dict]:
    """One frame in time order; ``ids[(block, index)]`` is the event id of a block's row."""
    columns: dict[str, list] = {name: [] for name in EVENT_COLUMNS}
    times, ids = [], {}
    for number, (name, body) in enumerate(blocks.items()):
        n = len(body["t"])
        prefix = f"{seed & 0xFFFFFFFF:08x}-{tag & 0xFFFF:04x}-4{number:03x}-8000-"
        block_ids = np.array([f"{prefix}{i:012x}" for i in body["index"]], dtype=object)
        ids.update(zip(((name, int(i)) for i in body["index"]), block_ids))
        ns = start_ns + np.round(body["t"] * NS).astype(np.int64)
        times.append(ns)
        for column in EVENT_COLUMNS:
            if column in ("seq", "occurred_at_ns", "received_at_ns"):
                continue
            if column == "event_id":
                values = block_ids
            elif column == "event_type":
                values = np.full(n, body["event_type"], dtype=object)
            elif column == "order_id" and "order_index" in body:
                values = np.array([f"{body['order_prefix']}{tag}-{seed}-{i}" for i in body["order_index"]],
                                  dtype=object)
            elif column == "fill_id" and body["event_type"] == "fill":
                values = np.array([f"f{tag}-{seed}-{i}" for i in body["index"]], dtype=object)
            elif column in body:
                values = body[column]
            elif column in NUMBER_PAYLOAD_COLUMNS:
                values = np.full(n, np.nan)
            else:
                values = np.full(n, None, dtype=object)
            columns[column].append(values)
    # Prices to 4 decimals, money to 2 (what an engine sends; it also keeps the JSON short).
    for column, decimals in (("price", 4), ("bid", 4), ("ask", 4), ("last", 4), ("arrival_price", 4),
                             ("decision_price", 4), ("fee", 4), ("realized_pnl", 2), ("unrealized_pnl", 2)):
        columns[column] = [np.round(np.asarray(part, dtype=np.float64), decimals) for part in columns[column]]
    occurred = np.concatenate(times)
    order = np.argsort(occurred, kind="stable")
    data = {"seq": np.arange(len(occurred), dtype=np.int64), "occurred_at_ns": occurred[order]}
    # Received 1-3 ms after it happened (the engine's client batches and ships it).
    data["received_at_ns"] = data["occurred_at_ns"] + 1_000_000 + (np.arange(len(occurred)) * 7919) % 2_000_000
    for column, parts in columns.items():
        if parts:
            values = np.concatenate(parts)[order]
            data[column] = values.astype(np.float64) if column in NUMBER_PAYLOAD_COLUMNS else values
    # Text columns stay object (str or None), as event_frame has them; pandas would infer its string dtype.
    frame = pd.DataFrame({name: pd.Series(data[name], dtype=data[name].dtype if data[name].dtype != object else object)
                          for name in EVENT_COLUMNS})
    return frame, ids


def _label_frame(labels: list[_Label], ids: dict, start_ns: int, end_ns: int, kept: set) -> pd.DataFrame:
    rows = []
    for label in labels:
        label_start = start_ns + int(round(label.start_s * NS))
        if label_start > end_ns or not np.isfinite(label.end_s):
            continue
        event_ids = tuple(eid for eid in (ids.get(key) for key in label.events) if eid is not None and eid in kept)
        if label.kind != "stale_feed" and not event_ids:
            continue  # nothing was changed (no fill in the window): not an anomaly
        rows.append({
            "anomaly_id": label.anomaly_id, "kind": label.kind, "magnitude": label.magnitude,
            "silence_seconds": label.silence_seconds, "start_ns": label_start,
            "end_ns": min(start_ns + int(round(label.end_s * NS)), end_ns), "entity_kind": label.entity_kind,
            "entity": label.name, "symbols": tuple(sorted(label.symbols)),
            "strategies": tuple(sorted(label.strategies)),
            "sources": tuple(sorted(label.sources)), "metrics": KIND_METRICS[label.kind], "sigma": label.sigma,
            "shift": label.shift, "event_ids": event_ids,
        })
    return pd.DataFrame(rows, columns=list(LABEL_COLUMNS))
