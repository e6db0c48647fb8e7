"""A small ranker (embeddings + DNN tower) used for selection, and its pruning.

Any Keras model can host ``SequentialAttentionEmbedding``; this one is what the
``select()`` driver trains, with recsel's ReLU tower or a user's (``recsel.model.tower``).
``prune_ranker`` turns a trained gated ranker into a plain one whose predictions equal
the gated model's with unselected candidates masked out: the embedding keeps only the
selected columns, and a Dense-first tower keeps the matching kernel rows (any other
tower reads the dropped columns as zeros).

Example:
    >>> ranker = Ranker(SequentialAttentionEmbedding(features), hidden_units=(64, 32))
    >>> ranker.compile(optimizer="adam", loss=tf_keras.losses.BinaryCrossentropy(from_logits=True))
    >>> ranker.fit(train_ds, epochs=1)
    >>> serving_ranker = prune_ranker(ranker)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from recsel.model.layer import CUSTOM_OBJECTS, PrunedEmbedding, SequentialAttentionEmbedding
from recsel.model.tower import (
    ExpandColumns,
    TowerFn,
    build_tower,
    leading_dense,
    resolve_tower,
    tower_name,
)


class Ranker(tf_keras.Model):
    """Embedding layer, then ReLU dense layers and one logit, or a custom tower.

    Args:
        embedding: A ``SequentialAttentionEmbedding`` or ``PrunedEmbedding``.
        hidden_units: Widths of the hidden dense layers (ignored with ``tower``).
        seed: Initializer seed of the tower.
        tower: A tower factory or spec string (see ``recsel.model.tower``) replacing the
            dense layers; it maps the embedding vector to one logit.
    """

    def __init__(
        self,
        embedding: tf_keras.layers.Layer,
        hidden_units: Sequence[int] = (64, 32),
        seed: int = 0,
        tower: str | TowerFn | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.seed = int(seed)
        self.tower_fn = resolve_tower(tower)
        if self.tower_fn is not None:
            self.tower, self.logit = [], None
            self.custom_tower = build_tower(self.tower_fn, embedding.output_width)
            return
        self.custom_tower = None
        self.tower = [
            tf_keras.layers.Dense(
                units,
                activation="relu",
                name=f"hidden_{i}",
                kernel_initializer=tf_keras.initializers.GlorotUniform(seed + i),
            )
            for i, units in enumerate(self.hidden_units)
        ]
        self.logit = tf_keras.layers.Dense(
            1, name="logit", kernel_initializer=tf_keras.initializers.GlorotUniform(seed + 99)
        )
        width = embedding.output_width
        for layer in [*self.tower, self.logit]:
            layer.build((None, width))
            width = layer.units

    def call(self, inputs: dict, training: bool | None = None) -> tf.Tensor:
        gated = isinstance(self.embedding, SequentialAttentionEmbedding)
        if gated and self.custom_tower is None:
            # (x * g) @ W == x @ (g[:, None] * W): the gates scale the first kernel's
            # width x units entries instead of batch x width activations, forward and
            # backward (at 400 candidates 6400 x 64 instead of 256 x 6400, which was
            # most of the gated step's extra time). Same outputs and gradients. A custom
            # tower gets the gated embeddings themselves.
            x, gates = self.embedding(inputs, training=training, split_gates=True)
            layers = [*self.tower, self.logit]
            x = _dense_with_row_scale(layers[0], x, gates)
            layers = layers[1:]
        else:
            x = self.embedding(inputs, training=training) if gated else self.embedding(inputs)
            if self.custom_tower is not None:
                return self.custom_tower(x, training=training)
            layers = [*self.tower, self.logit]
        for layer in layers:
            x = layer(x)
        return x

    def get_config(self) -> dict:
        return {
            "embedding": tf_keras.layers.serialize(self.embedding),
            "hidden_units": self.hidden_units,
            "seed": self.seed,
            "tower": tower_name(self.tower_fn),
        }

    @classmethod
    def from_config(cls, config: dict) -> Ranker:
        embedding = tf_keras.layers.deserialize(
            config.pop("embedding"), custom_objects=CUSTOM_OBJECTS
        )
        return cls(embedding, **config)


def _dense_with_row_scale(
    dense: tf_keras.layers.Dense, x: tf.Tensor, scale: tf.Tensor
) -> tf.Tensor:
    """``dense(x * scale)`` computed as ``x @ (scale[:, None] * kernel)``, for 2-D ``x``."""
    # expand_dims, not ``scale[:, None]``: a strided slice's gradient is five ops, this one's one.
    outputs = tf.matmul(x, tf.expand_dims(scale, 1) * dense.kernel)
    if dense.use_bias:
        outputs = tf.nn.bias_add(outputs, dense.bias)
    return dense.activation(outputs) if dense.activation is not None else outputs


def prune_ranker(ranker: Ranker) -> Ranker:
    """Returns a gate-free copy of ``ranker`` holding only the selected columns."""
    layer = ranker.embedding
    if not isinstance(layer, SequentialAttentionEmbedding):
        raise TypeError(
            "prune_ranker needs a Ranker whose embedding is a SequentialAttentionEmbedding."
        )
    columns = np.asarray(layer.selected_output_columns(), np.int64)
    if ranker.custom_tower is not None:
        return _prune_custom_tower(ranker, layer.pruned(), columns)
    pruned = Ranker(layer.pruned(), ranker.hidden_units, seed=ranker.seed)
    first = ranker.tower[0] if ranker.tower else ranker.logit
    kernel, bias = first.get_weights()
    target = pruned.tower[0] if pruned.tower else pruned.logit
    target.set_weights([kernel[columns], bias])
    for source, dest in zip([*ranker.tower[1:], ranker.logit], [*pruned.tower[1:], pruned.logit]):
        if source is not first:
            dest.set_weights(source.get_weights())
    return pruned


def _prune_custom_tower(ranker: Ranker, embedding: PrunedEmbedding, columns: np.ndarray) -> Ranker:
    source = ranker.custom_tower
    first = leading_dense(source)
    if first is None:
        width = ranker.embedding.output_width
        pruned = Ranker(
            ExpandColumns(embedding, columns, width), seed=ranker.seed, tower=ranker.tower_fn
        )
        pruned.custom_tower.set_weights(source.get_weights())
        return pruned
    pruned = Ranker(embedding, seed=ranker.seed, tower=ranker.tower_fn)
    target = pruned.custom_tower
    if len(target.layers) != len(source.layers):
        raise ValueError(
            f"Tower factory {tower_name(ranker.tower_fn)} built towers of different depth; it must "
            "build the same architecture on every call."
        )
    kernel, *rest = first.get_weights()
    target.layers[0].set_weights([kernel[columns], *rest])
    for source_layer, target_layer in zip(source.layers[1:], target.layers[1:]):
        target_layer.set_weights(source_layer.get_weights())
    return pruned


def is_pruned(ranker: Ranker) -> bool:
    return isinstance(ranker.embedding, (PrunedEmbedding, ExpandColumns))
