"""Feature-selection baselines a practitioner would try instead of recsel, and the
training protocol (``benchmarks.datasets``) every compared selection is retrained with.

Each baseline returns a ``Ranking``: features best first, one score each, and the wall
time it took. Top-k of a ranking is the baseline's choice at k.

- ``random_ranking``: a seeded shuffle.
- ``mutual_information_ranking``: sklearn ``mutual_info_classif`` on discretised columns.
- ``l1_gate_ranking``: one scalar gate per feature embedding with an L1 penalty, trained
  jointly with the ranker once (the LASSO-style AutoField / LPFS family), ranked by |gate|.
- ``permutation_ranking``: AUC drop of the trained full model when one validation column
  is shuffled.
- ``tree_importance_ranking``: permutation importance (validation AUC drop) of a
  scikit-learn ``HistGradientBoostingClassifier`` fitted on all candidates.
- ``greedy_forward_path``: forward selection, retraining a model per candidate per step.

Example:
    >>> protocol = TrainProtocol()
    >>> model, seconds = train_ranker(data.train, data.features, protocol, seed=0)
    >>> ranking = mutual_information_ranking(data.train, data.features)
    >>> ranking.top(4)
"""

from __future__ import annotations

import dataclasses
import time

import recsel  # noqa: F401  # isort: skip  (pins Keras 2 before TensorFlow loads)
import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras
from sklearn.feature_selection import mutual_info_classif

from benchmarks.datasets import TrainProtocol, evaluate, fit, predict, score, train_ranker
from recsel.inputs.frame_dataset import to_numpy_inputs
from recsel.model.embedding import FeatureEmbedding
from recsel.model.ranker import Ranker
from recsel.spec.features import FeatureSet

# The training protocol lives with the data; re-exported so ``bl.train_ranker`` etc. work.
__all__ = [
    "GreedyPath", "L1GatedEmbedding", "Ranking", "TrainProtocol", "evaluate",
    "greedy_forward_path", "l1_gate_ranking", "mutual_information_ranking",
    "permutation_ranking", "predict", "random_ranking", "score", "train_ranker",
    "tree_importance_ranking",
]  # fmt: skip

RARE = "__rare__"


@dataclasses.dataclass
class Ranking:
    """A baseline's feature order (best first), its scores and its wall time.

    Args:
        method: Baseline name.
        order: Candidates, best first.
        scores: Score per candidate (higher is better).
        seconds: Wall time of computing the ranking.

    Example:
        >>> random_ranking(features, seed=0).top(3)
    """

    method: str
    order: list[str]
    scores: dict[str, float]
    seconds: float

    def top(self, k: int) -> list[str]:
        return self.order[:k]


# ------------------------------------------------------------------------------ rankings
def _ranking(method: str, scores: dict[str, float], started: float, names: list[str]) -> Ranking:
    # Ties keep candidate order, so rankings are deterministic.
    order = sorted(names, key=lambda n: (-scores[n], names.index(n)))
    return Ranking(method, order, scores, time.perf_counter() - started)


def random_ranking(features: FeatureSet, seed: int) -> Ranking:
    """A seeded random order: what chance alone achieves at each k.

    Args:
        features: Candidate features.
        seed: Shuffle seed.

    Example:
        >>> random_ranking(features, seed=1).order
    """
    started = time.perf_counter()
    order = list(np.random.default_rng(seed).permutation(features.names))
    scores = {n: float(len(order) - i) for i, n in enumerate(order)}
    return Ranking("random", order, scores, time.perf_counter() - started)


def _codes(series: pd.Series, min_count: int) -> np.ndarray:
    counts = series.value_counts()
    rare = ~series.isin(counts.index[counts >= min_count])
    return pd.factorize(series.astype(str).where(~rare, RARE))[0]


def mutual_information_ranking(
    train: pd.DataFrame,
    features: FeatureSet,
    bins: int = 16,
    min_count: int = 5,
    max_tokens: int = 64,
    seed: int = 0,
) -> Ranking:
    """Ranks features by their mutual information with the label (sklearn, plug-in, nats).

    Encoding: numeric columns are cut into ``bins`` quantile bins; categorical values
    seen fewer than ``min_count`` times in training share one "rare" code (without this
    the plug-in estimate of an ID-like column is inflated by its cardinality); a
    multi-valent column scores the sum of the MI of its ``max_tokens`` most frequent
    tokens' presence indicators (each token at least ``min_count`` times), which ignores
    token interactions.

    Args:
        train: Cleaned training rows.
        features: Candidate features; ``features.label`` is the label column.
        bins: Quantile bins of a numeric column.
        min_count: Least count of a value (or token) to keep its own code.
        max_tokens: Most frequent tokens scored per multi-valent column.
        seed: ``random_state`` passed to sklearn.

    Example:
        >>> mutual_information_ranking(train, features).order[:3]
    """
    started = time.perf_counter()
    labels = train[features.label].to_numpy().astype(int)
    scores = {}
    for spec in features:
        column = train[spec.name]
        if spec.kind == "numeric":
            codes = pd.qcut(column.rank(method="first"), bins, labels=False).to_numpy()[:, None]
        elif spec.kind == "categorical":
            codes = _codes(column, min_count)[:, None]
        else:
            tokens = column.explode().dropna().astype(str).value_counts()
            kept = tokens.index[tokens >= min_count][:max_tokens]
            if len(kept) == 0:
                scores[spec.name] = 0.0
                continue
            sets = column.map(lambda cell: {str(t) for t in cell})
            codes = np.stack([sets.map(lambda s, t=t: t in s).to_numpy(int) for t in kept], 1)
        mi = mutual_info_classif(codes, labels, discrete_features=True, random_state=seed)
        scores[spec.name] = float(np.sum(mi))
    return _ranking("mutual_information", scores, started, features.names)


class L1GatedEmbedding(tf_keras.layers.Layer):
    """Feature embeddings, each multiplied by a trainable scalar gate with an L1 penalty.

    The embeddings are recsel's ``FeatureEmbedding`` with the same L2 on looked-up rows as
    the selection layer, so a gate cannot shrink by growing its table instead.

    Args:
        features: Candidate features.
        l1: Penalty weight on ``sum(|gate|)``.
        l2: Penalty on looked-up embedding rows (recsel's default).
        seed: Initializer seed.

    Example:
        >>> layer = L1GatedEmbedding(features, l1=1e-3)
        >>> model = Ranker(layer, (64, 32))
    """

    def __init__(self, features: FeatureSet, l1: float, l2: float = 1e-4, seed: int = 0, **kw):
        super().__init__(**kw)
        self.features, self.l1 = features, float(l1)
        self.embeddings = {
            s.name: FeatureEmbedding(s, l2=l2, seed=seed + i) for i, s in enumerate(features)
        }
        self.gates = self.add_weight(
            name="gates", shape=(len(features),), initializer="ones", trainable=True
        )
        widths = [s.embedding_dim for s in features]
        self._column_feature = np.repeat(np.arange(len(features)), widths).astype(np.int32)

    @property
    def output_width(self) -> int:
        return int(self._column_feature.size)

    def call(self, inputs: dict) -> tf.Tensor:
        embedded = tf.concat([self.embeddings[n](inputs[n]) for n in self.features.names], 1)
        self.add_loss(self.l1 * tf.reduce_sum(tf.abs(self.gates)))
        return embedded * tf.gather(self.gates, self._column_feature)


def l1_gate_ranking(
    train: pd.DataFrame, features: FeatureSet, protocol: TrainProtocol, seed: int, l1: float = 1e-3
) -> Ranking:
    """Trains the gated ranker once with the protocol and ranks features by |gate|.

    Args:
        train: Cleaned training rows.
        features: Candidate features.
        protocol: Training settings.
        seed: Seed of initialisation and shuffling.
        l1: Penalty weight on ``sum(|gate|)``.

    Example:
        >>> l1_gate_ranking(train, features, TrainProtocol(), seed=0).top(5)
    """
    started = time.perf_counter()
    tf_keras.utils.set_random_seed(seed)
    layer = L1GatedEmbedding(features, l1=l1, seed=seed)
    model = Ranker(layer, protocol.hidden_units, seed=seed)
    fit(model, train, features, protocol, seed)
    gates = np.abs(layer.gates.numpy())
    scores = {n: float(g) for n, g in zip(features.names, gates, strict=True)}
    return _ranking("l1_gate", scores, started, features.names)


def permutation_ranking(
    model: tf_keras.Model,
    valid: pd.DataFrame,
    features: FeatureSet,
    seed: int,
    repeats: int = 1,
    train_seconds: float = 0.0,
) -> Ranking:
    """Ranks features by the validation AUC drop when their column is shuffled.

    Args:
        model: The trained full model (all ``features``).
        valid: Validation rows.
        features: The model's features.
        seed: Seed of the shuffles.
        repeats: Shuffles per feature (the drop is their mean).
        train_seconds: Time it took to train ``model``, added to the reported cost.

    Example:
        >>> model, seconds = train_ranker(train, features, TrainProtocol(), 0)
        >>> permutation_ranking(model, valid, features, 0, train_seconds=seconds).top(5)
    """
    started = time.perf_counter()
    labels = valid[features.label].to_numpy()
    inputs = to_numpy_inputs(valid, features)
    base = score(labels, predict(model, inputs))["auc"]
    rng = np.random.default_rng(seed)
    scores = {}
    for name in features.names:
        drops = []
        for _ in range(repeats):
            shuffled = dict(inputs)
            shuffled[name] = tf.gather(inputs[name], rng.permutation(len(valid)))
            drops.append(base - score(labels, predict(model, shuffled))["auc"])
        scores[name] = float(np.mean(drops))
    ranking = _ranking("permutation", scores, started, features.names)
    ranking.seconds += train_seconds
    return ranking


def _tree_codes(frame: pd.DataFrame, features: FeatureSet, fitted: dict | None = None):
    """Columns for a tree model: numerics as is, a categorical (a multi-valent one by its
    sorted token set) as its training-frequency rank, unseen values as -1 (NaN)."""
    fitted = {} if fitted is None else fitted
    columns = []
    for spec in features:
        column = frame[spec.name]
        if spec.kind == "numeric":
            columns.append(pd.to_numeric(column, errors="coerce").to_numpy(np.float64))
            continue
        if spec.kind == "multi_categorical":
            column = column.map(lambda cell: "|".join(sorted(str(t) for t in cell)))
        column = column.astype(str)
        if spec.name not in fitted:
            counts = column.value_counts()
            fitted[spec.name] = pd.Series(np.arange(len(counts), dtype=np.float64), counts.index)
        columns.append(column.map(fitted[spec.name]).to_numpy(np.float64))
    return np.stack(columns, 1), fitted


def tree_importance_ranking(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: FeatureSet,
    seed: int,
    repeats: int = 3,
    max_iter: int = 200,
) -> Ranking:
    """Ranks features by the permutation importance (validation AUC drop) of a gradient-
    boosted tree model: scikit-learn's ``HistGradientBoostingClassifier``.

    The shallow baseline of recommender feature-selection benchmarks (ERASE includes
    GBDT importances) and the first one a practitioner tries. Categorical values are
    coded by training-frequency rank, so frequent values share low codes; ID-like columns
    therefore split like a popularity feature. Early stopping on an internal 10%
    hold-out keeps it from memorising. Its wall time includes the fit.

    Args:
        train: Cleaned training rows.
        valid: Validation rows (the importances are measured here).
        features: Candidate features; ``features.label`` is the label column.
        seed: Seed of the model and of the shuffles.
        repeats: Shuffles per feature.
        max_iter: Most boosting iterations.

    Example:
        >>> tree_importance_ranking(train, valid, features, seed=0).top(5)
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance

    started = time.perf_counter()
    x_train, fitted = _tree_codes(train, features)
    x_valid, _ = _tree_codes(valid, features, fitted)
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, early_stopping=True, validation_fraction=0.1, random_state=seed
    )
    model.fit(x_train, train[features.label].to_numpy().astype(int))
    importance = permutation_importance(
        model, x_valid, valid[features.label].to_numpy().astype(int), scoring="roc_auc",
        n_repeats=repeats, random_state=seed,
    )  # fmt: skip
    scores = {n: float(v) for n, v in zip(features.names, importance.importances_mean)}
    return _ranking("tree_importance", scores, started, features.names)


@dataclasses.dataclass
class GreedyPath:
    """Forward-selection order with the cumulative wall time after each step.

    Args:
        order: Features in the order they were added.
        valid_auc: Validation AUC after each step.
        seconds: Cumulative wall time after each step.
        candidates_per_step: Candidates tried at each step.

    Example:
        >>> path.order[:3], path.seconds_at(3)
    """

    order: list[str]
    valid_auc: list[float]
    seconds: list[float]
    candidates_per_step: list[int]

    def seconds_at(self, k: int) -> float:
        return self.seconds[k - 1]


def greedy_forward_path(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    features: FeatureSet,
    protocol: TrainProtocol,
    seed: int,
    steps: int,
    max_candidates: int | None = None,
) -> GreedyPath:
    """Forward selection: each step retrains one model per candidate and keeps the best.

    Args:
        train: Training rows.
        valid: Validation rows (the step's criterion is validation AUC).
        features: Candidate features.
        protocol: Training settings of every candidate model.
        seed: Seed of the models and of the candidate sampling.
        steps: Features to select (the path length).
        max_candidates: If set, each step tries only this many remaining candidates, drawn
            at random: a cap that keeps the search affordable; None tries all.

    Returns:
        The path; its prefix of length k is greedy's choice at k.

    Example:
        >>> path = greedy_forward_path(train, valid, features, TrainProtocol(), 0, steps=4)
    """
    if not 1 <= steps <= len(features):
        raise ValueError(f"steps must be in [1, {len(features)}], got {steps}.")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    path = GreedyPath([], [], [], [])
    for _ in range(steps):
        remaining = [n for n in features.names if n not in chosen]
        if max_candidates is not None and len(remaining) > max_candidates:
            remaining = list(rng.choice(remaining, max_candidates, replace=False))
        results = {}
        for name in remaining:
            subset = features.subset([*chosen, name])
            model, _ = train_ranker(train, subset, protocol, seed)
            results[name] = evaluate(model, valid, subset)["auc"]
        best = max(remaining, key=lambda n: (results[n], -features.names.index(n)))
        chosen.append(best)
        path.order.append(best)
        path.valid_auc.append(results[best])
        path.seconds.append(time.perf_counter() - started)
        path.candidates_per_step.append(len(remaining))
    return path
