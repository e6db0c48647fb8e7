"""Embedding tables of a feature set: the shared base and the plain (pruned) layer.

``EmbeddingTables`` owns the stacked tables and the input checks that the gated layer
(``recsel.model.layer.SequentialAttentionEmbedding``) and ``PrunedEmbedding`` share.
``PrunedEmbedding`` is the serving form of a selection: the kept features at their chosen
widths, concatenated, with no gates.

Example:
    >>> pruned = PrunedEmbedding(features.subset(["country", "tags"], {"tags": 8}))
    >>> vectors = pruned({"country": country_ids, "tags": tag_ids})  # [batch, width]
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras

from recsel.model.embedding import StackedEmbedding, stack_key
from recsel.model.row_penalty import penalise_rows
from recsel.spec.features import FeatureSet, FeatureSpec


def _as_feature_set(features) -> FeatureSet:
    if isinstance(features, FeatureSet):
        return features
    if isinstance(features, dict):
        return FeatureSet.from_dict(features)
    specs = tuple(f if isinstance(f, FeatureSpec) else FeatureSpec.from_dict(f) for f in features)
    return FeatureSet(specs)


def _column_pieces(features: FeatureSet, stacks: list[StackedEmbedding]) -> list[tuple[int, int]]:
    """(stack index, width) of each run of consecutive features that share a stack.

    Concatenating the runs in this order gives every feature's columns in feature order;
    a stack's runs are contiguous, in order, in its own output.
    """
    stack_of = {spec.name: i for i, stack in enumerate(stacks) for spec in stack.specs}
    pieces: list[tuple[int, int]] = []
    for spec in features:
        i = stack_of[spec.name]
        if pieces and pieces[-1][0] == i:
            pieces[-1] = (i, pieces[-1][1] + spec.embedding_dim)
        else:
            pieces.append((i, spec.embedding_dim))
    return pieces


class EmbeddingTables(tf_keras.layers.Layer):
    """Owns the stacked tables (one per ``stack_key``) and checks the input dict.

    Features that share a width and a lookup kind live in one ``StackedEmbedding``, so
    the graph holds one lookup and one gather per stack rather than per feature. The
    output keeps the per-feature contract: every feature's columns, in feature order.
    """

    def __init__(self, features, l2: float = 0.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.features = _as_feature_set(features)
        self.l2 = float(l2)
        self.seed = int(seed)
        groups: dict[tuple, list[int]] = {}
        for i, spec in enumerate(self.features):
            groups.setdefault(stack_key(spec), []).append(i)
        specs = list(self.features)
        self.stacks = [
            StackedEmbedding(
                [specs[i] for i in members], [seed + i for i in members], name=f"stack_{g}"
            )
            for g, members in enumerate(groups.values())
        ]
        self._stack_of = {spec.name: stack for stack in self.stacks for spec in stack.specs}
        self._pieces = _column_pieces(self.features, self.stacks)

    def _embed_concat(self, inputs: dict) -> tf.Tensor:
        """All features' embeddings side by side, with the l2 penalty on the looked-up rows."""
        self._check_inputs(inputs)
        outputs = [stack(inputs) for stack in self.stacks]
        if len(self._pieces) == len(self.stacks):  # stacks already in feature order
            embedded = tf.concat(outputs, axis=1)
        else:
            # One split per stack and one concat put the columns in feature order; a
            # column gather (axis 1) is ~10x slower on CPU at hundreds of features.
            split = [
                tf.split(out, [w for k, w in self._pieces if k == i], axis=1)
                for i, out in enumerate(outputs)
            ]
            taken = [0] * len(outputs)
            parts = []
            for i, _ in self._pieces:
                parts.append(split[i][taken[i]])
                taken[i] += 1
            embedded = tf.concat(parts, axis=1)
        # The penalty is a sum over all columns, so the column order does not matter.
        return penalise_rows(embedded, self.l2)

    def _check_inputs(self, inputs: dict) -> None:
        missing = [n for n in self.features.names if n not in inputs]
        if missing:
            raise KeyError(
                f"{self.name}: input is missing feature(s) {missing}; it has {sorted(inputs)}. "
                "Pass every feature in the spec, or rebuild the layer from a smaller spec."
            )

    def feature_table(self, name: str) -> np.ndarray:
        """Feature ``name``'s embedding table (its rows of its stack), as a numpy copy.

        Example:
            >>> layer.feature_table("country").shape  # (vocabulary_size, embedding_dim)
        """
        return self._stack_of[name].feature_table(name)

    def set_feature_tables(self, tables: dict[str, np.ndarray]) -> None:
        """Overwrites the named features' tables (one assignment per stack touched).

        Example:
            >>> layer.set_feature_tables({"country": np.zeros((4, 16), np.float32)})
        """
        for stack in self.stacks:
            mine = {n: t for n, t in tables.items() if self._stack_of[n] is stack}
            if mine:
                stack.set_feature_tables(mine)

    @property
    def output_width(self) -> int:
        return sum(spec.embedding_dim for spec in self.features)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "features": self.features.to_dict(),
            "l2": self.l2,
            "seed": self.seed,
        }


class PrunedEmbedding(EmbeddingTables):
    """Plain concatenated feature embeddings: the serving form of a selection.

    Args:
        features: The kept features, each with its chosen ``embedding_dim``.
        seed: Initializer seed (tables are usually copied from a gated layer).
        l2: Penalty on looked-up rows (0 for serving; set it to keep training the pruned model
            under the same regularisation as selection).
    """

    def __init__(self, features, seed: int = 0, l2: float = 0.0, **kwargs):
        kwargs.setdefault("name", "pruned_embedding")
        super().__init__(features, l2=l2, seed=seed, **kwargs)

    def call(self, inputs: dict) -> tf.Tensor:
        return self._embed_concat(inputs)
