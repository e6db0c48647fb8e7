"""Benchmark datasets with fixed splits, and the one protocol every compared model is
trained and scored with.

Every benchmark works on a ``BenchData``: cleaned frames, the candidate ``FeatureSet``
(inferred on the training split only) and, for synthetic data, the planted truth. Models
are trained with ``train_ranker`` (``TrainProtocol``) and scored with ``evaluate``.

- ``synthetic``: ``make_synthetic`` (random 20% test, then 20% of the rest validation).
- ``adult``: UCI Adult, label ``income`` (random splits as above).
- ``movielens``: MovieLens-100K, label ``rating >= 4``; time splits: the latest 20% by
  ``timestamp`` is the test set, the latest 20% of the rest validation.

Example:
    >>> data = load_dataset("synthetic", rows=4_000, embedding_dim=16)
    >>> len(data.features), len(data.train), len(data.test)
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import recsel  # noqa: F401  # isort: skip  (pins Keras 2 before TensorFlow loads)
import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras
from sklearn.metrics import log_loss, roc_auc_score

from recsel.data.synthetic import SyntheticData, make_synthetic
from recsel.inputs.frame_dataset import to_dataset, to_numpy_inputs
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.model.layer import PrunedEmbedding
from recsel.model.ranker import Ranker
from recsel.spec.features import FeatureSet

DATASETS = ("synthetic", "adult", "movielens")
TEST_FRACTION = 0.2
VALID_FRACTION = 0.2


@dataclasses.dataclass
class BenchData:
    """Cleaned splits, candidate features and (synthetic only) the planted truth.

    Args:
        name: Dataset name.
        train: Training rows (also what baselines train their models on).
        valid: Validation rows (for methods that need validation).
        test: Held-out test rows: every reported metric is measured here.
        features: Candidate features with their full widths; ``features.label`` is the label.
        split: How the rows were split, in words.
        truth: The synthetic data's roles (informative groups, duplicates, traps).

    Example:
        >>> data = load_dataset("adult", rows=10_000)
        >>> data.describe()["rows"]
    """

    name: str
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    features: FeatureSet
    split: str
    truth: SyntheticData | None = None

    @property
    def label(self) -> str:
        return str(self.features.label)

    def describe(self) -> dict:
        """Row counts, candidates and split, for result files."""
        return {
            "name": self.name,
            "rows": {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)},
            "candidates": len(self.features),
            "split": self.split,
            "positive_rate": round(float(self.train[self.label].mean()), 4),
        }


def synthetic_shape(candidates: int) -> dict[str, int]:
    """``make_synthetic`` role counts for a candidate count (defaults at 34 and above).

    The default table's proportions (8 informative, 6 duplicates, 20 noise of 34), capped
    at 8 informative and 6 duplicates; two noise columns (one below 20 candidates) are
    ID-like traps.

    Args:
        candidates: Number of candidate columns (at least 4).

    Example:
        >>> synthetic_shape(12)
        {'n_informative': 3, 'n_duplicates': 2, 'n_noise': 7, 'n_traps': 1}
    """
    if candidates < 4:
        raise ValueError(f"A synthetic benchmark needs at least 4 candidates, got {candidates}.")
    informative = min(8, max(1, round(candidates * 8 / 34)))
    duplicates = min(6, max(1, round(candidates * 6 / 34)))
    noise = candidates - informative - duplicates
    return {
        "n_informative": informative,
        "n_duplicates": duplicates,
        "n_noise": noise,
        "n_traps": min(2 if candidates >= 20 else 1, noise),
    }


def _subsample(frame: pd.DataFrame, rows: int | None, seed: int) -> pd.DataFrame:
    if rows is None or rows >= len(frame):
        return frame
    if rows < 100:
        raise ValueError(f"rows={rows} is too few for a train/valid/test split; use >= 100.")
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), rows, replace=False))
    return frame.iloc[keep].reset_index(drop=True)


def _finish(
    name: str,
    frame: pd.DataFrame,
    label: str,
    embedding_dim: int | Callable[[int], int],
    time_column: str | None,
    truth: SyntheticData | None = None,
) -> BenchData:
    rest, test = split_frame(frame, TEST_FRACTION, seed=0, time_column=time_column)
    train, valid = split_frame(rest, VALID_FRACTION, seed=1, time_column=time_column)
    exclude = [time_column] if time_column else []
    features = infer_feature_set(train, label, embedding_dim=embedding_dim, exclude=exclude)
    clean = [validate_frame(part, features, label) for part in (train, valid, test)]
    how = (
        f"time split on {time_column!r}: latest {TEST_FRACTION:.0%} test, latest "
        f"{VALID_FRACTION:.0%} of the rest validation"
        if time_column
        else f"random: {TEST_FRACTION:.0%} test, {VALID_FRACTION:.0%} of the rest validation"
    )
    return BenchData(name, *clean, features=features, split=how, truth=truth)


def load_dataset(
    name: str,
    rows: int | None = None,
    embedding_dim: int | Callable[[int], int] = 16,
    candidates: int = 34,
    data_seed: int = 0,
) -> BenchData:
    """Loads one benchmark dataset with its fixed splits.

    Args:
        name: ``synthetic``, ``adult`` or ``movielens``.
        rows: Rows to use (a seeded random subsample for the public data; the table size
            for synthetic data); None: all (synthetic: 20,000).
        embedding_dim: Full width of every candidate, or a function of its table size.
        candidates: Synthetic only: number of candidate columns (see ``synthetic_shape``).
        data_seed: Seed of the synthetic table and of the public-data subsample.

    Returns:
        The ``BenchData``.

    Raises:
        ValueError: Unknown dataset name or too few rows.

    Example:
        >>> movielens = load_dataset("movielens", rows=20_000)
    """
    if name == "synthetic":
        truth = make_synthetic(n_rows=rows or 20_000, seed=data_seed, **synthetic_shape(candidates))
        return _finish(name, truth.frame, truth.label, embedding_dim, None, truth)
    if name == "adult":
        from recsel.data.public import load_adult

        data = load_adult()
        frame = _subsample(data.frame, rows, data_seed)
        return _finish(name, frame, data.label, embedding_dim, None)
    if name == "movielens":
        from recsel.data.public import load_movielens_100k

        data = load_movielens_100k()
        frame = _subsample(data.frame, rows, data_seed)
        return _finish(name, frame, data.label, embedding_dim, data.time_column)
    raise ValueError(f"Unknown benchmark dataset {name!r}; choose one of {DATASETS}.")


def planted_metrics(truth: SyntheticData, selected: list[str]) -> dict[str, float]:
    """Recall of planted informative groups and redundant picks in a selection.

    Args:
        truth: The synthetic data's roles.
        selected: Selected column names.

    Example:
        >>> planted_metrics(data.truth, ["f03", "f09", "f11"])
        {'group_recall': 0.25, 'duplicates_selected': 1, 'noise_selected': 1, ...}
    """
    group_of = {c: g for g, members in truth.groups().items() for c in members}
    groups = [group_of.get(s) for s in selected]
    recovered = len({g for g in groups if g})
    return {
        "group_recall": recovered / len(truth.informative),
        "duplicates_selected": sum(1 for g in groups if g) - recovered,
        "noise_selected": groups.count(None),
        "traps_selected": len(set(selected) & set(truth.traps)),
    }


# ------------------------------------------------------------------ training protocol
@dataclasses.dataclass(frozen=True)
class TrainProtocol:
    """How every compared feature set is trained: recsel's own defaults.

    Args:
        epochs: Passes over the training rows (recsel's default 1: repeated examples let
            ID-like features win by memorisation).
        batch_size: Rows per step.
        learning_rate: Adam learning rate.
        hidden_units: The ranker tower.

    Example:
        >>> TrainProtocol().steps(25_600)
        100
    """

    epochs: float = 1.0
    batch_size: int = 256
    learning_rate: float = 3e-3
    hidden_units: tuple[int, ...] = (64, 32)

    def steps(self, rows: int) -> int:
        return max(1, math.ceil(rows * self.epochs / self.batch_size))


def fit(
    model: tf_keras.Model,
    train: pd.DataFrame,
    features: FeatureSet,
    protocol: TrainProtocol,
    seed: int,
) -> tf_keras.Model:
    """Compiles ``model`` and trains it with the protocol (shuffled with ``seed``).

    Args:
        model: A fresh model reading ``features``, returning logits.
        train: Cleaned training rows.
        features: The model's features; ``features.label`` is the label column.
        protocol: Training settings.
        seed: Shuffle seed.

    Example:
        >>> fit(Ranker(PrunedEmbedding(features)), train, features, TrainProtocol(), 0)
    """
    model.compile(
        optimizer=tf_keras.optimizers.Adam(protocol.learning_rate),
        loss=tf_keras.losses.BinaryCrossentropy(from_logits=True),
    )
    dataset = to_dataset(
        train, features, features.label, protocol.batch_size, shuffle=True, seed=seed, repeat=True
    )
    model.fit(dataset, steps_per_epoch=protocol.steps(len(train)), epochs=1, verbose=0)
    return model


def train_ranker(
    train: pd.DataFrame, features: FeatureSet, protocol: TrainProtocol, seed: int
) -> tuple[Ranker, float]:
    """Trains ``Ranker(PrunedEmbedding(features))`` from scratch; returns it and its wall time.

    Args:
        train: Cleaned training rows.
        features: The features to use, at the widths in their specs.
        protocol: Training settings.
        seed: Seed of initialisation and shuffling.

    Returns:
        ``(model, seconds)``: seconds cover building, input pipeline and training.

    Example:
        >>> model, seconds = train_ranker(train, features.subset(["age"]), TrainProtocol(), 0)
    """
    started = time.perf_counter()
    tf_keras.utils.set_random_seed(seed)
    model = Ranker(PrunedEmbedding(features, seed=seed), protocol.hidden_units, seed=seed)
    fit(model, train, features, protocol, seed)
    return model, time.perf_counter() - started


def predict(model: tf_keras.Model, inputs: dict) -> np.ndarray:
    """Probabilities of ``model`` on a dict of input tensors.

    Args:
        model: A ranker returning logits ``[rows, 1]``.
        inputs: ``recsel.inputs.frame_dataset.to_numpy_inputs`` of the rows.

    Example:
        >>> predict(model, to_numpy_inputs(valid, features))[:3]
    """
    return tf.sigmoid(model(inputs, training=False)[:, 0]).numpy()


def score(labels: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """AUC and log loss of probabilities against 0/1 labels.

    Args:
        labels: 0/1 labels.
        probability: Predicted probabilities.

    Raises:
        ValueError: The labels have a single class.

    Example:
        >>> score(np.array([0, 1]), np.array([0.2, 0.9]))["auc"]
        1.0
    """
    if len(np.unique(labels)) < 2:
        raise ValueError("The evaluation rows have a single label class; AUC is undefined.")
    return {
        "auc": float(roc_auc_score(labels, probability)),
        "log_loss": float(log_loss(labels, np.clip(probability, 1e-7, 1 - 1e-7))),
    }


def evaluate(model: tf_keras.Model, frame: pd.DataFrame, features: FeatureSet) -> dict[str, float]:
    """AUC and log loss of ``model`` on a cleaned frame.

    Args:
        model: A ranker reading ``features``.
        frame: Rows to score (cleaned by ``validate_frame``).
        features: The model's features; ``features.label`` is the label column.

    Example:
        >>> evaluate(model, data.test, subset)["auc"]
    """
    probability = predict(model, to_numpy_inputs(frame, features))
    return score(frame[features.label].to_numpy(), probability)
