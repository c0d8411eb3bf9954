"""How many posts carry each label: prevalence estimates with a 95% interval, for ``predict --summary``.

The share of posts the model flags is biased: it misses some positives (recall below 1) and flags some negatives
(the false-alarm rate). Adjusted classify-and-count (ACC) corrects it,
``(flagged share - false-alarm rate) / (recall - false-alarm rate)``, with the rates the model card records
(recall on the posts the thresholds were chosen on; false alarms on held-out background posts, else on the
labeled negatives among those posts).

The interval carries three uncertainties: which of the input's posts the model happens to get right (the flagged
count given the input's positives), and the two error rates, each estimated from a finite count. It is a
parametric bootstrap: each resample draws the flagged count of an input with the estimated number of positives at
the measured rates, and corrects it with rates drawn from their Jeffreys posteriors, Beta(k + 1/2, n - k + 1/2).
The Beta draws are used rather than resampling the counts, because a rate measured as 0 of 23,887 would otherwise
be certain; the Jeffreys interval is also the one with close to nominal coverage for small counts.

Beside ACC, where they apply, three methods of the quapy library (Moreo, Esuli & Sebastiani): ACC again (a check),
PACC (the same correction on mean probabilities, which needs the validation posts' probabilities) and EMQ/SLD
(Saerens, Latinne & Decaestecker: re-weighting the probabilities by EM, which needs calibrated probabilities and the
training prior).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class ErrorRates:
    """A label's error rates as counts: ``tp`` of ``positives`` flagged, ``fp`` of ``negatives`` flagged."""

    tp: int
    positives: int
    fp: int
    negatives: int
    negatives_from: str = "validation"

    @property
    def tpr(self) -> float:
        return self.tp / self.positives

    @property
    def fpr(self) -> float:
        return self.fp / self.negatives

    @classmethod
    def from_labels(cls, truth: np.ndarray, flagged: np.ndarray, negatives_from: str = "validation") -> ErrorRates:
        truth, flagged = np.asarray(truth, dtype=bool), np.asarray(flagged, dtype=bool)
        return cls(tp=int((truth & flagged).sum()), positives=int(truth.sum()), fp=int((~truth & flagged).sum()),
                   negatives=int((~truth).sum()), negatives_from=negatives_from)


def card_rates(card: dict, label: str, false_alarms: str = "background") -> ErrorRates | None:
    """The label's error rates from the model card: validation recall, and the false-alarm rate of held-out
    background posts (``false_alarms="background"``: for inputs of ordinary posts; the labeled validation negatives'
    rate when the background corpus was absent) or of the labeled validation negatives (``"labeled"``: for inputs
    rich in hard negatives, such as the hits of a keyword search). None when the card lacks them."""
    if false_alarms not in ("background", "labeled"):
        raise ValueError(false_alarms)
    validation = card.get("validation", {}).get(label, {})
    recall, support, posts = validation.get("recall"), validation.get("support"), validation.get("posts")
    if recall is None or not support:
        return None
    tp = round(recall * support)
    far, background_posts = validation.get("background_far"), validation.get("background_posts")
    if false_alarms == "background" and far is not None and background_posts:
        return ErrorRates(tp, int(support), round(far * background_posts), int(background_posts), "background")
    labeled_fpr = validation.get("labeled_false_positive_rate")
    if labeled_fpr is None or not posts or posts <= support:
        return None
    negatives = int(posts - support)
    return ErrorRates(tp, int(support), round(labeled_fpr * negatives), negatives, "labeled validation")


def adjusted(flag_rate: float | np.ndarray, tpr: float | np.ndarray, fpr: float | np.ndarray):
    """Adjusted classify-and-count, clipped to [0, 1]; NaN where recall does not exceed the false-alarm rate."""
    flag_rate, tpr, fpr = np.asarray(flag_rate, float), np.asarray(tpr, float), np.asarray(fpr, float)
    gap = tpr - fpr
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(gap > 0, (flag_rate - fpr) / gap, np.nan)
    return np.clip(estimate, 0.0, 1.0)


@dataclass(frozen=True)
class Estimate:
    """A prevalence estimate (a share of the posts) with its interval."""

    share: float
    low: float
    high: float
    posts: int

    def describe(self) -> str:
        return (f"{self.share:.3%} ({self.low:.3%}–{self.high:.3%}), ~{self.share * self.posts:,.0f} posts "
                f"({self.low * self.posts:,.0f}–{self.high * self.posts:,.0f})")


def acc_interval(flagged: int, posts: int, rates: ErrorRates, resamples: int = 4000, confidence: float = CONFIDENCE,
                 seed: int = 0) -> Estimate | None:
    """ACC with a parametric bootstrap interval over the flagged share and both error rates (module docstring)."""
    if posts <= 0 or rates.positives <= 0 or rates.negatives <= 0:
        return None
    point = float(adjusted(flagged / posts, rates.tpr, rates.fpr))
    if np.isnan(point):
        return None
    rng = np.random.default_rng(seed)
    # The input's positives are what is estimated; its flagged count varies with which of them the model catches
    # and which negatives it flags: simulated at the estimate with the measured rates, then corrected with rates
    # drawn from what their counts allow.
    positives = round(point * posts)
    share = (rng.binomial(positives, rates.tpr, resamples)
             + rng.binomial(posts - positives, rates.fpr, resamples)) / posts
    tpr = rng.beta(rates.tp + 0.5, rates.positives - rates.tp + 0.5, resamples)
    fpr = rng.beta(rates.fp + 0.5, rates.negatives - rates.fp + 0.5, resamples)
    draws = adjusted(share, tpr, fpr)
    draws = draws[~np.isnan(draws)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail]) if len(draws) else (np.nan, np.nan)
    return Estimate(point, float(min(low, point)), float(max(high, point)), posts)


@dataclass
class Validation:
    """Validation posts' probabilities (one column per label) and true labels, for PACC."""

    proba: np.ndarray
    truth: np.ndarray


@dataclass
class Tally:
    """Running sums over the chunks of one input, per label: posts, flagged posts, summed probabilities, and a
    uniform sample of the probabilities (at most ``keep`` rows) for EMQ, so memory stays flat on any input."""

    thresholds: np.ndarray
    keep: int = 200_000
    seed: int = 0
    posts: int = 0
    flagged: np.ndarray | None = None
    proba_sum: np.ndarray | None = None
    _keys: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _sample: np.ndarray | None = None
    _rng: np.random.Generator | None = None

    def add(self, proba: np.ndarray) -> None:
        proba = np.asarray(proba, dtype=float)
        if self.flagged is None:
            self.flagged = np.zeros(proba.shape[1], dtype=int)
            self.proba_sum = np.zeros(proba.shape[1])
            self._sample = np.zeros((0, proba.shape[1]))
            self._rng = np.random.default_rng(self.seed)
        self.posts += len(proba)
        self.flagged += (proba >= self.thresholds).sum(axis=0)
        self.proba_sum += proba.sum(axis=0)
        # Bottom-k sampling: every row gets a random key and the rows with the smallest keys are kept, a uniform
        # sample of the whole input however it is chunked.
        self._keys = np.r_[self._keys, self._rng.random(len(proba))]
        self._sample = np.vstack([self._sample, proba])
        if len(self._keys) > 2 * self.keep:
            kept = np.argpartition(self._keys, self.keep)[: self.keep]
            self._keys, self._sample = self._keys[kept], self._sample[kept]

    @classmethod
    def merged(cls, tallies: list[Tally | None], thresholds: np.ndarray) -> Tally:
        """One tally of several inputs' (the parts of a cluster run): counts summed, and the bottom-k of the parts'
        independent sample keys kept, which is a uniform sample of all their rows."""
        total = cls(thresholds)
        tallies = [t for t in tallies if t is not None and t.flagged is not None]
        if not tallies:
            return total
        total.posts = sum(t.posts for t in tallies)
        total.flagged = sum(t.flagged for t in tallies)
        total.proba_sum = sum(t.proba_sum for t in tallies)
        total._keys = np.concatenate([t._keys for t in tallies])
        total._sample = np.vstack([t._sample for t in tallies])
        total._rng = np.random.default_rng(total.seed)
        if len(total._keys) > total.keep:
            kept = np.argpartition(total._keys, total.keep)[: total.keep]
            total._keys, total._sample = total._keys[kept], total._sample[kept]
        return total

    @property
    def sample(self) -> np.ndarray:
        """A uniform sample of the rows' probabilities, at most ``keep`` rows."""
        if self._sample is None:
            return np.zeros((0, len(self.thresholds)))
        if len(self._keys) <= self.keep:
            return self._sample
        return self._sample[np.argpartition(self._keys, self.keep)[: self.keep]]


def quapy_estimates(j: int, tally: Tally, rates: ErrorRates | None, train_prior: float | None,
                    validation: Validation | None) -> dict[str, float]:
    """quapy's ACC, PACC and EMQ for label column ``j``, each where its inputs exist."""
    from quapy.method.aggregative import ACC, EMQ, PACC

    out: dict[str, float] = {}
    classes = np.array([0, 1])
    if rates is not None:
        truth = np.r_[np.ones(rates.positives), np.zeros(rates.negatives)].astype(int)
        predicted = np.r_[np.ones(rates.tp), np.zeros(rates.positives - rates.tp), np.ones(rates.fp),
                          np.zeros(rates.negatives - rates.fp)].astype(int)
        flag_rate = tally.flagged[j] / tally.posts
        out["ACC"] = _positive(ACC.solve_adjustment(ACC.getPteCondEstim(classes, truth, predicted),
                                                    np.array([1 - flag_rate, flag_rate]), method="inversion",
                                                    solver="exact-raise"))
    if validation is not None:
        posteriors = _two_columns(validation.proba[:, j])
        conditional = PACC.getPteCondEstim(classes, validation.truth[:, j].astype(int), posteriors)
        mean = tally.proba_sum[j] / tally.posts
        out["PACC"] = _positive(ACC.solve_adjustment(conditional, np.array([1 - mean, mean]), method="inversion",
                                                     solver="exact-raise"))
    sample = tally.sample[:, j]
    if train_prior is not None and len(sample):
        priors, _ = EMQ.EM(np.array([1 - train_prior, train_prior]), _two_columns(sample))
        out["EMQ"] = float(priors[1])
    return out


def _two_columns(p: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - p, p])


def _positive(prevalence) -> float:
    prevalence = np.clip(np.asarray(prevalence, dtype=float), 0, None)
    total = prevalence.sum()
    return float(prevalence[1] / total) if total > 0 else float("nan")


def training_prior(card: dict, label: str) -> float | None:
    """The label's share of the training weight, as the calibrated probabilities learnt it: labeled positives (the
    threshold posts' positive share times the labeled training posts) over the labeled posts plus the weighted
    background posts. None when the card does not say."""
    data, validation = card.get("data", {}), card.get("validation", {}).get(label, {})
    labeled, background = data.get("train_labeled"), data.get("train_background", 0)
    weight = card.get("params", {}).get("background", {}).get("weight", 0.0)
    if not labeled or not validation.get("posts") or validation.get("support") is None:
        return None
    positives = labeled * validation["support"] / validation["posts"]
    return float(positives / (labeled + weight * background))


def summary_lines(model, chunk_probas: Iterable[np.ndarray], thresholds: dict[str, float] | None = None,
                  false_alarms: str = "background", validation: Validation | None = None, quapy: bool = True,
                  resamples: int = 4000, seed: int = 0) -> list[str]:
    """The ``--summary`` lines on prevalence: for each label, the flagged count and share, the ACC estimate with its
    95% interval, and quapy's estimates where they apply.

    ``chunk_probas`` are the probabilities of each chunk (one column per label in ``model.labels`` order), as
    ``model.predict_proba`` returns them; ``thresholds`` are predict's ``--threshold`` overrides. With an override,
    the card's error rates (measured at the model's own threshold) no longer hold, so ACC is not given.
    ``false_alarms`` says which false-alarm rate fits the input (:func:`card_rates`). ``validation`` (validation
    posts' probabilities and labels) enables PACC; ``quapy=False`` skips quapy's methods
    (importing quapy takes about two seconds).
    """
    thresholds = thresholds or {}
    cut = {**model.thresholds, **thresholds}
    tally = Tally(np.array([cut[label] for label in model.labels]), seed=seed)
    for proba in chunk_probas:
        tally.add(proba)
    return tally_lines(model, tally, overridden=set(thresholds), false_alarms=false_alarms, validation=validation,
                       quapy=quapy, resamples=resamples, seed=seed)


def tally_lines(model, tally: Tally, overridden: set[str] = frozenset(), false_alarms: str = "background",
                validation: Validation | None = None, quapy: bool = True, resamples: int = 4000,
                seed: int = 0) -> list[str]:
    """The lines of :func:`summary_lines` from a :class:`Tally` filled chunk by chunk."""
    lines = [f"prevalence: {tally.posts:,} posts; 95% intervals carry the error rates' uncertainty"]
    if tally.posts == 0:
        return lines
    for j, label in enumerate(model.labels):
        flagged = int(tally.flagged[j])
        lines.append(f"  {label}: {flagged:,} flagged ({flagged / tally.posts:.3%})")
        rates = None if label in overridden else card_rates(model.card, label, false_alarms)
        if label in overridden:
            lines.append("    adjusted count: n/a (threshold overridden; the card's rates hold at the model's own)")
        elif rates is None:
            lines.append("    adjusted count: n/a (the model card has no validation rates)")
        else:
            estimate = acc_interval(flagged, tally.posts, rates, resamples=resamples, seed=seed)
            text = "n/a (recall does not exceed the false-alarm rate)" if estimate is None else estimate.describe()
            lines.append(f"    adjusted count: {text}; recall {rates.tp}/{rates.positives}, false alarms "
                         f"{rates.fp}/{rates.negatives} ({rates.negatives_from})")
        others = quapy_estimates(j, tally, rates, training_prior(model.card, label), validation) if quapy else {}
        if others:
            lines.append("    quapy: " + ", ".join(f"{name} {value:.3%}" for name, value in others.items()))
    return lines
