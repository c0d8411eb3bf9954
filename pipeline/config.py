"""The project's one typed configuration: ``configs/params.yaml`` loaded into frozen, validated dataclasses.

Every stage reads its slice from here; ``dvc.yaml`` reads the same file through ``vars:``, so a path is
said once. A missing, unknown or mistyped key is a :class:`UserError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from pipeline.errors import UserError
from pipeline.typed_yaml import build

DEFAULT_PARAMS = Path("configs/params.yaml")


@dataclass(frozen=True)
class Paths:
    labeled: str
    challenge: str
    background: str
    background_labels: str
    real_dev: str
    user_dict: str
    aliases: str
    concepts: str
    scope_cues: str
    lexicon: str
    prepared: str
    segmented: str
    featurizer: str
    model: str
    model_card: str
    jieba_cache: str
    reports: str
    data_summary: str
    features_report: str
    metrics: str
    plots: str
    errors: str
    top_features: str
    test_predictions: str
    report_html: str


@dataclass(frozen=True)
class DataConfig:
    text_column: str
    kind_column: str
    # Kinds whose name starts with a key must carry exactly these label values.
    kind_rules: dict[str, dict[str, int]]
    max_chars: int
    near_duplicate_threshold: float


@dataclass(frozen=True)
class NormalizeConfig:
    t2s: bool
    lowercase: bool
    urls: Literal["token", "drop", "keep"]
    mentions: Literal["token", "drop", "keep"]
    reposts: Literal["token", "drop", "keep"]
    hashtags: Literal["text", "drop", "keep"]
    emoji: Literal["text", "drop", "keep"]
    max_repeat: int
    join_cjk_spaces: bool
    punctuation: Literal["keep", "drop"]
    aliases: bool
    html_entities: Literal["keep", "decode"]
    weibo_interface: Literal["keep", "drop"]


@dataclass(frozen=True)
class SplitConfig:
    test_size: float
    val_size: float
    seed: int


@dataclass(frozen=True)
class BackgroundConfig:
    use: bool
    train_share: float
    val_share: float
    weight: float
    max_rows: int | None
    seed: int
    embedded_posts: int


@dataclass(frozen=True)
class SegmentConfig:
    backend: Literal["jieba", "rjieba"]
    hmm: bool


@dataclass(frozen=True)
class FeaturesConfig:
    word_ngrams: tuple[int, int]
    min_word_chars: int
    char_ngrams: tuple[int, int]
    min_df: int
    max_df: float
    max_char_features: int | None
    sublinear_tf: bool
    norm_floor_quantile: float | None
    norm_power: dict[str, float]
    concepts: bool
    concept_pairs: bool
    scope_window: int

    def power(self, label: str) -> float:
        """The label's norm power (1, plain L2 above the floor, unless ``norm_power`` says otherwise)."""
        return self.norm_power.get(label, 1.0)


@dataclass(frozen=True)
class TrainConfig:
    C: float
    class_weight: Literal["balanced"] | None
    calibration: Literal["sigmoid"]  # the model file holds sigmoid (Platt) calibration only
    calibration_folds: int
    calibration_groups: Literal["writer", "post"]
    validation: Literal["held_out", "cross_fitted"]
    max_iter: int
    seed: int

    def fitted_splits(self) -> tuple[str, ...]:
        """The labeled splits the classifiers are fitted on (background posts: the training split alone)."""
        return ("train", "val") if self.validation == "cross_fitted" else ("train",)

    def threshold_splits(self) -> tuple[str, ...]:
        """The labeled splits whose posts the thresholds are chosen on."""
        return ("train", "val") if self.validation == "cross_fitted" else ("val",)


WithinTolerance = Literal["highest", "middle", "lowest"]


@dataclass(frozen=True)
class ThresholdConfig:
    rule: Literal["max_f1", "min_precision", "fixed"]
    min_precision: float
    fixed: float
    max_background_far: float | None
    f1_tolerance: dict[str, float]
    within_tolerance: WithinTolerance | dict[str, WithinTolerance]

    def within(self, label: str) -> str:
        """How ``label``'s threshold is picked among the near-best ones: one rule for every label, or per label
        (a label not listed: middle)."""
        rule = self.within_tolerance
        return rule.get(label, "middle") if isinstance(rule, dict) else rule


@dataclass(frozen=True)
class EvaluateConfig:
    bootstrap: int
    confidence: float
    seed: int
    n_errors: int
    n_top_features: int


@dataclass(frozen=True)
class Params:
    labels: tuple[str, ...]
    paths: Paths
    data: DataConfig
    normalize: NormalizeConfig
    split: SplitConfig
    background: BackgroundConfig
    segment: SegmentConfig
    features: FeaturesConfig
    train: TrainConfig
    thresholds: ThresholdConfig
    evaluate: EvaluateConfig
    source: Path = field(default=DEFAULT_PARAMS, compare=False)

    def __post_init__(self) -> None:
        if not self.labels:
            raise UserError(f"{self.source}: 'labels' must name at least one label")
        if len(set(self.labels)) != len(self.labels):
            raise UserError(f"{self.source}: 'labels' lists a label twice: {list(self.labels)}")
        for name in self.labels:
            if not name.isidentifier():
                raise UserError(f"{self.source}: label {name!r} must be a plain identifier (letters, digits, _)")
        split = self.split
        if not (0 < split.test_size < 1 and 0 < split.val_size < 1 and split.test_size + split.val_size < 1):
            raise UserError(f"{self.source}: split.test_size and split.val_size must be in (0, 1) and sum below 1")
        bg = self.background
        if not (bg.train_share >= 0 and bg.val_share >= 0 and bg.train_share + bg.val_share < 1):
            raise UserError(f"{self.source}: background.train_share + background.val_share must be below 1")
        for name, (low, high) in (("features.word_ngrams", self.features.word_ngrams),
                                  ("features.char_ngrams", self.features.char_ngrams)):
            if not 1 <= low <= high:
                raise UserError(f"{self.source}: {name} must be [low, high] with 1 <= low <= high")
        if self.features.char_ngrams[1] > 3:
            raise UserError(f"{self.source}: features.char_ngrams goes up to 3 at most")
        model = Path(self.paths.model)
        if Path(self.paths.model_card) != model.with_name(f"{model.stem}_card.json"):
            raise UserError(f"{self.source}: paths.model_card must be {model.with_name(model.stem + '_card.json')} "
                            "(the card sits beside its model)")
        within = self.thresholds.within_tolerance
        for key, per_label in (("features.norm_power", self.features.norm_power),
                               ("thresholds.f1_tolerance", self.thresholds.f1_tolerance),
                               ("thresholds.within_tolerance", within if isinstance(within, dict) else {})):
            for label in per_label:
                if label not in self.labels:
                    raise UserError(f"{self.source}: {key} names {label!r}, which is not one of the labels")
        for label, tolerance in self.thresholds.f1_tolerance.items():
            if not 0 <= tolerance < 1:
                raise UserError(f"{self.source}: thresholds.f1_tolerance.{label} must be from 0 to below 1")
        if bg.embedded_posts < 0:
            raise UserError(f"{self.source}: background.embedded_posts must be 0 or more")
        for label, power in self.features.norm_power.items():
            if not 0 <= power <= 1:
                raise UserError(f"{self.source}: features.norm_power.{label} must be from 0 to 1")
            if power != 1 and self.features.norm_floor_quantile is None:
                raise UserError(f"{self.source}: features.norm_power needs features.norm_floor_quantile")
        if self.features.concept_pairs and not self.features.concepts:
            raise UserError(f"{self.source}: features.concept_pairs needs features.concepts")
        if self.features.scope_window < 0:
            raise UserError(f"{self.source}: features.scope_window must be 0 (off) or more")
        if self.train.C <= 0:
            raise UserError(f"{self.source}: train.C must be positive")
        if self.train.validation == "cross_fitted" and self.train.calibration_groups != "writer":
            raise UserError(f"{self.source}: train.validation cross_fitted needs train.calibration_groups writer "
                            "(each post is scored by the fold that never saw its writer)")

    def root_path(self, relative: str) -> Path:
        """A path from the config, resolved against the folder holding ``configs/``."""
        return (self.source.resolve().parent.parent / relative).resolve()


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate the params file; raise UserError on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read config file {path}: {err}") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise UserError(f"config file {path} is not valid YAML{line}") from None
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must hold a mapping of sections")
    return build(Params, raw, f"{path}", extra={"source": path})
