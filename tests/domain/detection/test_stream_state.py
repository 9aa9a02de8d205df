"""The stream detectors across batches: any split gives the same findings, the state survives a
deep copy and the state codec, and the vectorised window statistics match a plain loop."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.detection.builders import observation_batch
from tests.domain.detection.builders import stream_observations as observations
from tradewatch.domain.detection import streams
from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.ewma import EwmaConfig, EwmaDetector
from tradewatch.domain.detection.iqr import IqrConfig, IqrDetector
from tradewatch.domain.detection.robust_zscore import RobustZScoreConfig, RobustZScoreDetector
from tradewatch.domain.detection.state_codec import decode, encode
from tradewatch.domain.detection.zscore import ZScoreConfig, ZScoreDetector

COMMON = dict(metric="slippage_bps", window=8, warmup=5)
DETECTORS = {
    "zscore": lambda: ZScoreDetector(ZScoreConfig(name="z", threshold=2.0, critical_threshold=4.0, **COMMON)),
    "robust_zscore": lambda: RobustZScoreDetector(RobustZScoreConfig(name="r", threshold=2.5, critical_threshold=6.0, **COMMON)),
    "iqr": lambda: IqrDetector(IqrConfig(name="q", threshold=1.0, critical_threshold=3.0, **COMMON)),
    "ewma": lambda: EwmaDetector(EwmaConfig(name="e", threshold=2.0, critical_threshold=4.0, smoothing=0.3,
                                            alpha_baseline=0.1, **COMMON)),
}


def run(detector, frame: pd.DataFrame, cuts, *, between=lambda state: state):
    state: dict = {}
    findings = []
    for start, end in zip([0, *cuts], [*cuts, len(frame)]):
        findings += detector.detect(observation_batch(frame.iloc[start:end].reset_index(drop=True)), state)
        state = between(state)
    return findings, state


def same_state(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return isinstance(b, dict) and set(a) == set(b) and all(same_state(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or (a != a and b != b))


# Values with ties (constant windows, MAD = 0, IQR = 0), spikes and level shifts, on three streams
# (one of them without an entity: ignored).
value = st.one_of(st.sampled_from([1.0, 1.0, 2.0, 3.0]), st.floats(-5, 5, allow_nan=False),
                  st.sampled_from([40.0, -40.0]))
streams_of = st.lists(st.tuples(st.sampled_from(["AAPL", "MSFT", None]), value, st.booleans()), min_size=1, max_size=60)


@st.composite
def trails(draw):
    rows = draw(streams_of)
    # a level shift: every value flagged True gets +20 (runs of them make sustained shifts)
    values = [v + (20.0 if shifted else 0.0) for _, v, shifted in rows]
    cuts = sorted(set(draw(st.lists(st.integers(0, len(rows)), max_size=5))))
    return observations(values, [s for s, _, _ in rows]), cuts


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    # Exercise the chunking of full windows with small inputs.
    monkeypatch.setattr(streams, "CHUNK_ROWS", 3)


@pytest.mark.parametrize("kind", sorted(DETECTORS))
@settings(max_examples=40, deadline=None)
@given(trail=trails())
def test_any_split_gives_the_same_findings_and_state(kind, trail):
    frame, cuts = trail
    whole, whole_state = run(DETECTORS[kind](), frame, [])
    split, split_state = run(DETECTORS[kind](), frame, cuts)
    assert split == whole
    assert same_state(split_state, whole_state)
    through_codec, codec_state = run(DETECTORS[kind](), frame, cuts, between=lambda s: decode(encode(s)))
    assert through_codec == whole
    assert same_state(codec_state, whole_state)
    copied, _ = run(DETECTORS[kind](), frame, cuts, between=copy.deepcopy)
    assert copied == whole


def _shift_trail(n=120):
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, n)
    values[40] += 15  # a spike
    values[80:] += 6  # a level shift
    symbols = np.where(np.arange(n) % 3 == 0, "MSFT", "AAPL")
    return observations(values, symbols)


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_the_fixture_trail_has_findings(kind):
    # the property test above is only worth something if the detectors do fire on such data
    findings, _ = run(DETECTORS[kind](), _shift_trail(), [])
    assert any(isinstance(f, Anomaly) for f in findings)


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_state_is_owned_and_a_deep_copy_or_codec_round_trip_continues_identically(kind):
    frame = _shift_trail()
    detector = DETECTORS[kind]()
    state: dict = {}
    detector.detect(observation_batch(frame.iloc[:60].reset_index(drop=True)), state)
    for stream in state["streams"].values():
        for item in stream.values():
            if isinstance(item, np.ndarray):
                assert item.dtype == np.float64 and item.ndim == 1 and item.base is None  # not a view of the batch
                assert len(item) <= COMMON["window"]
    before = encode(state)
    copies = [copy.deepcopy(state), decode(encode(state))]
    rest = observation_batch(frame.iloc[60:].reset_index(drop=True))
    expected = detector.detect(rest, state)
    for other in copies:
        assert detector.detect(rest, other) == expected
        assert same_state(other, state)
    assert encode(decode(before)) == before


def _reference(values: np.ndarray, window: int, warmup: int, statistic):
    """Scores by a plain loop: each value against its previous min(count, window) values."""
    scores = np.full(len(values), np.nan)
    for i in range(len(values)):
        if i >= warmup:
            scores[i] = statistic(values[max(0, i - window):i], values[i])
    return scores


def _z(w, x):
    return np.nan if w.max() == w.min() else (x - w.mean()) / w.std(ddof=1)


def _robust(w, x):
    median = np.median(w)
    mad = np.median(np.abs(w - median))
    mean_ad = np.mean(np.abs(w - median))
    return 0.6745 * (x - median) / mad if mad > 0 else (x - median) / (1.253314 * mean_ad) if mean_ad > 0 else np.nan


def _iqr(w, x):
    q1, q3 = np.percentile(w, [25, 75])
    if q3 == q1:
        return np.nan
    return (x - q3) / (q3 - q1) if x > q3 else (x - q1) / (q3 - q1) if x < q1 else 0.0


@pytest.mark.parametrize("kind, statistic", [("zscore", _z), ("robust_zscore", _robust), ("iqr", _iqr)])
def test_window_scores_match_a_plain_loop(kind, statistic):
    rng = np.random.default_rng(11)
    values = np.round(rng.standard_t(3, 300), 1)  # rounding gives ties
    config = DETECTORS[kind]().config.model_copy(update={"threshold": 1e-9, "critical_threshold": None})
    detector = type(DETECTORS[kind]())(config)  # every non-zero score becomes a finding
    findings = detector.detect(observation_batch(observations(values, ["AAPL"] * len(values))), {})
    expected = _reference(values, COMMON["window"], COMMON["warmup"], statistic)
    flagged = np.flatnonzero(np.abs(np.nan_to_num(expected)) > 1e-9)
    assert [int(f.event_ids[0][1:]) for f in findings] == flagged.tolist()
    np.testing.assert_allclose([f.score for f in findings], expected[flagged], rtol=1e-12, atol=1e-12)
