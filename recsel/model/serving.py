"""SavedModel export with a tf.Example serving signature, and loading it back.

The signature takes serialized ``tf.Example`` protos, as TF Serving and TFX Pusher
expect. Parsing is part of serving cost, so latency is measured on this signature.

Example:
    >>> export_saved_model(pruned_ranker, kept_features, "/tmp/model")
    >>> serve = load_serving_fn("/tmp/model")
    >>> probabilities = serve(examples=tf.constant(serialized))["probability"]
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import tensorflow as tf

from recsel.spec.features import FeatureSet, FeatureSpec

SIGNATURE = "serving_default"


def parse_spec(features: FeatureSet) -> dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature]:
    """``tf.io.parse_example`` spec: scalars fixed-length with a neutral default, lists var-length."""
    spec = {}
    for feature in features:
        dtype = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}[feature.dtype]
        if feature.kind == "numeric":
            spec[feature.name] = tf.io.FixedLenFeature(
                [], tf.float32, default_value=float(feature.mean)
            )
        elif feature.is_multivalent:
            spec[feature.name] = tf.io.VarLenFeature(dtype)
        else:
            spec[feature.name] = tf.io.FixedLenFeature(
                [], dtype, default_value="" if dtype == tf.string else -1
            )
    return spec


def export_saved_model(model: tf.Module, features: FeatureSet, path: str) -> str:
    """Writes ``model`` as a SavedModel whose ``serving_default`` parses tf.Examples.

    Args:
        model: A callable Keras model mapping a feature dict to logits ``[batch, 1]``.
        features: The features the model reads (only these are parsed).
        path: Export directory.

    Returns:
        ``path``.
    """
    spec = parse_spec(features)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        parsed = tf.io.parse_example(examples, spec)
        logits = model(parsed, training=False)
        return {"probability": tf.sigmoid(logits), "logit": logits}

    tf.saved_model.save(model, path, signatures={SIGNATURE: serve})
    return path


def load_serving_fn(path: str):
    """Loads the ``serving_default`` function of a SavedModel exported above."""
    return tf.saved_model.load(path).signatures[SIGNATURE]


def _feature(value, spec: FeatureSpec) -> tf.train.Feature:
    values = list(value) if spec.is_multivalent else [value]
    if spec.kind == "numeric":
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
    if spec.dtype == "string":
        return tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[str(v).encode() for v in values])
        )
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def serialize_examples(
    frame: pd.DataFrame, features: FeatureSet, label: str | None = None
) -> list[bytes]:
    """Serializes rows of ``frame`` to tf.Example bytes (the features, plus the label if given)."""
    out = []
    columns = {spec.name: frame[spec.name].to_numpy() for spec in features}
    labels = frame[label].to_numpy() if label else None
    for row in range(len(frame)):
        feats = {}
        for spec in features:
            value = columns[spec.name][row]
            if spec.kind == "numeric" and (value is None or not math.isfinite(float(value))):
                continue
            feats[spec.name] = _feature(value, spec)
        if labels is not None:
            feats[label] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(labels[row])]))
        out.append(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    return out


def predict_examples(serve, serialized: list[bytes]) -> np.ndarray:
    return serve(examples=tf.constant(serialized))["probability"].numpy()[:, 0]
