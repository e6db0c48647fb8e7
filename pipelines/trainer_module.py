"""Trainer module: a TFRS ranking model built from the selector's ``embedding_config.json``.

``run_fn`` reads the FeatureSelection artifact (``SelectionAwareTrainer`` passes its URI
in ``custom_config``) and builds one embedding table per kept feature with the chosen
width, combiner and table name; the table's rows are the id range that Transform's
vocabulary (or bucketization) produces for that feature. The model applies the
Transform graph itself, so the exported ``serving_default`` signature takes serialized
tf.Examples and parses only the raw features of the pruned schema: the kept ones.

``custom_config`` keys: ``label_key`` (required), ``batch_size`` (default 256),
``hidden_units`` (default [64, 32]), ``learning_rate`` (default 0.01), ``seed`` (0).
After training, validation AUC and log loss on the whole eval split are written to
``<model_run_dir>/metrics.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tensorflow_transform as tft
import tf_keras
from sklearn.metrics import log_loss, roc_auc_score
from tfx_bsl.public import tfxio

from recsel import quiet
from recsel.atomic import atomic_write_text
from recsel.tfx import load_selection, spec

# Output names of transform_module (kept in sync by hand: each module ships on its own).
ID_SUFFIX = "__id"
Z_SUFFIX = "__z"
BUCKET_SUFFIX = "__bucket"
METRICS_FILE = "metrics.json"
SIGNATURE = "serving_default"


@dataclasses.dataclass(frozen=True)
class Table:
    """One embedding table: which transformed feature it reads and how.

    Args:
        feature: Raw feature name.
        table_name: Table name from the embedding config.
        input_key: Transformed feature it looks up.
        rows: Table rows (the transformed feature's id range; 1 for a scaled row).
        dim: Width chosen by the selector.
        combiner: Pooling of multi-valent ids.
        scale: Multiply row 0 by the (z-scored) value instead of looking up ids.
    """

    feature: str
    table_name: str
    input_key: str
    rows: int
    dim: int
    combiner: str
    scale: bool = False


def tables_from_config(
    config: dict[str, Any], transform_output: tft.TFTransformOutput
) -> list[Table]:
    """One ``Table`` per kept feature of the embedding config, in config order.

    Args:
        config: The selector's validated ``embedding_config.json``.
        transform_output: Transform's output, which knows each id feature's range.

    Returns:
        The tables: width, combiner and name from the config, rows from Transform.

    Example:
        >>> tables = tables_from_config(load_selection(uri).embedding_config, tft_output)
    """
    tables = []
    for entry in config["features"]:
        name, common = (
            entry["name"],
            dict(table_name=entry["table_name"], dim=entry["embedding_dim"]),
        )
        if entry["kind"] == "numeric" and entry.get("numeric_transform") == "normalize":
            # A one-row table scaled by the z-scored value, as recsel embeds "normalize".
            tables.append(
                Table(name, input_key=name + Z_SUFFIX, rows=1, combiner="sum", scale=True, **common)
            )
            continue
        key = name + (BUCKET_SUFFIX if entry["kind"] == "numeric" else ID_SUFFIX)
        rows = transform_output.num_buckets_for_transformed_feature(key)
        tables.append(
            Table(name, input_key=key, rows=int(rows), combiner=entry["combiner"], **common)
        )
    return tables


class TableLookup(tf_keras.layers.Layer):
    """Embeds one transformed feature into ``[batch, dim]``."""

    def __init__(self, table: Table, **kwargs):
        super().__init__(name=f"embed_{table.feature}", **kwargs)
        self.spec = table
        self.table = self.add_weight(
            name=table.table_name,
            shape=(table.rows, table.dim),
            initializer=tf_keras.initializers.TruncatedNormal(stddev=1 / math.sqrt(table.dim)),
        )

    def call(self, value) -> tf.Tensor:
        if isinstance(value, tf.RaggedTensor):
            value = value.to_sparse()
        if isinstance(value, tf.SparseTensor):  # multi-valent: pool with the combiner
            ids = tf.SparseTensor(value.indices, tf.cast(value.values, tf.int64), value.dense_shape)
            return tf.nn.safe_embedding_lookup_sparse(self.table, ids, combiner=self.spec.combiner)
        value = tf.reshape(value, [-1])
        if self.spec.scale:
            return tf.cast(value, tf.float32)[:, None] * self.table[0][None, :]
        return tf.gather(self.table, tf.cast(value, tf.int64))


def build_tower(hidden_units: Sequence[int] = (64, 32), seed: int = 0) -> tf_keras.Sequential:
    """The ranker's head: ReLU layers and one logit.

    The selector loads this same function (``tower_fn="build_tower"``), so features are
    chosen for the head that this trainer trains.

    Args:
        hidden_units: Widths of the hidden layers.
        seed: Initializer seed.
    """
    init = tf_keras.initializers.GlorotUniform(seed)
    return tf_keras.Sequential(
        [tf_keras.layers.Dense(u, "relu", kernel_initializer=init) for u in hidden_units]
        + [tf_keras.layers.Dense(1, kernel_initializer=init)]
    )


class RankingModel(tfrs.models.Model):
    """Transform graph, then the selected embeddings, a ReLU tower and a Ranking task.

    Args:
        tables: The embedding tables.
        transform_output: The Transform output; its layer runs inside the model.
        hidden_units: Tower widths.
    """

    def __init__(
        self,
        tables: list[Table],
        transform_output: tft.TFTransformOutput,
        hidden_units: list[int],
        seed: int = 0,
    ):
        super().__init__()
        self.tft_layer = transform_output.transform_features_layer()
        self.lookups = [TableLookup(t) for t in tables]
        self.tower = build_tower(hidden_units, seed)
        self.task = tfrs.tasks.Ranking(
            loss=tf_keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[tf_keras.metrics.AUC(from_logits=True, name="auc")],
        )

    def call(self, raw_features: dict[str, Any]) -> tf.Tensor:
        transformed = self.tft_layer(raw_features)
        embedded = [lookup(transformed[lookup.spec.input_key]) for lookup in self.lookups]
        return self.tower(tf.concat(embedded, axis=1))

    def compute_loss(self, data, training: bool = False) -> tf.Tensor:
        features, labels = data
        labels = tf.reshape(tf.cast(labels, tf.float32), [-1, 1])
        return self.task(labels=labels, predictions=self(features, training=training))


def _dataset(fn_args, files, transform_output, label: str, batch_size: int, seed: int, train: bool):
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=batch_size,
        label_key=label,
        shuffle=train,
        shuffle_seed=seed,
        num_epochs=None if train else 1,
    )
    return fn_args.data_accessor.tf_dataset_factory(
        files, options, transform_output.raw_metadata.schema
    )


def evaluate(model: RankingModel, dataset) -> dict[str, float]:
    """AUC and log loss over one full pass of ``dataset``.

    Args:
        model: The trained model.
        dataset: ``(raw features, label)`` batches, one epoch.

    Returns:
        ``{"auc", "log_loss", "eval_rows"}``.

    Example:
        >>> evaluate(model, valid)["auc"]
    """
    logits, labels = [], []
    for features, label in dataset:
        logits.append(model(features).numpy().reshape(-1))
        labels.append(label.numpy().reshape(-1))
    probability = 1 / (1 + np.exp(-np.concatenate(logits)))
    y = np.concatenate(labels).astype(np.float64)
    return {
        "auc": float(roc_auc_score(y, probability)),
        "log_loss": float(log_loss(y, np.clip(probability, 1e-7, 1 - 1e-7))),
        "eval_rows": int(y.size),
    }


def export(model: RankingModel, transform_output: tft.TFTransformOutput, label: str, path: str):
    """SavedModel whose ``serving_default`` parses tf.Examples with the pruned raw spec.

    Args:
        model: The trained model (it applies the Transform graph itself).
        transform_output: Its raw feature spec is the pruned schema's: kept features only.
        label: The label, which serving does not parse.
        path: Export directory (``fn_args.serving_model_dir``).

    Example:
        >>> export(model, tft_output, "label", fn_args.serving_model_dir)
    """
    raw_spec = transform_output.raw_feature_spec()
    raw_spec.pop(label, None)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        logits = model(tf.io.parse_example(examples, raw_spec))
        return {"probability": tf.sigmoid(logits), "logit": logits}

    tf.saved_model.save(model, path, signatures={SIGNATURE: serve})


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (see the module docstring for ``custom_config``).

    Args:
        fn_args: The Trainer's ``FnArgs``.
    """
    custom = fn_args.custom_config or {}
    label = custom["label_key"]
    batch_size = int(custom.get("batch_size", 256))
    seed = int(custom.get("seed", 0))
    tf_keras.utils.set_random_seed(seed)
    selection = load_selection(custom[spec.FEATURE_SELECTION_URI])
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    tables = tables_from_config(selection.embedding_config, transform_output)
    model = RankingModel(tables, transform_output, list(custom.get("hidden_units", [64, 32])), seed)
    model.compile(optimizer=tf_keras.optimizers.Adam(float(custom.get("learning_rate", 0.01))))
    train = _dataset(fn_args, fn_args.train_files, transform_output, label, batch_size, seed, True)
    # Keras' epoch line (training AUC) is noise beside the eval metrics the run reports;
    # --verbose (RECSEL_VERBOSE) shows it.
    verbose = 2 if quiet.verbose_requested([]) else 0
    model.fit(train, steps_per_epoch=fn_args.train_steps, epochs=1, verbose=verbose)
    valid = _dataset(fn_args, fn_args.eval_files, transform_output, label, 4096, seed, False)
    metrics = evaluate(model, valid)
    metrics["tables"] = {t.feature: {"rows": t.rows, "dim": t.dim} for t in tables}
    atomic_write_text(
        os.path.join(fn_args.model_run_dir, METRICS_FILE), json.dumps(metrics, indent=2)
    )
    export(model, transform_output, label, fn_args.serving_model_dir)
