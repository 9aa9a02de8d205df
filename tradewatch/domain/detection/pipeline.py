"""The detection pipeline: configured detectors over the trail, findings deduplicated into open
anomalies that open, escalate and resolve.

``detect_all(events, state)`` runs one batch of the event frame:

1. events are put in ``seq`` order; ``MetricExtractor.extract`` turns them into metric
   observations (its own state carries open orders and rejection windows across batches);
2. every detector, in configuration order, reads the ``Batch`` with its own state dict
   (``state.detectors[name]``, ``{}`` for a new detector) and returns findings;
3. findings are applied in time order (``detected_at_ns`` / ``cleared_at_ns``, then detector
   order, then the detector's own order):

   - an ``Anomaly`` whose ``key`` is not open **opens** an ``OpenAnomaly``;
   - an ``Anomaly`` on an open key **updates** it (``last_seen_at_ns``, ``occurrences``,
     ``max_score``); if its severity is higher (info < warning < critical) the open anomaly
     **escalates** to it. Exception: an open *point* anomaly already quiet at the finding's
     time (below) is resolved first and the finding opens a new one;
   - a ``Cleared`` on an open key **resolves** it (reason ``"cleared"``, at ``cleared_at_ns``);
     on a key that is not open it is ignored;

4. point anomalies (``Anomaly.is_point``: spikes, outliers) with no finding for
   ``quiet_seconds`` resolve (reason ``"quiet"``): an open point anomaly is quiet at time t when
   ``last_seen_at_ns + quiet_seconds * 1e9 < t``, and t is the batch's latest trusted time
   (``event_frame.trusted_times``: occurred_at capped at received_at + 60 s, so one event
   stamped hours ahead cannot resolve every open point anomaly) in ``detect_all``, or ``now_ns``
   (``tick``). Its ``resolved_at_ns`` is the moment the quiet
   period ended, ``last_seen_at_ns + quiet_seconds * 1e9``, so where the trail is cut into
   batches does not change it.

``tick(now_ns, state)`` runs each detector's ``tick`` (absence rules: a stale feed) and applies
its findings the same way, then resolves quiet point anomalies against ``now_ns``.

An open anomaly is identified by ``(anomaly.key, first_seen_at_ns)``; ``first_seen_at_ns`` is
its first finding's ``detected_at_ns`` (= ``anomaly.detected_at_ns``). A ``DetectionResult``
lists, for persistence and alerting, each at most once per open anomaly:

- ``opened``: anomalies opened in this call, with the worst severity reached in it;
- ``escalated``: anomalies open before this call whose severity rose in it (new severity);
- ``updated``: open anomalies (including ones opened in this call) seen again in this call,
  with their counters after the call;
- ``resolved``: ``Resolution(anomaly, resolved_at_ns, reason)`` with reason ``"cleared"``,
  ``"quiet"``, ``"detector_removed"`` (the configuration no longer has its detector) or
  ``"detector_changed"`` (its detector is still configured under the same name, but with other
  settings: another metric, ``by``, window, threshold, severity...).

State: ``PipelineState`` holds the extractor state, each detector's state, a fingerprint of
each detector's config and the open anomalies, and goes to bytes through ``state_codec``. A
detector dropped from the configuration has its state discarded (and its open anomalies
resolved as ``"detector_removed"`` at the next call that has a time); a new one starts with
``{}``. A detector whose config changed under the same name (fingerprint = SHA-256 of the
config's ``model_dump(mode="json")`` as JSON with sorted keys) starts again from ``{}`` too: its
windows and open keys describe another rule. Its open anomalies resolve as
``"detector_changed"`` before its first findings of the call are applied (so a finding on the
same key opens a new anomaly), at the call's time (the batch's latest trusted time, or
``now_ns``; for an empty batch, which has none, each at its own ``last_seen_at_ns``). Detectors
without a pydantic ``config`` (``from_detectors`` with hand-made objects) have no fingerprint,
and a stored state without one (written before fingerprints) adopts the current config.
``detect_all`` and ``tick`` mutate the state they are given and return it in the result; if
they raise, that state is half-applied: discard it and reload the persisted one.

Configuration (``PipelineConfig``, YAML: see ``default_pipeline.yaml``)::

    quiet_seconds: 300            # > 0
    extractor: {rejection_window: 50, order_ttl_seconds: 600}
    detectors:                    # run in this order; names unique; kind picks the class
      - {kind: robust_zscore, name: slippage_z, metric: slippage_bps, by: symbol, ...}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Any, ClassVar, Protocol, Union

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from tradewatch.domain.detection.anomaly import SEVERITIES, Anomaly, Cleared
from tradewatch.domain.detection.base import Batch, Detector, Finding
from tradewatch.domain.detection.event_frame import trusted_times
from tradewatch.domain.detection.observations import MetricExtractor
from tradewatch.domain.detection.registry import KINDS
from tradewatch.domain.detection.state_codec import StateCodecError, decode, encode
from tradewatch.domain.strict_yaml import ConfigFileError, YamlProblem, load_strict_yaml
from tradewatch.domain.events.timestamps import NS_PER_SECOND

DEFAULT_PIPELINE_RESOURCE = "default_pipeline.yaml"
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
Kinds = Mapping[str, tuple[type[BaseModel], type]]


# ------------------------------------------------------------------ configuration


class PipelineConfigError(ConfigFileError):
    """The pipeline configuration is invalid (see ConfigFileError)."""


class ExtractorSettings(BaseModel):
    """``observations.MetricExtractor`` settings. ``rejection_window``: the accepted + rejected
    order events per strategy over which rejection_rate is computed. ``order_ttl_seconds``: how
    long an order is remembered for fill and acknowledgement latency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rejection_window: int = Field(50, ge=1)
    order_ttl_seconds: float = Field(600.0, gt=0, allow_inf_nan=False)


def _detector_config_type(kinds: Kinds) -> Any:
    """The discriminated union (on ``kind``) of the kinds' config classes."""
    classes = tuple(config for config, _ in kinds.values())
    if len(classes) == 1:
        return classes[0]
    return Annotated[Union[classes], Field(discriminator="kind")]  # noqa: UP007 - a runtime tuple


class PipelineConfig(BaseModel):
    """The detection pipeline's configuration (see the module docstring). Build it from YAML
    with ``from_yaml_text`` (errors name the source, the detector and the key) or directly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: kind -> (config class, detector class) accepted in ``detectors``.
    kinds: ClassVar[Kinds] = KINDS

    quiet_seconds: float = Field(300.0, gt=0, allow_inf_nan=False)
    extractor: ExtractorSettings = Field(default_factory=ExtractorSettings)
    detectors: tuple[_detector_config_type(KINDS), ...] = ()

    @field_validator("detectors")
    @classmethod
    def _unique_names(cls, detectors: tuple[Any, ...]) -> tuple[Any, ...]:
        first: dict[str, int] = {}
        for index, detector in enumerate(detectors):
            if detector.name in first:
                raise ValueError(f"detector name {detector.name!r} is used by detectors[{first[detector.name]}] and "
                                 f"detectors[{index}]; names must be unique")
            first[detector.name] = index
        return detectors

    @classmethod
    def with_kinds(cls, extra_kinds: Kinds) -> type[PipelineConfig]:
        """A configuration class that also accepts ``extra_kinds`` (kind -> (config class,
        detector class)): the hook for detectors defined outside the registry (tests, plugins).
        ``DetectionPipeline`` finds their detector classes through the configuration's class."""
        all_kinds = {**cls.kinds, **extra_kinds}
        extended = create_model(cls.__name__, __base__=cls, __module__=cls.__module__,
                                detectors=(tuple[_detector_config_type(all_kinds), ...], ()))
        extended.kinds = all_kinds
        return extended

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<pipeline>") -> PipelineConfig:
        """Parse and validate YAML; raises ``PipelineConfigError`` naming ``source``."""
        return cls.from_data(_load_yaml(text, source), source)

    @classmethod
    def from_data(cls, data: object, source: str = "<pipeline>") -> PipelineConfig:
        """Validate already-parsed YAML ``data``; raises ``PipelineConfigError`` naming ``source``."""
        if not isinstance(data, dict):
            got = "an empty document" if data is None else _type_name(data)
            raise PipelineConfigError(source, [f"expected a mapping with keys {', '.join(cls.model_fields)}, got {got}"])
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise PipelineConfigError(source, [_problem(error, data, cls) for error in exc.errors()]) from None


def default_pipeline_config() -> PipelineConfig:
    """The configuration shipped with tradewatch (``default_pipeline.yaml`` in this package)."""
    text = resources.files(__package__).joinpath(DEFAULT_PIPELINE_RESOURCE).read_text(encoding="utf-8")
    return PipelineConfig.from_yaml_text(text, DEFAULT_PIPELINE_RESOURCE)


def pipeline_config_from(path: Path | None) -> PipelineConfig:
    """The configuration in the YAML file ``path``, or the packaged default when None. An
    unreadable file raises OSError; an invalid one PipelineConfigError."""
    if path is None:
        return default_pipeline_config()
    return PipelineConfig.from_yaml_text(Path(path).read_text(encoding="utf-8"), source=str(path))


def _load_yaml(text: str, source: str) -> object:
    try:
        return load_strict_yaml(text)
    except YamlProblem as problem:
        raise PipelineConfigError(source, [str(problem)]) from None


def _problem(error: Mapping[str, Any], data: dict[str, Any], model: type[PipelineConfig]) -> str:
    """One validation error as ``place: problem``, e.g.
    ``detectors[2] (slippage_z): window: Input should be greater than or equal to 5``."""
    loc, kind, message = tuple(error["loc"]), error["type"], error["msg"]
    if kind == "value_error" and "error" in error.get("ctx", {}):
        message = str(error["ctx"]["error"])  # our own message, without pydantic's "Value error, "
    accepted_keys: Iterable[str] = model.model_fields
    if loc[:1] == ("extractor",):
        accepted_keys = ExtractorSettings.model_fields
    place = ""
    if len(loc) >= 2 and loc[0] == "detectors" and isinstance(loc[1], int):
        raw = _item(data.get("detectors"), loc[1])
        raw_kind = raw.get("kind") if isinstance(raw, dict) else None
        name = raw.get("name") if isinstance(raw, dict) else None
        place = f"detectors[{loc[1]}]" + (f" ({name})" if isinstance(name, str) and name else "")
        loc = loc[2:]
        if loc and loc[0] == raw_kind:  # the union's tag, not a key of the detector
            loc = loc[1:]
        accepted_kinds = ", ".join(model.kinds)
        if kind == "union_tag_invalid":
            loc, message = ("kind",), f"unknown kind {raw_kind!r}; accepted: {accepted_kinds}"
        elif kind == "union_tag_not_found":
            loc, message = ("kind",), f"required; accepted: {accepted_kinds}"
        elif not isinstance(raw, dict):
            message = f"expected a mapping with kind, name and the kind's settings, got {_type_name(raw)}"
        if isinstance(raw_kind, str) and raw_kind in model.kinds:
            accepted_keys = model.kinds[raw_kind][0].model_fields
    elif loc == ("detectors",) and kind in ("tuple_type", "list_type"):
        message = f"expected a list of detectors, got {_type_name(data.get('detectors'))}"
    elif loc == ("extractor",) and kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping with keys {', '.join(ExtractorSettings.model_fields)}, " \
                  f"got {_type_name(data.get('extractor'))}"
    if kind == "extra_forbidden":
        message = f"unknown key; accepted: {', '.join(accepted_keys)}"
    key = _dotted(loc)
    return ": ".join(part for part in (place, key, message) if part)


def _type_name(value: object) -> str:
    if value is None:
        return "nothing"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _item(items: object, index: int) -> object:
    return items[index] if isinstance(items, list) and 0 <= index < len(items) else None


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# ------------------------------------------------------------------ open anomalies and results


@dataclass(frozen=True)
class OpenAnomaly:
    """One open condition: the first finding on its key (``anomaly``, its severity raised to the
    worst seen) and what followed. ``max_score`` ignores NaN scores (NaN only if all were)."""

    anomaly: Anomaly
    first_seen_at_ns: int
    last_seen_at_ns: int
    occurrences: int
    max_score: float

    @property
    def key(self) -> str:
        return self.anomaly.key

    def to_dict(self) -> dict[str, Any]:
        """For the state codec: floats kept as they are (inf and NaN included)."""
        body = self.anomaly.to_dict()
        for name in ("observed", "baseline", "score"):
            body[name] = float(getattr(self.anomaly, name))
        body["context"] = _plain(body["context"])
        return {"anomaly": body, "first_seen_at_ns": self.first_seen_at_ns, "last_seen_at_ns": self.last_seen_at_ns,
                "occurrences": self.occurrences, "max_score": float(self.max_score)}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> OpenAnomaly:
        return cls(anomaly=Anomaly.from_dict(dict(body["anomaly"])), first_seen_at_ns=int(body["first_seen_at_ns"]),
                   last_seen_at_ns=int(body["last_seen_at_ns"]), occurrences=int(body["occurrences"]),
                   max_score=float(body["max_score"]))


def _plain(value: Any) -> Any:
    """Context is JSON-safe; tuples (JSON arrays) become lists so the state codec takes them."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Resolution:
    """An open anomaly ended: ``anomaly`` as it was open (first finding, worst severity),
    ``reason`` "cleared" (its detector said so), "quiet" (a point anomaly with no finding for
    quiet_seconds), "detector_removed" or "detector_changed" (module docstring)."""

    anomaly: Anomaly
    resolved_at_ns: int
    reason: str


@dataclass
class PipelineState:
    """Everything the pipeline carries from one batch to the next."""

    extractor: dict[str, Any] = field(default_factory=dict)
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    open: dict[str, OpenAnomaly] = field(default_factory=dict)
    #: detector name -> fingerprint of the config its state was built under (see the module doc)
    fingerprints: dict[str, str] = field(default_factory=dict)

    FORMAT: ClassVar[int] = 1

    def to_bytes(self) -> bytes:
        return encode({"format": self.FORMAT, "extractor": self.extractor, "detectors": self.detectors,
                       "open": {key: item.to_dict() for key, item in self.open.items()},
                       "fingerprints": self.fingerprints})

    @classmethod
    def from_bytes(cls, blob: bytes) -> PipelineState:
        """Raises ``state_codec.StateCodecError`` for a blob that is not a pipeline state."""
        body = decode(blob)
        if body.get("format") != cls.FORMAT:
            raise StateCodecError(f"not a pipeline state of format {cls.FORMAT} (format {body.get('format')!r})")
        try:
            return cls(extractor=body["extractor"], detectors=body["detectors"],
                       open={key: OpenAnomaly.from_dict(item) for key, item in body["open"].items()},
                       fingerprints={str(name): str(value) for name, value in body.get("fingerprints", {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateCodecError(f"pipeline state is malformed: {type(exc).__name__}: {exc}") from None


@dataclass
class DetectionResult:
    """What one ``detect_all`` or ``tick`` changed (see the module docstring)."""

    opened: list[Anomaly]
    escalated: list[Anomaly]
    updated: list[OpenAnomaly]
    resolved: list[Resolution]
    findings: int
    events: int
    observations: int
    state: PipelineState


class Extractor(Protocol):
    def extract(self, events: pd.DataFrame, state: dict[str, Any]) -> pd.DataFrame: ...


# ------------------------------------------------------------------ the pipeline


class DetectionPipeline:
    """Runs the configured detectors and keeps one open anomaly per key (module docstring).

    Each detector is ``DetectorClass(config)`` for its kind, looked up in the kinds of the
    configuration's class (the registry, plus those given to ``PipelineConfig.with_kinds``) and
    ``extra_kinds``. ``extractor``: replaces ``MetricExtractor(**config.extractor)`` (anything
    with ``extract(events, state) -> observation frame``)."""

    def __init__(self, config: PipelineConfig, *, extractor: Extractor | None = None,
                 extra_kinds: Kinds | None = None) -> None:
        kinds = {**type(config).kinds, **(extra_kinds or {})}
        detectors = [_build_detector(detector_config, kinds) for detector_config in config.detectors]
        if extractor is None:
            extractor = MetricExtractor(**config.extractor.model_dump())
        self._setup(config, detectors, config.quiet_seconds, extractor)

    @classmethod
    def from_detectors(cls, detectors: Sequence[Detector], *, quiet_seconds: float = 300.0,
                       extractor: Extractor | None = None) -> DetectionPipeline:
        """A pipeline over ready-made detector objects (no configuration file); ``config`` is None."""
        if not quiet_seconds > 0:
            raise ValueError(f"quiet_seconds must be > 0, got {quiet_seconds}")
        names = [detector.name for detector in detectors]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"detector names must be unique; repeated: {', '.join(duplicates)}")
        pipeline = cls.__new__(cls)
        pipeline._setup(None, list(detectors), float(quiet_seconds), extractor or MetricExtractor())
        return pipeline

    def _setup(self, config: PipelineConfig | None, detectors: list[Detector], quiet_seconds: float,
               extractor: Extractor) -> None:
        self.config = config
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        self.quiet_ns = int(round(quiet_seconds * NS_PER_SECOND))
        self.extractor = extractor
        self._fingerprints = {detector.name: config_fingerprint(detector) for detector in self.detectors}

    # -- models

    @property
    def model_configs(self) -> list[Any]:
        """The configs of the model detectors (those with ``use_model``), for retraining."""
        return [detector.config for detector in self.detectors if hasattr(detector, "use_model")]

    def set_models(self, models: Mapping[str, Any]) -> None:
        """Hand trained models (``TrainedModel``, or None: there is none) to the model detectors,
        keyed by model name (the detector's ``model_name``, else its name); detectors whose model
        is not in ``models`` keep the one they have."""
        for detector in self.detectors:
            if not hasattr(detector, "use_model"):
                continue
            model_name = getattr(detector, "model_name", None) or detector.name
            if model_name in models:
                detector.use_model(models[model_name])

    # -- running

    def new_state(self) -> PipelineState:
        return PipelineState(detectors={detector.name: {} for detector in self.detectors},
                             fingerprints=self._known_fingerprints())

    def _known_fingerprints(self) -> dict[str, str]:
        return {name: value for name, value in self._fingerprints.items() if value is not None}

    def detect_all(self, events: pd.DataFrame, state: PipelineState | None = None) -> DetectionResult:
        """Run one batch of the event frame (``event_frame.EVENT_COLUMNS``) through the pipeline."""
        state, changed = self._prepared(state)
        events = _in_seq_order(events)
        observations = self.extractor.extract(events, state.extractor)
        batch = Batch(events=events, observations=observations)
        findings = [self._checked(detector, detector.detect(batch, state.detectors[detector.name]))
                    for detector in self.detectors]
        latest_ns = int(trusted_times(events).max()) if len(events) else None
        changes = self._apply(findings, state, latest_ns, changed)
        return changes.result(state, events=len(events), observations=len(observations))

    def tick(self, now_ns: int, state: PipelineState | None = None) -> DetectionResult:
        """Absence rules at ``now_ns``, then quiet resolution against ``now_ns``."""
        state, changed = self._prepared(state)
        now_ns = int(now_ns)
        findings = [self._checked(detector, detector.tick(now_ns, state.detectors[detector.name]))
                    for detector in self.detectors]
        changes = self._apply(findings, state, now_ns, changed)
        return changes.result(state, events=0, observations=0)

    def _prepared(self, state: PipelineState | None) -> tuple[PipelineState, list[OpenAnomaly]]:
        """``state`` with exactly this pipeline's detectors (stale ones dropped, new ones and
        ones whose config changed empty), and the open anomalies of the changed ones, taken out
        of ``state.open`` for ``_apply`` to resolve as "detector_changed"."""
        if state is None:
            return self.new_state(), []
        changed: set[str] = set()
        for name, fingerprint in self._fingerprints.items():
            stored = state.fingerprints.get(name)
            if fingerprint is not None and stored is not None and stored != fingerprint:
                changed.add(name)
        state.detectors = {detector.name: {} if detector.name in changed else state.detectors.get(detector.name, {})
                           for detector in self.detectors}
        state.fingerprints = self._known_fingerprints()
        retired = [state.open.pop(key) for key, item in list(state.open.items()) if item.anomaly.detector in changed]
        return state, retired

    @staticmethod
    def _checked(detector: Detector, findings: list[Finding]) -> list[Finding]:
        for finding in findings:
            if isinstance(finding, Anomaly) and finding.detector != detector.name:
                raise ValueError(f"detector {detector.name!r} returned an anomaly of detector {finding.detector!r}")
            if not isinstance(finding, (Anomaly, Cleared)):
                raise TypeError(f"detector {detector.name!r} returned a {type(finding).__name__}, not an Anomaly "
                                "or Cleared")
        return findings

    def _apply(self, findings_by_detector: list[list[Finding]], state: PipelineState,
               latest_ns: int | None, changed: Sequence[OpenAnomaly] = ()) -> _Changes:
        changes = _Changes()
        for item in changed:  # before the findings: a finding on the same key opens a new anomaly
            changes.resolve(item, item.last_seen_at_ns if latest_ns is None else latest_ns, "detector_changed")
        ordered = sorted(
            ((_finding_time(finding), order, position, finding)
             for order, findings in enumerate(findings_by_detector)
             for position, finding in enumerate(findings)),
            key=lambda item: item[:3],
        )
        changes.findings = len(ordered)
        for at_ns, _, _, finding in ordered:
            if isinstance(finding, Cleared):
                current = state.open.pop(finding.key, None)
                if current is not None:
                    changes.resolve(current, at_ns, "cleared")
            else:
                self._apply_anomaly(finding, state, changes)
        if latest_ns is not None:
            self._resolve_quiet(state, latest_ns, changes)
            self._resolve_removed(state, latest_ns, changes)
        return changes

    def _apply_anomaly(self, anomaly: Anomaly, state: PipelineState, changes: _Changes) -> None:
        at_ns = anomaly.detected_at_ns
        current = state.open.get(anomaly.key)
        if current is not None and self._is_quiet(current, at_ns):
            # Resolve before reopening, as a batch boundary between the two would have.
            del state.open[anomaly.key]
            changes.resolve(current, current.last_seen_at_ns + self.quiet_ns, "quiet")
            current = None
        if current is None:
            opened = OpenAnomaly(anomaly=anomaly, first_seen_at_ns=at_ns, last_seen_at_ns=at_ns, occurrences=1,
                                 max_score=float(anomaly.score))
            state.open[anomaly.key] = opened
            changes.open(opened)
            return
        escalates = _SEVERITY_RANK[anomaly.severity] > _SEVERITY_RANK[current.anomaly.severity]
        updated = dataclasses.replace(
            current,
            anomaly=dataclasses.replace(current.anomaly, severity=anomaly.severity) if escalates else current.anomaly,
            last_seen_at_ns=max(current.last_seen_at_ns, at_ns),
            occurrences=current.occurrences + 1,
            max_score=_nan_max(current.max_score, float(anomaly.score)),
        )
        state.open[anomaly.key] = updated
        changes.update(updated, escalated=escalates)

    def _is_quiet(self, item: OpenAnomaly, at_ns: int) -> bool:
        return item.anomaly.is_point and item.last_seen_at_ns + self.quiet_ns < at_ns

    def _resolve_quiet(self, state: PipelineState, at_ns: int, changes: _Changes) -> None:
        for key in [key for key, item in state.open.items() if self._is_quiet(item, at_ns)]:
            item = state.open.pop(key)
            changes.resolve(item, item.last_seen_at_ns + self.quiet_ns, "quiet")

    def _resolve_removed(self, state: PipelineState, at_ns: int, changes: _Changes) -> None:
        names = {detector.name for detector in self.detectors}
        for key in [key for key, item in state.open.items() if item.anomaly.detector not in names]:
            changes.resolve(state.open.pop(key), at_ns, "detector_removed")


def config_fingerprint(detector: Detector) -> str | None:
    """SHA-256 (hex) of the detector's pydantic config as sorted-key JSON; None when it has no
    pydantic ``config`` (a hand-made detector object)."""
    config = getattr(detector, "config", None)
    if not isinstance(config, BaseModel):
        return None
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _build_detector(config: BaseModel, kinds: Kinds) -> Detector:
    kind = getattr(config, "kind", None)
    if kind not in kinds or not isinstance(config, kinds[kind][0]):
        raise ValueError(f"no detector class for the config {type(config).__name__} (kind {kind!r}); "
                         f"known kinds: {', '.join(kinds)}")
    return kinds[kind][1](config)


def _in_seq_order(events: pd.DataFrame) -> pd.DataFrame:
    seq = events["seq"].to_numpy()
    if len(seq) > 1 and bool(np.any(seq[1:] < seq[:-1])):
        return events.sort_values("seq", kind="stable").reset_index(drop=True)
    return events


def _finding_time(finding: Finding) -> int:
    return int(finding.cleared_at_ns if isinstance(finding, Cleared) else finding.detected_at_ns)


def _nan_max(a: float, b: float) -> float:
    if math.isnan(a):
        return b
    return a if math.isnan(b) else max(a, b)


class _Changes:
    """What one call changed, at most one entry per open anomaly in each list."""

    def __init__(self) -> None:
        self.opened: list[Anomaly] = []
        self.escalated: list[Anomaly] = []
        self.updated: list[OpenAnomaly] = []
        self.resolved: list[Resolution] = []
        self.findings = 0  # Anomaly and Cleared findings returned by the detectors
        # key -> position in opened / escalated / updated of the anomaly open now under that key
        self._opened_at: dict[str, int] = {}
        self._escalated_at: dict[str, int] = {}
        self._updated_at: dict[str, int] = {}

    def open(self, item: OpenAnomaly) -> None:
        self._opened_at[item.key] = len(self.opened)
        self.opened.append(item.anomaly)

    def update(self, item: OpenAnomaly, *, escalated: bool) -> None:
        key = item.key
        self._put(self.updated, self._updated_at, key, item)
        if escalated:
            if key in self._opened_at:  # opened in this call: it opens with the worse severity
                self.opened[self._opened_at[key]] = item.anomaly
            else:
                self._put(self.escalated, self._escalated_at, key, item.anomaly)

    def resolve(self, item: OpenAnomaly, at_ns: int, reason: str) -> None:
        for positions in (self._opened_at, self._escalated_at, self._updated_at):
            positions.pop(item.key, None)  # a later finding on this key is a new open anomaly
        self.resolved.append(Resolution(anomaly=item.anomaly, resolved_at_ns=int(at_ns), reason=reason))

    @staticmethod
    def _put(items: list[Any], positions: dict[str, int], key: str, value: Any) -> None:
        if key in positions:
            items[positions[key]] = value
        else:
            positions[key] = len(items)
            items.append(value)

    def result(self, state: PipelineState, *, events: int, observations: int) -> DetectionResult:
        return DetectionResult(opened=self.opened, escalated=self.escalated, updated=self.updated,
                               resolved=self.resolved, findings=self.findings, events=events,
                               observations=observations, state=state)
