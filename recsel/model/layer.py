"""Keras layers: gated feature embeddings for selection, and their pruned, gate-free form.

``SequentialAttentionEmbedding`` turns a dict of raw feature tensors into the
concatenation of every feature's embedding, each column multiplied by two
Sequential Attention gates: one per feature and one per embedding chunk. Feature
gates choose *which* features; chunk gates, attending only over chunks of selected
features, choose *how wide* each one is. Both use ``recsel.SequentialAttention``.

Example:
    >>> layer = SequentialAttentionEmbedding(features, chunk_size=8)
    >>> layer.schedule_selection(num_features=8, num_chunks=12, num_steps=2000)
    >>> logits = tf_keras.layers.Dense(1)(tf_keras.layers.Dense(64, "relu")(layer(inputs)))
    >>> ...  # model.fit(...): selections happen inside training
    >>> serving_layer = layer.pruned()  # plain embeddings of the kept columns only
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from recsel.model.embedding import FeatureEmbedding, StackedEmbedding
from recsel.model.tables import EmbeddingTables, PrunedEmbedding
from recsel.sequential_attention import SequentialAttention


class SequentialAttentionEmbedding(EmbeddingTables):
    """Heterogeneous feature embeddings behind two-level Sequential Attention gates.

    Args:
        features: A ``FeatureSet`` (or its dict / list-of-specs form).
        chunk_size: Embedding columns per chunk candidate; a feature's width is decided
            in multiples of it.
        unselected_mass: Gate mass shared by pending candidates (1 in the paper).
        logit_scale: Attention logit multiplier (see ``SequentialAttention``).
        l2: Penalty on looked-up embedding rows (see ``FeatureEmbedding``).
        seed: Initializer seed.
    """

    def __init__(
        self,
        features,
        chunk_size: int = 8,
        unselected_mass: float = 1.0,
        logit_scale: float = 1.0,
        l2: float = 1e-4,
        seed: int = 0,
        **kwargs,
    ):
        kwargs.setdefault("name", "sequential_attention_embedding")
        super().__init__(features, l2=l2, seed=seed, **kwargs)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}.")
        self.chunk_size = int(chunk_size)
        self.unselected_mass = float(unselected_mass)
        self.logit_scale = float(logit_scale)
        chunk_feature, column_chunk = [], []
        for f, spec in enumerate(self.features):
            first = len(chunk_feature)
            n_chunks = -(-spec.embedding_dim // chunk_size)
            chunk_feature += [f] * n_chunks
            column_chunk += [first + c // chunk_size for c in range(spec.embedding_dim)]
        self._chunk_feature = np.asarray(chunk_feature, np.int32)
        self._column_chunk = np.asarray(column_chunk, np.int32)
        self.feature_attention = SequentialAttention(
            len(self.features), unselected_mass, logit_scale, name="feature_attention"
        )
        self.chunk_attention = SequentialAttention(
            len(chunk_feature), unselected_mass, logit_scale, name="chunk_attention"
        )
        self.chunk_attention.set_active(np.zeros(len(chunk_feature)))
        self.hard_mask = tf.Variable(0.0, trainable=False, name="hard_mask")

    # ------------------------------------------------------------------ schedule
    @property
    def num_chunks(self) -> int:
        return len(self._chunk_feature)

    def chunks_of(self, feature: str) -> list[int]:
        f = self.features.names.index(feature)
        return [int(c) for c in np.flatnonzero(self._chunk_feature == f)]

    def schedule_selection(
        self,
        num_features: int,
        num_chunks: int,
        num_steps: int,
        warmup_fraction: float = 0.1,
        chunk_phase_fraction: float = 0.3,
        features_per_event: int = 1,
        chunks_per_event: int = 1,
        start_step: int | None = None,
    ) -> None:
        """Schedules one segment: feature selections, then chunk (width) selections.

        Args:
            num_features: Features to select in this segment.
            num_chunks: Chunks to select afterwards, among chunks of selected features.
            num_steps: Training steps in the segment.
            warmup_fraction: Leading fraction of the segment without selection.
            chunk_phase_fraction: Trailing fraction of the segment spent on chunks.
            features_per_event: Features selected per event.
            chunks_per_event: Chunks selected per event.
            start_step: Global step where the segment starts (default: now).
        """
        if num_features > len(self.features) - len(self.selected_features()):
            raise ValueError(
                f"Cannot select {num_features} features: the layer has {len(self.features)} "
                f"candidates and {len(self.selected_features())} are already selected."
            )
        start = int(self.feature_attention.step.numpy()) if start_step is None else start_step
        chunk_steps = int(round(num_steps * chunk_phase_fraction)) if num_chunks else 0
        feature_steps = num_steps - chunk_steps
        self.feature_attention.set_schedule(
            num_features, feature_steps, warmup_fraction, features_per_event, start
        )
        if num_chunks:
            self.chunk_attention.set_schedule(
                num_chunks, chunk_steps, 0.0, chunks_per_event, start + feature_steps
            )
            # The chunk module steps with the feature module; keep their clocks aligned.
            self.chunk_attention.step.assign(self.feature_attention.step)
            self.chunk_attention.attention_start.assign(start + feature_steps)

    # --------------------------------------------------------------------- call
    def _gates(self, training: bool) -> tf.Tensor:
        """Per-column gates ``[output_width]``: feature gate times chunk gate.

        The product is formed per chunk (every chunk lies in one feature) and then
        expanded to the columns with one gather, so the hot path holds one
        ``[output_width]`` gather rather than four, and one ``where`` over chunks.
        """
        features = self.feature_attention(training=training)
        # Read after this step's feature event, once: it is both the chunks' activity and
        # the feature half of the hard mask (one read and one gather fewer per step).
        chunk_of_selected = tf.gather(self.feature_attention.selected, self._chunk_feature)
        if training:
            self.chunk_attention.active.assign(chunk_of_selected)
        chunks = self.chunk_attention(training=training)
        soft = tf.gather(features, self._chunk_feature) * chunks
        hard = chunk_of_selected * self.chunk_attention.selected
        # A full-shape condition: a scalar one makes the gradient reduce over the broadcast.
        per_chunk = tf.where(tf.fill([self.num_chunks], self.hard_mask > 0), hard, soft)
        return tf.gather(per_chunk, self._column_chunk)

    def call(
        self, inputs: dict, training: bool | None = None, split_gates: bool = False
    ) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
        """Gated embeddings ``[batch, output_width]``.

        Args:
            inputs: Raw feature tensors by name.
            training: Training mode: advances the selection clock and runs due events.
            split_gates: Return ``(embeddings, column_gates)`` instead of their product,
                so a host whose next layer is linear can fold the ``[output_width]``
                gates into its kernel (``Ranker`` does): that scales ``width x units``
                kernel entries instead of ``batch x width`` activations, forward and
                backward, with the same outputs and gradients.

        Example:
            >>> embedded, gates = layer(inputs, training=True, split_gates=True)
            >>> hidden = tf.matmul(embedded, gates[:, None] * dense.kernel)
        """
        embedded = self._embed_concat(inputs)
        gates = self._gates(bool(training) and training is not None)
        return (embedded, gates) if split_gates else embedded * gates

    # ------------------------------------------------------------- selection state
    def selected_features(self) -> list[str]:
        """Selected feature names, in selection order."""
        return [self.features.names[i] for i in self.feature_attention.selected_indices()]

    def selected_chunks(self) -> dict[str, list[int]]:
        """Per selected feature, its selected chunk positions (0-based within the feature)."""
        chosen = set(self.chunk_attention.selected_indices())
        out = {}
        for name in self.selected_features():
            chunks = self.chunks_of(name)
            out[name] = [i for i, c in enumerate(chunks) if c in chosen]
        return out

    def feature_weights(self) -> dict[str, float]:
        """Current feature gate values (1 for selected, softmax share for the rest)."""
        values = self.feature_attention.attention_weights().numpy()
        return {n: float(v) for n, v in zip(self.features.names, values)}

    def set_chunk_counts(self, counts: dict[str, int]) -> None:
        """Makes each named selected feature hold exactly ``counts[name]`` chunks.

        A feature short of its count gains its highest-logit pending chunks; one over it
        keeps its earliest-selected chunks. Used to apply width rounding and clipping.
        """
        logits = self.chunk_attention.logits.numpy()
        order = self.chunk_attention.selected_indices()
        keep: set[int] = set(order)
        for name, count in counts.items():
            chunks = self.chunks_of(name)
            chosen = [c for c in order if c in chunks]
            if len(chosen) > count:
                keep -= set(chosen[count:])
                chosen = chosen[:count]
            pending = sorted((c for c in chunks if c not in chosen), key=lambda c: (-logits[c], c))
            keep |= set(pending[: max(0, count - len(chosen))])
        self.chunk_attention.set_selection(
            [c for c in order if c in keep] + sorted(keep - set(order))
        )

    def selected_widths(self) -> dict[str, int]:
        """Per selected feature, the width its selected chunks give (chunks x chunk size)."""
        return {n: len(c) * self.chunk_size for n, c in self.selected_chunks().items()}

    def set_candidates(self, eligible: np.ndarray, costs: np.ndarray | None = None) -> None:
        """Which pending features the next round may select, and their relative costs.

        Args:
            eligible: One 0/1 entry per feature, in ``features`` order.
            costs: Positive relative costs for the ``ratio`` cost rule, or None for none.
        """
        self.feature_attention.set_eligible(eligible)
        self.feature_attention.set_costs(costs)

    def selected_columns_of(self, name: str) -> list[int]:
        """Columns (within the feature's table) of its selected chunks."""
        spec = self.features[name]
        chunks = self.selected_chunks().get(name, [])
        return [
            c
            for k in chunks
            for c in range(k * self.chunk_size, min((k + 1) * self.chunk_size, spec.embedding_dim))
        ]

    def output_columns_of(self, name: str) -> np.ndarray:
        """Columns of feature ``name`` in this layer's concatenated output (full width)."""
        offset = 0
        for spec in self.features:
            if spec.name == name:
                return np.arange(offset, offset + spec.embedding_dim)
            offset += spec.embedding_dim
        raise KeyError(f"Feature {name!r} is not in the layer; it has {self.features.names}.")

    def selected_output_columns(self) -> list[int]:
        """Columns of this layer's output that the pruned layer keeps, in its order."""
        kept = set(self.selected_features())
        return [
            int(self.output_columns_of(name)[c])
            for name in self.features.names
            if name in kept
            for c in self.selected_columns_of(name)
        ]

    def pruned(self) -> PrunedEmbedding:
        """A plain layer with only the selected features and their selected columns.

        Trained table columns are copied; the result has no gate variables or ops.
        """
        names = self.selected_features()
        if not names:
            raise ValueError("No feature is selected yet: train with a schedule before pruning.")
        widths = {n: len(self.selected_columns_of(n)) for n in names}
        empty = [n for n, w in widths.items() if w == 0]
        if empty:
            chosen = sum(len(c) for c in self.selected_chunks().values())
            among = sum(len(self.chunks_of(n)) for n in names)
            raise ValueError(
                f"Selected features {empty} have no selected chunk (the chunk phase kept "
                f"{chosen} of the selected features' {among} chunks), so the pruned layer "
                "would give them width 0. Give each its best chunk before pruning, "
                f"layer.set_chunk_counts({dict.fromkeys(empty, 1)}) (the hard-gated model "
                "then predicts as the pruned one will), or schedule more chunks (num_chunks)."
            )
        kept = self.features.subset(names, widths)
        pruned = PrunedEmbedding(kept, name="pruned_embedding")
        pruned.set_feature_tables(
            {s.name: self.feature_table(s.name)[:, self.selected_columns_of(s.name)] for s in kept}
        )
        return pruned

    def freeze(self) -> None:
        """From now on, gates are the hard selection mask (1 kept, 0 dropped)."""
        self.hard_mask.assign(1.0)

    def thaw(self) -> None:
        """From now on, gates are soft again: the pending candidates compete (a new round)."""
        self.hard_mask.assign(0.0)

    @contextlib.contextmanager
    def hard_gates(self) -> Iterator[None]:
        """Within the block the gates are the hard selection mask, as the pruned model sees
        the layer; the gate mode in force before is restored on exit.

        Example:
            >>> with layer.hard_gates():
            ...     kept_only = layer(inputs, training=False)
        """
        before = float(self.hard_mask.numpy())
        self.freeze()
        try:
            yield
        finally:
            self.hard_mask.assign(before)

    @contextlib.contextmanager
    def masked(self, names: Sequence[str]) -> Iterator[None]:
        """Within the block, the selected features ``names`` are switched off.

        Under the hard mask their gates are then 0, so evaluating the trained model inside
        measures what they add (no training). The selection is restored on exit.

        Args:
            names: Selected features to switch off.

        Example:
            >>> with layer.masked(["country"]):
            ...     logits_without_country = model(inputs, training=False)
        """
        attention = self.feature_attention
        saved = attention.selected.numpy()
        masked = saved.copy()
        masked[[self.features.names.index(n) for n in names]] = 0.0
        attention.selected.assign(masked)
        try:
            yield
        finally:
            attention.selected.assign(saved)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "chunk_size": self.chunk_size,
            "unselected_mass": self.unselected_mass,
            "logit_scale": self.logit_scale,
        }


CUSTOM_OBJECTS = {
    "SequentialAttentionEmbedding": SequentialAttentionEmbedding,
    "PrunedEmbedding": PrunedEmbedding,
    "FeatureEmbedding": FeatureEmbedding,
    "StackedEmbedding": StackedEmbedding,
}
