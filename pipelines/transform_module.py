"""Transform module: ids and scalings for the features the selector kept.

Transform reads the examples with the selector's pruned schema, so ``inputs`` holds only
the kept features and the label: every dropped feature is ``DEPRECATED`` there and never
parsed. For each kept feature this emits what ``trainer_module`` looks up:

- ``<name>__id``: vocabulary ids with one OOV bucket (string and int features; lists
  stay sparse, so the trainer pools them with the feature's combiner);
- ``<name>__z``: the z-scored value, and ``<name>__bucket``: the quantile bucket
  (scalar numeric features; the selection's ``numeric_transform`` picks one).

The label passes through untouched (the trainer reads it from the raw examples).
``custom_config`` must hold ``label_key``.

Example:
    >>> Transform(examples=..., schema=selector.outputs["pruned_schema"],
    ...           module_file="pipelines/transform_module.py",
    ...           custom_config={"label_key": "label"})
"""

from __future__ import annotations

from typing import Any

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)

# isort: split
import tensorflow as tf
import tensorflow_transform as tft

ID_SUFFIX = "__id"
Z_SUFFIX = "__z"
BUCKET_SUFFIX = "__bucket"
# recsel.inputs.schema_io bucketizes numerics into at most 16 quantile buckets; match it.
NUM_BUCKETS = 16


def preprocessing_fn(inputs: dict[str, Any], custom_config: dict[str, Any]) -> dict[str, Any]:
    """Vocabulary ids for categoricals, z-scores and quantile buckets for numerics.

    Args:
        inputs: Raw features parsed with the pruned schema (kept features and label).
        custom_config: ``{"label_key": ...}``.

    Returns:
        ``<name>__id`` / ``<name>__z`` / ``<name>__bucket`` per kept feature.
    """
    label = custom_config["label_key"]
    outputs = {}
    for name, value in inputs.items():
        if name == label:
            continue
        if value.dtype in (tf.string, tf.int64):
            outputs[name + ID_SUFFIX] = tft.compute_and_apply_vocabulary(
                value, num_oov_buckets=1, vocab_filename=name
            )
        scalar = isinstance(value, tf.Tensor)
        if scalar and value.dtype in (tf.float32, tf.int64):
            number = tf.cast(value, tf.float32)
            outputs[name + Z_SUFFIX] = tft.scale_to_z_score(number)
            outputs[name + BUCKET_SUFFIX] = tft.bucketize(number, NUM_BUCKETS)
    return outputs
