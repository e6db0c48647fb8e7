"""The embedding config: selected features and widths, handed to a TPU trainer.

After selection, ``embedding_config_from_features`` records one embedding table per
kept feature (rows, chosen width, full width, combiner, valency) in a small JSON file
validated by ``schemas/embedding_config.schema.json``. The trainer turns it into
``tf.tpu.experimental.embedding`` configs (``to_tpu_feature_configs``) or into
keras-rs ``DistributedEmbedding`` configs (``to_keras_rs_config``).

A numeric feature has a table too: ``bucketize`` looks up its bucket id and
``normalize`` looks up row 0 of a one-row table and scales it by the normalized value,
as ``recsel.model.embedding.FeatureEmbedding`` does.

Example:
    >>> config = embedding_config_from_features(selected, chunk_size=8, dim_multiple=8)
    >>> write_embedding_config(config, "gs://bucket/run/embedding_config.json")
    >>> feature_configs = to_tpu_feature_configs("gs://bucket/run/embedding_config.json")
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from recsel.atomic import atomic_write_text, read_text
from recsel.spec import contract
from recsel.spec.features import FeatureSet

SCHEMA_FILE = "embedding_config.schema.json"
# Field names follow keras-rs 0.2.x, keras_rs/src/layers/embedding/distributed_embedding_config.py.
KERAS_RS_VERSION = "0.2"


def validate_embedding_config(config: dict[str, Any], source: str = "embedding config") -> None:
    """Checks ``config`` against the JSON Schema and the rules it cannot express.

    Args:
        config: The parsed config.
        source: What to call the config in errors (usually its path).

    Raises:
        ValueError: Naming ``source`` and the offending field or feature.

    Example:
        >>> validate_embedding_config(json.load(open("embedding_config.json")), "that file")
    """
    contract.validate(config, SCHEMA_FILE, source)
    multiple = config["dim_multiple"]
    names: set[str] = set()
    tables: set[str] = set()
    for i, feature in enumerate(config["features"]):
        where = f"{source}: features/{i} ({feature['name']!r})"
        if feature["name"] in names:
            raise ValueError(f"{where}: feature name appears twice; each feature needs one entry.")
        if feature["table_name"] in tables:
            raise ValueError(
                f"{where}: table_name {feature['table_name']!r} is used twice; give each "
                "feature its own table."
            )
        if "numeric_transform" in feature and feature["kind"] != "numeric":
            raise ValueError(
                f"{where}: numeric_transform is only for numeric features, and this one is "
                f"{feature['kind']}; remove the field."
            )
        names.add(feature["name"])
        tables.add(feature["table_name"])
        if feature["embedding_dim"] % multiple:
            raise ValueError(
                f"{where}: embedding_dim {feature['embedding_dim']} is not a multiple of "
                f"dim_multiple {multiple}; round it to a multiple of {multiple}."
            )
        if feature["embedding_dim"] > feature["full_embedding_dim"]:
            raise ValueError(
                f"{where}: embedding_dim {feature['embedding_dim']} exceeds "
                f"full_embedding_dim {feature['full_embedding_dim']}."
            )


def embedding_config_from_features(
    features: FeatureSet,
    chunk_size: int,
    dim_multiple: int,
    full_dims: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The embedding config for the kept features at their chosen widths.

    Args:
        features: Only the kept features, each with its chosen ``embedding_dim``
            (e.g. ``all_features.subset(kept, dims)``).
        chunk_size: Width of one selectable chunk, recorded for the trainer.
        dim_multiple: Every chosen width must be a multiple of this.
        full_dims: Full (pre-selection) width per feature; a feature missing here uses
            its chosen width.

    Returns:
        The config, already validated.

    Raises:
        ValueError: A width is not a multiple of ``dim_multiple`` or exceeds its full
            width, or ``full_dims`` names an unknown feature.

    Example:
        >>> config = embedding_config_from_features(
        ...     all_features.subset(["country"], {"country": 8}), 8, 8, {"country": 32})
    """
    full_dims = dict(full_dims or {})
    unknown = sorted(set(full_dims) - set(features.names))
    if unknown:
        raise ValueError(
            f"full_dims names features {unknown} that are not in the feature set "
            f"({', '.join(features.names)})."
        )
    entries = []
    for spec in features:
        entry = {
            "name": spec.name,
            "table_name": f"{spec.name}_table",
            "vocabulary_size": spec.vocabulary_size,
            "embedding_dim": spec.embedding_dim,
            "full_embedding_dim": int(full_dims.get(spec.name, spec.embedding_dim)),
            "combiner": spec.combiner,
            "max_valency": spec.max_valency,
            "dtype": spec.dtype,
            "kind": spec.kind,
        }
        if spec.kind == "numeric":
            entry["numeric_transform"] = spec.numeric_transform
        entries.append(entry)
    config = {
        "version": 1,
        "chunk_size": int(chunk_size),
        "dim_multiple": int(dim_multiple),
        "features": entries,
    }
    validate_embedding_config(config)
    return config


def write_embedding_config(config: dict[str, Any], path: str) -> None:
    """Validates ``config`` and writes it as JSON, atomically.

    Args:
        config: An embedding config.
        path: Destination (local or ``gs://``).

    Raises:
        ValueError: The config is invalid (nothing is written).

    Example:
        >>> write_embedding_config(config, "out/embedding_config.json")
    """
    validate_embedding_config(config, source=path)
    atomic_write_text(path, json.dumps(config, indent=2) + "\n")


def read_embedding_config(path: str) -> dict[str, Any]:
    """Reads and validates an embedding config.

    Args:
        path: Local or ``gs://`` path.

    Returns:
        The config.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not JSON or not a valid config (names file and field).

    Example:
        >>> config = read_embedding_config("out/embedding_config.json")
    """
    try:
        config = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}).") from None
    validate_embedding_config(config, source=path)
    return config


def _load(config: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(config, str):
        return read_embedding_config(config)
    validate_embedding_config(config)
    return config


def to_tpu_feature_configs(
    config: dict[str, Any] | str,
    optimizer: Any = None,
    initializer: Any = None,
) -> dict[str, tf.tpu.experimental.embedding.FeatureConfig]:
    """``tf.tpu.experimental.embedding`` feature configs, one table per feature.

    Args:
        config: An embedding config, or the path of one.
        optimizer: Optional per-table optimizer (``tf.tpu.experimental.embedding.SGD``,
            ``Adagrad``, ``Adam``, ...); None uses the one given to ``TPUEmbedding``.
        initializer: Optional table initializer (a callable taking the shape); None
            keeps TF's default, TruncatedNormal(mean=0, stddev=1/sqrt(dim)).

    Returns:
        Feature name to ``FeatureConfig`` (not a sequence feature, output shape left to
        ``TPUEmbedding`` to infer), in config order.

    Example:
        >>> feature_configs = to_tpu_feature_configs("out/embedding_config.json")
        >>> embedding = tf.tpu.experimental.embedding.TPUEmbeddingForServing(
        ...     feature_configs, optimizer=tf.tpu.experimental.embedding.SGD(0.1))
    """
    config = _load(config)
    out = {}
    for feature in config["features"]:
        table = tf.tpu.experimental.embedding.TableConfig(
            vocabulary_size=feature["vocabulary_size"],
            dim=feature["embedding_dim"],
            initializer=initializer,
            optimizer=optimizer,
            combiner=feature["combiner"],
            name=feature["table_name"],
        )
        out[feature["name"]] = tf.tpu.experimental.embedding.FeatureConfig(
            table=table, max_sequence_length=0, output_shape=None, name=feature["name"]
        )
    return out


def to_keras_rs_config(
    config: dict[str, Any] | str,
    batch_size: int | None = None,
    optimizer: str | dict[str, Any] = "adam",
    max_ids_per_partition: int = 256,
    max_unique_ids_per_partition: int = 256,
) -> dict[str, Any]:
    """Plain-JSON keras-rs ``TableConfig`` / ``FeatureConfig`` fields for the config.

    Mirrors keras-rs 0.2.x (``keras_rs/src/layers/embedding/distributed_embedding_config.py``):
    tables carry ``name, vocabulary_size, embedding_dim, initializer, optimizer,
    combiner, placement, max_ids_per_partition, max_unique_ids_per_partition``
    (initializer/optimizer in ``keras.saving.serialize_keras_object`` form); features
    carry ``name, table, input_shape, output_shape``, with ``table`` the table's name.
    keras-rs needs Python >= 3.11, so recsel never imports it. On the trainer side::

        tables = {n: keras_rs.layers.TableConfig.from_config(t) for n, t in d["tables"].items()}
        features = {n: keras_rs.layers.FeatureConfig(**{**f, "table": tables[f["table"]]})
                    for n, f in d["features"].items()}

    Args:
        config: An embedding config, or the path of one.
        batch_size: Global batch size for the shapes; None writes ``null``.
        optimizer: Table optimizer, a Keras name or serialized optimizer.
        max_ids_per_partition: keras-rs SparseCore sizing hint, per table.
        max_unique_ids_per_partition: keras-rs SparseCore sizing hint, per table.

    Returns:
        ``{"keras_rs_version", "tables": {name: table}, "features": {name: feature}}``.

    Example:
        >>> json.dumps(to_keras_rs_config("out/embedding_config.json", batch_size=4096))
    """
    config = _load(config)
    tables: dict[str, Any] = {}
    features: dict[str, Any] = {}
    for feature in config["features"]:
        dim = feature["embedding_dim"]
        tables[feature["table_name"]] = {
            "name": feature["table_name"],
            "vocabulary_size": feature["vocabulary_size"],
            "embedding_dim": dim,
            # Same default as TF's TableConfig, so both trainers start alike.
            "initializer": {
                "module": "keras.initializers",
                "class_name": "TruncatedNormal",
                "config": {"mean": 0.0, "stddev": 1.0 / math.sqrt(dim), "seed": None},
                "registered_name": None,
            },
            "optimizer": optimizer,
            "combiner": feature["combiner"],
            "placement": "auto",
            "max_ids_per_partition": int(max_ids_per_partition),
            "max_unique_ids_per_partition": int(max_unique_ids_per_partition),
        }
        features[feature["name"]] = {
            "name": feature["name"],
            "table": feature["table_name"],
            "input_shape": [batch_size, feature["max_valency"]],
            "output_shape": [batch_size, dim],
        }
    return {"keras_rs_version": KERAS_RS_VERSION, "tables": tables, "features": features}
