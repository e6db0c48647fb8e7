"""The pruned TFMD schema a trainer reads: kept features only, in production, label kept."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from recsel.atomic import atomic_write_text
from recsel.spec.features import FeatureSet
from recsel.spec.tfmd import DTYPE_TO_TYPE, in_production

# Stages that TFX (tfx_bsl's tensor_representation_util) does not parse.


def write_schema(schema: schema_pb2.Schema, path: str) -> None:
    """Writes ``schema`` as text format, atomically.

    Args:
        schema: The schema to write.
        path: Destination (local or ``gs://``); its parent is created if missing.

    Example:
        >>> write_schema(schema, "out/schema.pbtxt")
    """
    atomic_write_text(path, text_format.MessageToString(schema))


def _representation_columns(rep: schema_pb2.TensorRepresentation) -> set[str]:
    """Top-level columns a TensorRepresentation reads."""
    kind = rep.WhichOneof("kind")
    if kind == "dense_tensor":
        return {rep.dense_tensor.column_name}
    if kind == "varlen_sparse_tensor":
        return {rep.varlen_sparse_tensor.column_name}
    if kind == "sparse_tensor":
        return {*rep.sparse_tensor.index_column_names, rep.sparse_tensor.value_column_name}
    if kind == "ragged_tensor":
        # The first step names the column; deeper steps are fields of a STRUCT column.
        steps = list(rep.ragged_tensor.feature_path.step[:1])
        return {*steps, *(p.row_length for p in rep.ragged_tensor.partition if p.row_length)}
    return set()


def prune_schema(schema: schema_pb2.Schema, kept: Iterable[str], label: str) -> schema_pb2.Schema:
    """A copy of ``schema`` where every feature outside ``kept`` and the label is DEPRECATED.

    Kept features and the label are left exactly as they were. Tensor representations
    that read a dropped feature are removed (and groups they empty), and sparse or
    weighted features built on a dropped feature are deprecated too, so
    ``schema_as_feature_spec`` and TFXIO parse only the kept features and the label.

    Args:
        schema: The input schema (not modified).
        kept: Names of the selected features.
        label: Name of the label feature.

    Returns:
        The pruned copy.

    Raises:
        ValueError: A kept feature or the label is not in the schema, or is not in
            production there (e.g. already DEPRECATED).

    Example:
        >>> pruned = prune_schema(read_schema("schema.pbtxt"), ["country", "price"], "clicked")
    """
    kept = set(kept) | {label}
    by_name = {f.name: f for f in schema.feature}
    missing = sorted(kept - set(by_name))
    if missing:
        raise ValueError(
            f"Features {missing} are not in the schema; known features: "
            f"{', '.join(sorted(by_name))}. Check the names against the schema."
        )
    retired = sorted(name for name in kept if not in_production(by_name[name]))
    if retired:
        # Left unchanged they would stay unparsed, so the model would never see them.
        raise ValueError(
            f"Features {retired} are kept but not in production in the schema (lifecycle "
            "stage or deprecated flag); fix their stage in the schema or drop them."
        )
    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    dropped = set()
    for feature in out.feature:
        if feature.name not in kept:
            feature.lifecycle_stage = schema_pb2.DEPRECATED
            dropped.add(feature.name)
    for sparse in out.sparse_feature:
        parts = {i.name for i in sparse.index_feature} | {sparse.value_feature.name}
        if parts & dropped:
            sparse.lifecycle_stage = schema_pb2.DEPRECATED
    for weighted in out.weighted_feature:
        parts = set(weighted.feature.step[:1]) | set(weighted.weight_feature.step[:1])
        if parts & dropped:
            weighted.lifecycle_stage = schema_pb2.DEPRECATED
    for group_name in list(out.tensor_representation_group):
        reps = out.tensor_representation_group[group_name].tensor_representation
        for rep_name in [n for n, rep in reps.items() if _representation_columns(rep) & dropped]:
            del reps[rep_name]
        if not reps:
            del out.tensor_representation_group[group_name]
    return out


def schema_for_features(features: FeatureSet) -> schema_pb2.Schema:
    """A fresh schema for ``features`` and their label.

    Scalars get ``shape {dim {size: 1}}`` (a FixedLenFeature in ``schema_as_feature_spec``),
    multi-valent features ``value_count {max: max_valency}`` (a VarLenFeature), string
    vocabularies a named string domain, int64 categoricals ``int_domain.is_categorical``.
    The label is a scalar INT feature.

    Args:
        features: The (selected) feature set.

    Returns:
        The schema.

    Example:
        >>> write_schema(schema_for_features(features.subset(["country"])), "schema.pbtxt")
    """
    schema = schema_pb2.Schema()
    for spec in features:
        feature = schema.feature.add(name=spec.name, type=DTYPE_TO_TYPE[spec.dtype])
        if spec.is_multivalent:
            # min stays 0: an example may carry an empty list.
            feature.value_count.max = spec.max_valency
        else:
            feature.shape.dim.add(size=1)
            feature.presence.min_fraction = 1.0
        if spec.kind == "numeric":
            continue
        if spec.dtype == "string" and spec.vocabulary is not None:
            schema.string_domain.add(name=spec.name, value=[str(v) for v in spec.vocabulary])
            feature.domain = spec.name
        elif spec.dtype == "int64":
            feature.int_domain.is_categorical = True
    if features.label is not None:
        label = schema.feature.add(name=features.label, type=schema_pb2.INT)
        label.shape.dim.add(size=1)
        label.presence.min_fraction = 1.0
    return schema
