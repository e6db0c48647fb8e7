"""The selection run's validation rows: one head read, re-iterated batches, evaluation.

Every user of validation rows in a run (budget rounds, explain, width judging, the final
evaluation) reads them through one ``ValidationRows``, so each is read or converted
once: the head as a frame (the serving and explain samples share it), the batches as
one pipeline or one frame conversion that later evaluations re-iterate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras
from sklearn.metrics import log_loss, roc_auc_score

from recsel.inputs.frame_dataset import FrameBatches
from recsel.inputs.readers import FileStream
from recsel.inputs.source import INPUT_ERRORS, BatchSource, FrameSource, explained
from recsel.spec.features import FeatureSet

# Rows kept in memory as serving-latency inputs (calibration and budget rounds).
SERVING_SAMPLE_ROWS = 2048
# The validation stream's head is read this many rows at once: the serving sample and
# the explain sample (``recsel.selection.explain.SAMPLE_ROWS``) are both its first rows,
# so one read serves both (each read builds a pipeline and Python cells: ~0.4-0.8 s).
VALID_HEAD_ROWS = 5000
# Rows per validation batch when evaluating.
EVAL_BATCH_ROWS = 4096


class ValidationRows:
    """A run's validation source, read lazily and at most once per form.

    Args:
        source: The validation ``BatchSource``.
        features: The run's candidate features.
        label: The label column.
        serving_batch_size: The serving batch; the serving sample holds at least that.

    Example:
        >>> rows = ValidationRows(valid_source, features, "label", 512)
        >>> rows.evaluate(model, features)["auc"]
    """

    def __init__(
        self, source: BatchSource, features: FeatureSet, label: str, serving_batch_size: int
    ):
        self.source, self.features, self.label = source, features, label
        self._serving_rows = max(SERVING_SAMPLE_ROWS, serving_batch_size)
        self._serving_sample: pd.DataFrame | None = None  # only budgets need it
        self._head: pd.DataFrame | None = None  # the validation head read so far
        self._head_rows = 0  # how many rows that read asked for
        self._batches = None  # built on first evaluation, then re-iterated
        self._narrow_batches: dict[tuple[str, ...], tf.data.Dataset] = {}  # per feature set

    @property
    def serving_sample(self) -> pd.DataFrame:
        """A few thousand validation rows as serving-latency inputs (read once, when asked)."""
        if self._serving_sample is None:
            self._serving_sample = self.head(self._serving_rows)
        return self._serving_sample

    def head(self, rows: int) -> pd.DataFrame:
        """The source's first ``rows`` rows (unshuffled), read once for all users.

        The first read takes at least ``VALID_HEAD_ROWS`` rows, so the serving sample and
        the explain sample share it; the rows are those of ``source.sample_frame(rows)``
        (a stream's first rows do not depend on how many are read).

        Args:
            rows: How many rows (fewer if the source holds fewer).

        Returns:
            A frame of at most ``rows`` rows; the cached read itself when it holds no more.
        """
        if self._head is None or rows > self._head_rows:
            self._head_rows = max(int(rows), VALID_HEAD_ROWS)
            self._head = self.source.sample_frame(self._head_rows)
        head = self._head
        return head if len(head) <= rows else head.iloc[:rows].copy()

    def batches(self, names: Sequence[str] | None = None) -> Iterable[tuple[dict, tf.Tensor]]:
        """The rows in order, as ``(inputs, label)`` batches of ``EVAL_BATCH_ROWS``, built on
        first use and re-iterated: a stream's pipeline, or a frame's ``FrameBatches`` (the
        same batches, sliced from one conversion; a pipeline per run cost 0.1-0.2 s).

        Args:
            names: The features the caller reads (default: every candidate). A file
                stream then parses only those: parsing is most of an evaluation, 0.37-0.46 s
                for 20k rows of 40 candidates, and a round's pruned model reads a few.
        """
        if names is not None and isinstance(self.source, FileStream):
            key = tuple(sorted(names))
            if key not in self._narrow_batches:
                self._narrow_batches[key] = self.source.dataset(
                    EVAL_BATCH_ROWS, shuffle=False, num_epochs=1, columns=key
                )
            return self._narrow_batches[key]
        if self._batches is None:
            source = self.source
            self._batches = (
                FrameBatches(source.frame, self.features, self.label, EVAL_BATCH_ROWS)
                if isinstance(source, FrameSource)
                else source.dataset(EVAL_BATCH_ROWS, shuffle=False, num_epochs=1)
            )
        return self._batches

    def logits(
        self, model: tf_keras.Model, names: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and logits of ``model`` on every validation row, streamed.

        Args:
            model: A model of one logit per row.
            names: The inputs ``model`` reads (default: every candidate's).

        Returns:
            ``(labels, logits)``, in row order.
        """
        logits, labels = [], []
        try:
            for inputs, label in self.batches(names):
                kept = inputs if names is None else {name: inputs[name] for name in names}
                logits.append(model(kept, training=False).numpy()[:, 0])
                labels.append(label.numpy())
        except INPUT_ERRORS as err:
            raise explained(self.source, err) from err
        return np.concatenate(labels), np.concatenate(logits)

    def evaluate(self, model: tf_keras.Model, features: FeatureSet) -> dict[str, float]:
        """Validation AUC and log loss of ``model`` (which reads ``features``), streamed."""
        labels, logits = self.logits(model, features.names)
        probability = 1.0 / (1.0 + np.exp(-logits))
        if len(np.unique(labels)) < 2:
            raise ValueError(
                "The validation split has a single label class; AUC is undefined. Use more rows."
            )
        return {
            "auc": float(roc_auc_score(labels, probability)),
            "log_loss": float(log_loss(labels, np.clip(probability, 1e-7, 1 - 1e-7))),
        }
