"""A TFXIO (a split of a TFX Examples artifact) as a ``BatchSource``, read as Trainer reads.

``tfxio.TensorFlowDataset`` parses with the schema's tensor representations (dense for
features with a shape, sparse otherwise) and ``sloppy_ordering=False`` keeps the order
a function of the seed, so a resumed selection skips batches to its position. Checks
that need the whole split (a feature with no value at all, missing or NaN numerics)
are answered by the statistics, not by reading the data.

Example:
    >>> source = TFXIOSource(split_tfxio(examples, "train", schema), features, "label",
    ...                      num_rows=num_rows(statistics))
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl.public import tfxio as tfxio_lib

from recsel.inputs.readers import python_cells
from recsel.spec.features import FeatureSet

SHUFFLE_BUFFER_ROWS = 10_000


class TFXIOSource:
    """Batches of ``(features, label)`` from a TFXIO.

    Args:
        source: The TFXIO, e.g. ``tfx_bsl.public.tfxio.TFExampleRecord`` or TFX's
            ``tfxio_utils.get_split_tfxio``.
        features: The candidate features (other columns are dropped).
        label: The label feature.
        num_rows: Rows in one pass (``recsel.inputs.statistics.num_rows``).
        impute_numeric: Replace NaN numeric values with the feature's mean (missing
            values already embed as the mean).
        where: Names the split in error messages.
    """

    def __init__(
        self,
        source: tfxio_lib.TFXIO,
        features: FeatureSet,
        label: str,
        num_rows: int | None = None,
        impute_numeric: bool = False,
        where: str = "examples",
    ):
        self.source, self.features, self.label = source, features, label
        self.num_rows, self.impute_numeric, self.where = num_rows, impute_numeric, where

    def dataset(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = False,
        num_epochs: int | None = 1,
        skip_batches: int = 0,
    ) -> tf.data.Dataset:
        options = tfxio_lib.TensorFlowDatasetOptions(
            batch_size=int(batch_size),
            shuffle=shuffle,
            shuffle_seed=seed,
            shuffle_buffer_size=SHUFFLE_BUFFER_ROWS,
            num_epochs=num_epochs,
            label_key=self.label,
            sloppy_ordering=False,
        )
        batches = self.source.TensorFlowDataset(options)
        if skip_batches:
            batches = batches.skip(int(skip_batches))
        return batches.map(
            self._model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )

    def _model_inputs(self, inputs: dict, label):
        kept = {}
        for spec in self.features:
            value = inputs[spec.name]
            if self.impute_numeric and spec.kind == "numeric":
                value = _replace_nan(value, spec.mean)
            kept[spec.name] = value
        if isinstance(label, tf.SparseTensor):
            label = tf.sparse.to_dense(label)
        return kept, tf.reshape(tf.cast(label, tf.float32), [-1])

    def sample_frame(self, rows: int):
        import pandas as pd

        for inputs, labels in self.dataset(rows).take(1):
            columns = {name: python_cells(value) for name, value in inputs.items()}
            columns[self.label] = labels.numpy().tolist()
            return pd.DataFrame(columns).apply(_unwrap_singletons)
        raise ValueError(f"{self.where}: the split holds no rows.")


def _replace_nan(value, fill: float):
    if isinstance(value, tf.SparseTensor):
        values = tf.cast(value.values, tf.float32)
        return tf.SparseTensor(
            value.indices, tf.where(tf.math.is_nan(values), fill, values), value.dense_shape
        )
    value = tf.cast(value, tf.float32)
    return tf.where(tf.math.is_nan(value), fill, value)


def _unwrap_singletons(column):
    """Scalar features parse as ``[batch, 1]``; serving inputs want plain cells."""
    if column.map(lambda c: isinstance(c, list) and len(c) == 1).all():
        return column.map(lambda c: c[0])
    return column


def check_against_statistics(
    features: FeatureSet,
    label: str,
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    nan_policy: str,
    where: str,
) -> None:
    """Fails on what the statistics show the stream cannot feed: absent or NaN features.

    Args:
        features: The candidate features.
        label: The label feature.
        statistics: The split's statistics (StatisticsGen's, or a TFDV pass).
        nan_policy: ``raise``: missing or NaN numeric values are an error; ``impute``:
            they become the feature's mean.
        where: Names the split in messages.
    """
    by_name = {
        (".".join(fs.path.step) if fs.path.step else fs.name): fs
        for fs in (statistics.datasets[0].features if statistics.datasets else ())
    }
    absent = []
    for name in [*features.names, label]:
        fs = by_name.get(name)
        common = _common_stats(fs)
        if fs is None or common is None or common.num_non_missing == 0:
            absent.append(name)
    if absent:
        raise ValueError(
            f"{where}: schema feature(s) {absent} have no value in any example; the examples "
            "do not contain them. Regenerate the schema from these examples (SchemaGen) or "
            "mark those features DEPRECATED in the schema."
        )
    if nan_policy == "impute":
        return
    for spec in features:
        fs = by_name[spec.name]
        if spec.kind != "numeric" or fs.WhichOneof("stats") != "num_stats":
            continue
        missing = fs.num_stats.common_stats.num_missing
        nans = max((h.num_nan for h in fs.num_stats.histograms), default=0)
        if missing or nans:
            raise ValueError(
                f"{where}: numeric feature {spec.name!r} has {missing} missing and {nans} NaN "
                "value(s) (per the statistics). Set nan_policy='impute' to use the feature's "
                "mean for them, or fix the data."
            )


def _common_stats(fs):
    which = fs.WhichOneof("stats") if fs is not None else None
    if which in ("num_stats", "string_stats", "bytes_stats"):
        return getattr(fs, which).common_stats
    if which == "struct_stats":
        return fs.struct_stats.common_stats
    return None
