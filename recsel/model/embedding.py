"""One feature's lookup and embedding, shared by the gated and the pruned layers.

Keras preprocessing layers do the lookup (StringLookup, IntegerLookup, Hashing,
Discretization), so vocabularies, OOV buckets and hashing match what serving sees.
Any input form that tf.Example parsing or TFXIO produce is accepted: dense
``[batch]`` / ``[batch, 1]``, ``tf.SparseTensor`` or ``tf.RaggedTensor``. Ragged and
sparse inputs are pooled with the feature's combiner; a row with no values embeds
to zeros.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras

from recsel.model.row_penalty import penalise_rows
from recsel.spec.features import FeatureSpec


def _string_vocabulary(values) -> np.ndarray:
    """A string vocabulary as a numpy array, not a list, for a Keras lookup layer.

    Keras wraps a list attribute in a tracked ``ListWrapper``, item by item, and walks it
    on every eager call (``_clear_losses``): at 9,000 values that was 57 ms per layer
    built and ~14 ms per eager call of the model, against 4.5 ms and none for an array.
    The lookup is the same.
    """
    return np.asarray([str(v) for v in values], dtype=object)


def _lookup_layer(spec: FeatureSpec) -> tf_keras.layers.Layer | None:
    if spec.kind == "numeric":
        if spec.numeric_transform == "bucketize":
            return tf_keras.layers.Discretization(
                bin_boundaries=list(spec.boundaries), name=f"{spec.name}_buckets"
            )
        return None
    if spec.hash_buckets is not None:
        return tf_keras.layers.Hashing(num_bins=spec.hash_buckets, name=f"{spec.name}_hash")
    vocab = list(spec.vocabulary)
    if spec.dtype == "string":
        return tf_keras.layers.StringLookup(
            vocabulary=_string_vocabulary(vocab),
            num_oov_indices=spec.num_oov_buckets,
            mask_token=None,
            name=f"{spec.name}_lookup",
        )
    return tf_keras.layers.IntegerLookup(
        vocabulary=np.asarray(vocab, np.int64),
        num_oov_indices=spec.num_oov_buckets,
        mask_token=None,
        name=f"{spec.name}_lookup",
    )


def to_ragged(value: tf.Tensor | tf.SparseTensor | tf.RaggedTensor) -> tf.RaggedTensor | tf.Tensor:
    """Returns ragged ``[batch, None]`` for sparse/ragged input, dense ``[batch]`` otherwise."""
    if isinstance(value, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(value)
    if isinstance(value, tf.RaggedTensor):
        return value if value.shape.rank == 2 else value.merge_dims(1, -1)
    value = tf.convert_to_tensor(value)
    if value.shape.rank == 2 and value.shape[1] == 1:
        return tf.squeeze(value, axis=1)
    if value.shape.rank == 2:
        return tf.RaggedTensor.from_tensor(value)
    return value


class FeatureEmbedding(tf_keras.layers.Layer):
    """Embeds one feature into ``[batch, width]`` with its own table.

    Args:
        spec: The feature's spec; ``spec.embedding_dim`` is the table width.
        l2: Penalty on the squared norm of the looked-up rows (per example), which keeps
            attention identifiable (the gate cannot be absorbed into growing rows).
        seed: Initializer seed.
    """

    def __init__(self, spec: FeatureSpec, l2: float = 0.0, seed: int = 0, **kwargs):
        super().__init__(name=kwargs.pop("name", f"embed_{spec.name}"), **kwargs)
        self.spec = spec
        self.l2 = float(l2)
        self.lookup = _lookup_layer(spec)
        self.table = self.add_weight(
            name="table",
            shape=(spec.vocabulary_size, spec.embedding_dim),
            initializer=tf_keras.initializers.RandomNormal(stddev=0.05, seed=seed),
            trainable=True,
        )

    def _cast(self, value):
        if self.spec.kind == "numeric":
            return tf.cast(value, tf.float32)
        if self.spec.dtype == "string" and value.dtype != tf.string:
            return tf.strings.as_string(value)
        if (
            self.spec.dtype == "int64"
            and value.dtype != tf.int64
            and self.spec.hash_buckets is None
        ):
            return tf.cast(value, tf.int64)
        return value

    def call(self, value) -> tf.Tensor:
        value = to_ragged(value)
        value = (
            value.with_values(self._cast(value.values))
            if isinstance(value, tf.RaggedTensor)
            else self._cast(value)
        )
        spec = self.spec
        if spec.kind == "numeric" and spec.numeric_transform == "normalize":
            if isinstance(value, tf.RaggedTensor):
                value = value.to_tensor(default_value=spec.mean, shape=[None, 1])[:, 0]
            scaled = (value - spec.mean) / spec.std
            out = scaled[:, None] * self.table[0][None, :]
        elif isinstance(value, tf.RaggedTensor):
            ids = self.lookup(value) if self.lookup is not None else value
            rows = tf.gather(self.table, tf.cast(ids, tf.int32))
            total = tf.reduce_sum(rows, axis=1)
            count = tf.cast(ids.row_lengths(), tf.float32)[:, None]
            if spec.combiner == "sum":
                out = total
            elif spec.combiner == "sqrtn":
                out = total / tf.sqrt(tf.maximum(count, 1.0))
            else:
                out = total / tf.maximum(count, 1.0)
        else:
            ids = self.lookup(value)
            out = tf.gather(self.table, tf.cast(ids, tf.int32))
        return penalise_rows(out, self.l2)

    def get_config(self) -> dict:
        return {**super().get_config(), "spec": self.spec.to_dict(), "l2": self.l2}

    @classmethod
    def from_config(cls, config: dict) -> FeatureEmbedding:
        config = dict(config)
        config["spec"] = FeatureSpec.from_dict(config["spec"])
        return cls(**config)


# ------------------------------------------------------------------ stacked tables
def stack_key(spec: FeatureSpec) -> tuple:
    """Features with equal keys share one stacked table and one lookup.

    The key holds everything a shared lookup must agree on: how values become rows (the
    path), the raw dtype, the width, the combiner and the per-feature OOV or hash size.

    Example:
        >>> stack_key(FeatureSpec("c", "categorical", vocabulary=("a",), embedding_dim=8))
        ('vocab', 'string', 8, 'mean', False, 1)
    """
    multi = spec.is_multivalent
    if spec.kind == "numeric":
        return (spec.numeric_transform, "float32", spec.embedding_dim, spec.combiner, multi, 0)
    if spec.hash_buckets is not None:
        path, size = "hash", spec.hash_buckets
    else:
        path, size = "vocab", spec.num_oov_buckets
    return (path, spec.dtype, spec.embedding_dim, spec.combiner, multi, size)


class StackedEmbedding(tf_keras.layers.Layer):
    """Embeds several same-key features with one table, one lookup and one gather.

    The features' tables are stacked row-wise (as TPU embedding table stacking does):
    feature ``j``'s rows start at ``offsets[j]``. Its output is ``[batch, F * width]``,
    each feature's embedding side by side in ``specs`` order, and equals what one
    ``FeatureEmbedding`` per feature computes from the same table rows.

    Args:
        specs: Features with one ``stack_key``.
        seeds: Initializer seed of each feature's block (as ``FeatureEmbedding`` uses).

    Example:
        >>> stack = StackedEmbedding([spec_a, spec_b], seeds=[0, 1])
        >>> stack({"a": a_values, "b": b_values}).shape  # [batch, 2 * width]
    """

    def __init__(self, specs: list[FeatureSpec], seeds: list[int], **kwargs):
        super().__init__(**kwargs)
        keys = {stack_key(s) for s in specs}
        if len(keys) != 1:
            raise ValueError(f"{self.name}: features {[s.name for s in specs]} need one stack key.")
        self.specs, self.seeds = list(specs), [int(seed) for seed in seeds]
        self.path, self.dtype_name, self.width, self.combiner, _, size = keys.pop()
        sizes = np.asarray([s.vocabulary_size for s in specs], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        # Each block starts as FeatureEmbedding's own table would, so a fused model and a
        # per-feature one built with the same seeds start from the same weights.
        init = np.concatenate(
            [
                tf_keras.initializers.RandomNormal(stddev=0.05, seed=seed)(
                    (s.vocabulary_size, s.embedding_dim)
                ).numpy()
                for s, seed in zip(specs, seeds, strict=True)
            ]
        )
        self.table = self.add_weight(
            name="table",
            shape=init.shape,
            initializer=tf_keras.initializers.Constant(init),
            trainable=True,
        )
        self._build_lookup(size)

    def _build_lookup(self, size: int) -> None:
        self.lookup = None
        if self.path == "hash":
            self.lookup = tf_keras.layers.Hashing(num_bins=size, name=f"{self.name}_hash")
        elif self.path == "vocab":
            self._build_vocab_lookup(size)
        elif self.path == "bucketize":
            longest = max(len(s.boundaries) for s in self.specs)
            bounds = np.full([len(self.specs), longest], np.inf, np.float32)
            for j, spec in enumerate(self.specs):
                bounds[j, : len(spec.boundaries)] = spec.boundaries
            self._bounds = bounds
            self._num_bounds = np.asarray([len(s.boundaries) for s in self.specs], np.int64)
        else:  # normalize
            self._mean = np.asarray([s.mean for s in self.specs], np.float32)
            self._std = np.asarray([s.std for s in self.specs], np.float32)

    def _build_vocab_lookup(self, num_oov: int) -> None:
        """Two Keras lookups shared by the stack: value -> union id, (union id, feature) -> row.

        The union vocabulary holds every value of any feature's vocabulary, so one lookup
        hashes each raw value once; the pair key ``u * F + j`` then says whether value
        ``u`` is in feature ``j``'s vocabulary and where its row is. Both are integer or
        string hash lookups; no strings are built per step.
        """
        if num_oov < 1:
            raise ValueError(
                f"Features {self.names}: num_oov_buckets must be at least 1, so that values "
                "unseen in training (serving traffic) map to an OOV row."
            )
        self.num_oov = num_oov
        union: dict = {}
        for spec in self.specs:
            for v in spec.vocabulary:
                union.setdefault(v if self.dtype_name == "string" else int(v), len(union) + 1)
        if self.dtype_name == "string":
            self.lookup = tf_keras.layers.StringLookup(
                vocabulary=_string_vocabulary(union), num_oov_indices=1, mask_token=None,
                name=f"{self.name}_values",
            )  # fmt: skip
        else:
            self.lookup = tf_keras.layers.IntegerLookup(
                vocabulary=np.asarray(list(union), np.int64), num_oov_indices=1, mask_token=None,
                name=f"{self.name}_values",
            )  # fmt: skip
        num = len(self.specs)
        pairs = [
            (union[v if self.dtype_name == "string" else int(v)] * num + j, offset + num_oov + p)
            for j, (spec, offset) in enumerate(zip(self.specs, self.offsets, strict=True))
            for p, v in enumerate(spec.vocabulary)
        ]
        # Union id 0 (in no vocabulary) gives keys 0..F-1, which are never in ``pairs``.
        self.pair_lookup = tf_keras.layers.IntegerLookup(
            vocabulary=np.asarray([k for k, _ in pairs], np.int64), num_oov_indices=1,
            mask_token=None, name=f"{self.name}_pairs",
        )  # fmt: skip
        # Pair-lookup id 1 + i (the i-th pair) -> its stacked row; id 0 is out of vocabulary.
        self._row_of_id = np.asarray([0, *(row for _, row in pairs)], np.int64)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    # ------------------------------------------------------------------ values -> rows
    def _canonical(self, value: tf.Tensor) -> tf.Tensor:
        """One dtype per stack, converted as ``FeatureEmbedding._cast`` does per feature."""
        if self.path in ("normalize", "bucketize"):
            return tf.cast(value, tf.float32)
        if value.dtype == tf.string:
            return value
        if self.dtype_name == "string":
            return tf.strings.as_string(value)
        return tf.cast(value, tf.int64)  # IntegerLookup and Hashing see the same integer

    def _rows(self, values: tf.Tensor, feature: tf.Tensor) -> tf.Tensor:
        """Stacked-table rows of ``values``, each belonging to feature ``feature`` (same shape)."""
        offsets = tf.gather(tf.constant(self.offsets), feature)
        if self.path == "hash":
            return offsets + tf.cast(self.lookup(values), tf.int64)
        if self.path == "bucketize":
            bounds = tf.gather(tf.constant(self._bounds), feature)  # [..., longest]
            count = tf.reduce_sum(tf.cast(values[..., None] >= bounds, tf.int64), axis=-1)
            # Discretization's bucket is the number of boundaries <= value (the +inf padding
            # only counts for value +inf, hence the clip); NaN falls in the last bucket.
            last = tf.gather(tf.constant(self._num_bounds), feature)
            return offsets + tf.where(tf.math.is_nan(values), last, tf.minimum(count, last))
        union = tf.cast(self.lookup(values), tf.int64)
        ids = tf.cast(self.pair_lookup(union * len(self.specs) + feature), tf.int64)
        oov = offsets
        if self.num_oov > 1:  # the OOV bucket IntegerLookup / StringLookup would pick
            if self.dtype_name == "int64":
                bucket = tf.math.floormod(values, self.num_oov)
            else:
                bucket = tf.strings.to_hash_bucket_fast(values, self.num_oov)
            oov = offsets + bucket
        return tf.where(ids > 0, tf.gather(tf.constant(self._row_of_id), ids), oov)

    # ------------------------------------------------------------------------ call
    def call(self, inputs: dict) -> tf.Tensor:
        values = [to_ragged(inputs[s.name]) for s in self.specs]
        if self.path == "normalize":
            return self._normalize(values)
        if any(isinstance(v, tf.RaggedTensor) for v in values):
            return self._pooled(values)
        stacked = tf.stack([self._canonical(v) for v in values], axis=1)  # [batch, F]
        feature = tf.broadcast_to(tf.range(len(self.specs), dtype=tf.int64), tf.shape(stacked))
        rows = tf.gather(self.table, self._rows(stacked, feature))  # [batch, F, width]
        return tf.reshape(rows, [-1, len(self.specs) * self.width])

    def _normalize(self, values: list) -> tf.Tensor:
        dense = [
            v.with_values(tf.cast(v.values, tf.float32)).to_tensor(s.mean, shape=[None, 1])[:, 0]
            if isinstance(v, tf.RaggedTensor)
            else tf.cast(v, tf.float32)
            for v, s in zip(values, self.specs, strict=True)
        ]
        stacked = tf.stack(dense, axis=1)
        scaled = (stacked - self._mean) / self._std  # [batch, F]
        out = scaled[:, :, None] * self.table[None, :, :]
        return tf.reshape(out, [-1, len(self.specs) * self.width])

    def _pooled(self, values: list) -> tf.Tensor:
        """Pools every feature's values per row with one gather and one segment sum.

        Segment ``j * batch + row`` holds feature ``j``'s values of ``row``; a row with no
        values pools to zeros, as ``FeatureEmbedding`` does.
        """
        ragged = [
            v if isinstance(v, tf.RaggedTensor) else tf.RaggedTensor.from_tensor(v[:, None])
            for v in values
        ]
        num = len(self.specs)
        flat = tf.concat([self._canonical(r.values) for r in ragged], axis=0)
        splits = tf.stack([tf.cast(r.row_splits, tf.int64) for r in ragged])  # [F, batch + 1]
        lengths = tf.reshape(splits[:, 1:] - splits[:, :-1], [-1])  # [F * batch]
        batch = tf.shape(splits, out_type=tf.int64)[1] - 1
        segment = tf.repeat(tf.range(num * batch), lengths)
        rows = tf.gather(self.table, self._rows(flat, segment // batch))
        # Segments are sorted (feature-major, then row), so the sorted kernel applies; it
        # stops at the last non-empty segment, hence the padding to every segment.
        total = tf.math.segment_sum(rows, segment)
        total = tf.pad(total, [[0, num * batch - tf.shape(total, out_type=tf.int64)[0]], [0, 0]])
        count = tf.cast(lengths, tf.float32)[:, None]
        if self.combiner == "sqrtn":
            total = total / tf.sqrt(tf.maximum(count, 1.0))
        elif self.combiner == "mean":
            total = total / tf.maximum(count, 1.0)
        out = tf.transpose(tf.reshape(total, [num, -1, self.width]), [1, 0, 2])
        return tf.reshape(out, [-1, num * self.width])

    # ------------------------------------------------------------ per-feature weights
    def feature_table(self, name: str) -> np.ndarray:
        """One feature's rows of the stacked table (a copy), as its own table would be."""
        j = self.names.index(name)
        start = int(self.offsets[j])
        return self.table.numpy()[start : start + self.specs[j].vocabulary_size]

    def set_feature_tables(self, tables: dict[str, np.ndarray]) -> None:
        """Overwrites the named features' blocks of the stacked table (one assignment)."""
        full = self.table.numpy()
        for name, values in tables.items():
            j = self.names.index(name)
            start = int(self.offsets[j])
            full[start : start + self.specs[j].vocabulary_size] = values
        self.table.assign(full)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "specs": [s.to_dict() for s in self.specs],
            "seeds": self.seeds,
        }

    @classmethod
    def from_config(cls, config: dict) -> StackedEmbedding:
        config = dict(config)
        config["specs"] = [FeatureSpec.from_dict(s) for s in config["specs"]]
        return cls(**config)
