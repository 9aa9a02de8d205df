"""PipelineConfig: YAML loading, messages that name the file, the detector and the key."""

from __future__ import annotations

from typing import Literal

import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tradewatch.domain.detection.event_frame import EVENT_COLUMNS, NUMBER_PAYLOAD_COLUMNS
from tradewatch.domain.detection.pipeline import (
    DetectionPipeline,
    ExtractorSettings,
    PipelineConfig,
    PipelineConfigError,
    PipelineState,
    default_pipeline_config,
)
from tradewatch.domain.detection.registry import KINDS


class FakeZConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["fake_z"] = "fake_z"
    severity: Literal["info", "warning", "critical"] = "warning"
    window: int = Field(100, ge=5)
    threshold: float = Field(6.0, gt=0)
    critical_threshold: float | None = None
    direction: Literal["both", "high", "low"] = "both"

    @model_validator(mode="after")
    def _critical_above_threshold(self) -> FakeZConfig:
        if self.critical_threshold is not None and self.critical_threshold <= self.threshold:
            raise ValueError(f"critical_threshold ({self.critical_threshold}) must be greater than threshold "
                             f"({self.threshold})")
        return self


class FakeRuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["fake_rule"] = "fake_rule"
    severity: Literal["info", "warning", "critical"] = "warning"
    limit: float = 1.0


FakeConfig = PipelineConfig.with_kinds({"fake_z": (FakeZConfig, object), "fake_rule": (FakeRuleConfig, object)})
ACCEPTED_KINDS = ", ".join(FakeConfig.kinds)


def problems(text: str) -> list[str]:
    with pytest.raises(PipelineConfigError) as caught:
        FakeConfig.from_yaml_text(text, "detection.yaml")
    assert str(caught.value) == "\n".join(f"detection.yaml: {p}" for p in caught.value.problems)
    assert caught.value.source == "detection.yaml"
    return [f"detection.yaml: {p}" for p in caught.value.problems]


def test_a_valid_file_loads_with_defaults_filled_in():
    config = FakeConfig.from_yaml_text(
        "quiet_seconds: 120\n"
        "extractor: {rejection_window: 20}\n"
        "detectors:\n"
        "  - {kind: fake_z, name: slippage_z, window: 50, threshold: 7, critical_threshold: 10}\n"
        "  - {kind: fake_rule, name: limit, severity: critical}\n",
        "detection.yaml",
    )
    assert config.quiet_seconds == 120.0
    assert config.extractor == ExtractorSettings(rejection_window=20, order_ttl_seconds=600.0)
    first, second = config.detectors
    assert first == FakeZConfig(name="slippage_z", window=50, threshold=7.0, critical_threshold=10.0)
    assert second == FakeRuleConfig(name="limit", severity="critical")


def test_defaults_without_detectors():
    config = FakeConfig.from_yaml_text("detectors: []\n", "detection.yaml")
    assert (config.quiet_seconds, config.extractor, config.detectors) == (300.0, ExtractorSettings(), ())


def test_a_bad_value_names_the_file_the_detector_and_the_key():
    assert problems(
        "detectors:\n"
        "  - {kind: fake_rule, name: a}\n"
        "  - {kind: fake_rule, name: b}\n"
        "  - {kind: fake_z, name: slippage_z, window: 2}\n"
    ) == ["detection.yaml: detectors[2] (slippage_z): window: Input should be greater than or equal to 5"]


def test_every_problem_is_reported_at_once():
    assert problems(
        "quiet_seconds: 0\n"
        "extractor: {rejection_window: 0, window: 3}\n"
        "detectors:\n"
        "  - {kind: fake_z, name: z, direction: up, thresh: 3}\n"
        "  - {kind: fake_z, name: y, threshold: 5, critical_threshold: 4}\n"
        "alerts: true\n"
    ) == [
        "detection.yaml: quiet_seconds: Input should be greater than 0",
        "detection.yaml: extractor.rejection_window: Input should be greater than or equal to 1",
        "detection.yaml: extractor.window: unknown key; accepted: rejection_window, order_ttl_seconds",
        "detection.yaml: detectors[0] (z): direction: Input should be 'both', 'high' or 'low'",
        "detection.yaml: detectors[0] (z): thresh: unknown key; accepted: name, kind, severity, window, threshold, "
        "critical_threshold, direction",
        "detection.yaml: detectors[1] (y): critical_threshold (4.0) must be greater than threshold (5.0)",
        "detection.yaml: alerts: unknown key; accepted: quiet_seconds, extractor, detectors",
    ]


def test_an_unknown_or_missing_kind_lists_the_accepted_kinds():
    assert problems("detectors:\n  - {kind: zcore, name: a}\n  - {name: b}\n") == [
        f"detection.yaml: detectors[0] (a): kind: unknown kind 'zcore'; accepted: {ACCEPTED_KINDS}",
        f"detection.yaml: detectors[1] (b): kind: required; accepted: {ACCEPTED_KINDS}",
    ]
    assert ACCEPTED_KINDS.endswith("fake_z, fake_rule")


def test_a_detector_without_a_name_or_not_a_mapping():
    assert problems("detectors:\n  - {kind: fake_rule}\n  - 3\n  - {kind: fake_rule, name: ''}\n") == [
        "detection.yaml: detectors[0]: name: Field required",
        "detection.yaml: detectors[1]: expected a mapping with kind, name and the kind's settings, got an int",
        "detection.yaml: detectors[2]: name: String should have at least 1 character",
    ]


def test_names_must_be_unique_and_the_error_names_the_duplicate():
    assert problems("detectors:\n  - {kind: fake_rule, name: a}\n  - {kind: fake_z, name: b}\n"
                    "  - {kind: fake_z, name: a}\n") == [
        "detection.yaml: detectors: detector name 'a' is used by detectors[0] and detectors[2]; names must be unique",
    ]


def test_names_must_be_unique_when_built_in_python_too():
    with pytest.raises(ValidationError, match="detector name 'a' is used by detectors"):
        FakeConfig(detectors=[FakeRuleConfig(name="a"), FakeRuleConfig(name="a")])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "detection.yaml: expected a mapping with keys quiet_seconds, extractor, detectors, got an empty document"),
        ("- 1\n", "detection.yaml: expected a mapping with keys quiet_seconds, extractor, detectors, got a list"),
        ("detectors: 3\n", "detection.yaml: detectors: expected a list of detectors, got an int"),
        ("extractor: 5\n", "detection.yaml: extractor: expected a mapping with keys rejection_window, "
                           "order_ttl_seconds, got an int"),
        ("quiet_seconds: .inf\n", "detection.yaml: quiet_seconds: Input should be a finite number"),
        ("quiet_seconds: 1\nquiet_seconds: 2\n", "detection.yaml: line 2, column 1: duplicate key 'quiet_seconds' "
                                                 "(first on line 1); the second would silently replace the first"),
        ("detectors:\n  - {kind: fake_rule, name: a\n",
         "detection.yaml: line 3, column 1: YAML syntax error: expected ',' or '}', but got '<stream end>' "
         "(while parsing a flow mapping started on line 2)"),
    ],
)
def test_malformed_files(text, message):
    assert problems(text) == [message]


def test_the_source_defaults_to_a_placeholder():
    with pytest.raises(PipelineConfigError, match=r"^<pipeline>: quiet_seconds: Input should be greater than 0$"):
        FakeConfig.from_yaml_text("quiet_seconds: -1\n")


# ------------------------------------------------------------------ the real registry and the shipped file


REAL_KINDS = ("zscore, robust_zscore, iqr, ewma, slippage_spike, latency_excursion, loss_streak, rejection_spike, "
              "stale_feed, clock_skew, model")


def test_every_registered_kind_is_its_config_classes_kind():
    assert ", ".join(KINDS) == REAL_KINDS
    for kind, (config_class, detector_class) in KINDS.items():
        assert config_class.model_fields["kind"].annotation == Literal[kind]
        assert config_class.model_config.get("extra") == "forbid"
        assert callable(getattr(detector_class, "detect")) and callable(getattr(detector_class, "tick"))


def test_real_detector_errors_name_the_detector_and_the_key():
    with pytest.raises(PipelineConfigError) as caught:
        PipelineConfig.from_yaml_text(
            "detectors:\n"
            "  - {kind: slippage_spike, name: spike}\n"
            "  - {kind: stale_feed, name: stale}\n"
            "  - {kind: robust_zscore, name: slippage_z, metric: slippage_bps, window: 2, warmup: 2}\n"
            "  - {kind: zscore, name: typo, metric: slipage_bps}\n"
            "  - {kind: isolation_forest, name: forest}\n",
            "detection.yaml",
        )
    assert str(caught.value).splitlines() == [
        "detection.yaml: detectors[2] (slippage_z): window: Input should be greater than or equal to 5",
        "detection.yaml: detectors[3] (typo): metric: Input should be 'slippage_bps', 'fill_latency_seconds', "
        "'acknowledgement_latency_seconds', 'round_trip_pnl_usd', 'rejection_rate', 'order_rate_per_minute' or "
        "'spread_bps'",
        f"detection.yaml: detectors[4] (forest): kind: unknown kind 'isolation_forest'; accepted: {REAL_KINDS}",
    ]


def test_the_shipped_configuration_loads_and_builds():
    config = default_pipeline_config()
    kinds = {detector.name: detector.kind for detector in config.detectors}
    assert kinds == {
        "slippage_robust_zscore": "robust_zscore", "spread_robust_zscore": "robust_zscore",
        "slippage_level_shift": "ewma", "spread_level_shift": "ewma", "fill_latency_level_shift": "ewma",
        "round_trip_pnl_level_shift": "ewma", "slippage_spike": "slippage_spike",
        "fill_latency_excursion": "latency_excursion", "loss_streak": "loss_streak",
        "rejection_spike": "rejection_spike", "stale_feed": "stale_feed", "clock_skew": "clock_skew",
        "fill_isolation_forest": "model",
    }
    by_name = {detector.name: detector for detector in config.detectors}
    assert (by_name["slippage_robust_zscore"].metric, by_name["slippage_robust_zscore"].by) == ("slippage_bps", "symbol")
    assert (by_name["spread_robust_zscore"].metric, by_name["spread_robust_zscore"].by) == ("spread_bps", "symbol")
    assert (by_name["fill_latency_level_shift"].metric, by_name["fill_latency_level_shift"].by) == \
        ("fill_latency_seconds", "strategy_id")
    assert (by_name["round_trip_pnl_level_shift"].metric, by_name["round_trip_pnl_level_shift"].direction) == \
        ("round_trip_pnl_usd", "low")
    assert by_name["slippage_level_shift"].metric == "slippage_bps"
    assert by_name["fill_isolation_forest"].algorithm == "isolation_forest"
    # conservative: the point detectors fire far out in the tail
    assert by_name["slippage_robust_zscore"].threshold >= 6 and by_name["spread_robust_zscore"].threshold >= 6
    assert config.quiet_seconds == 300 and config.extractor == ExtractorSettings()

    pipeline = DetectionPipeline(config)
    assert [detector.name for detector in pipeline.detectors] == list(kinds)
    assert [model.name for model in pipeline.model_configs] == ["fill_isolation_forest"]


def _events(rows: list[dict]) -> pd.DataFrame:
    columns = {name: [row.get(name) for row in rows] for name in EVENT_COLUMNS}
    frame = pd.DataFrame(columns)
    for name in ("seq", "occurred_at_ns", "received_at_ns"):
        frame[name] = frame[name].astype("int64")
    for name in NUMBER_PAYLOAD_COLUMNS:
        frame[name] = pd.to_numeric(frame[name]).astype("float64")
    return frame


def test_the_shipped_pipeline_runs_end_to_end_and_restarts_from_bytes():
    S = 1_000_000_000
    t0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z
    quotes = [{"seq": i, "event_id": f"q{i}", "event_type": "market_data", "occurred_at_ns": t0 + i * S,
               "received_at_ns": t0 + i * S, "source": "feed-1", "symbol": "AAPL", "bid": 100.0, "ask": 100.02}
              for i in range(5)]
    pipeline = DetectionPipeline(default_pipeline_config())
    first = pipeline.detect_all(_events(quotes))
    assert (first.events, first.observations) == (5, 5)  # one spread_bps per quote
    # the model detector has no model: it says so once, and is not used
    assert [(a.detector, a.anomaly_type) for a in first.opened] == [("fill_isolation_forest", "model_unusable")]

    restarted = DetectionPipeline(default_pipeline_config())
    state = PipelineState.from_bytes(first.state.to_bytes())
    quiet = restarted.tick(t0 + 34 * S, state)  # last quote at t0 + 4 s: 30 s of silence, not more
    assert quiet.opened == []
    stale = restarted.tick(t0 + 35 * S, state)
    assert [(a.detector, a.entity, a.severity) for a in stale.opened] == [("stale_feed", "feed-1", "critical")]
    back = restarted.detect_all(_events([{**quotes[0], "seq": 5, "event_id": "q5", "occurred_at_ns": t0 + 70 * S,
                                          "received_at_ns": t0 + 70 * S}]), state)
    assert [(r.anomaly.detector, r.reason, r.resolved_at_ns) for r in back.resolved] == \
        [("stale_feed", "cleared", t0 + 70 * S)]
