"""TFMD schema and statistics in, recsel feature sets and pruned schemas out.

SchemaGen / ``tfdv.infer_schema`` schemas are the main input: ``feature_set_from_schema``
turns one (plus optional StatisticsGen statistics) into a ``FeatureSet``;
``prune_schema`` marks the features that selection dropped as ``DEPRECATED`` so that
Transform and Trainer stop parsing them; ``schema_for_features`` writes a fresh schema
for a selected feature set.

Example:
    >>> schema = read_schema("schema.pbtxt")
    >>> stats = read_statistics("Split-train/FeatureStats.pb")
    >>> features = feature_set_from_schema(schema, label="clicked", statistics=stats)
    >>> write_schema(prune_schema(schema, ["country", "price"], "clicked"), "pruned.pbtxt")
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from recsel.atomic import read_text
from recsel.inputs.spec_rules import is_written_index, warn_written_index
from recsel.spec.features import FeatureSet, FeatureSpec
from recsel.spec.tfmd import in_production


def read_schema(path: str) -> schema_pb2.Schema:
    """Reads a text-format TFMD ``Schema`` (``schema.pbtxt``, as SchemaGen writes it).

    Args:
        path: Local or ``gs://`` path.

    Returns:
        The parsed schema.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not a text-format Schema.

    Example:
        >>> schema = read_schema("pipeline/SchemaGen/schema/1/schema.pbtxt")
    """
    text = read_text(path)
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as err:
        raise ValueError(
            f"{path}: not a text-format tensorflow_metadata Schema ({err}). Pass the "
            "schema.pbtxt that SchemaGen or tfdv.write_schema_text wrote."
        ) from None


def read_statistics(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Reads dataset statistics written by StatisticsGen or TFDV.

    Accepts a binary ``DatasetFeatureStatisticsList`` (StatisticsGen's ``FeatureStats.pb``),
    its text format, or a TFRecord file holding one (older ``stats_tfrecord`` outputs).

    Args:
        path: Local or ``gs://`` path.

    Returns:
        The statistics list.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file holds no recognisable statistics.

    Example:
        >>> stats = read_statistics("StatisticsGen/statistics/2/Split-train/FeatureStats.pb")
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no such statistics file.")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    stats = _parse_statistics(data)
    if stats is None:  # Older StatisticsGen versions wrote a TFRecord holding one proto.
        try:
            records = [r.numpy() for r in tf.data.TFRecordDataset(path).take(1)]
        except tf.errors.OpError:
            records = []
        stats = _parse_statistics(records[0]) if records else None
    if stats is None:
        raise ValueError(
            f"{path}: not a DatasetFeatureStatisticsList with features (binary, text or "
            "TFRecord). Pass the FeatureStats.pb that StatisticsGen wrote."
        )
    return stats


def _parse_statistics(data: bytes) -> statistics_pb2.DatasetFeatureStatisticsList | None:
    out = statistics_pb2.DatasetFeatureStatisticsList()
    try:  # A strict text parse cannot accept a binary proto, so try it first.
        text_format.Parse(data.decode("utf-8"), out)
    except (UnicodeDecodeError, text_format.ParseError):
        try:
            out.ParseFromString(data)
        except message.DecodeError:
            return None
    return out if out.datasets and out.datasets[0].features else None


def _stats_by_name(
    statistics: statistics_pb2.DatasetFeatureStatisticsList | None,
) -> dict[str, statistics_pb2.FeatureNameStatistics]:
    # StatisticsGen writes one dataset per split; with slicing, the first is the whole data.
    if statistics is None or not statistics.datasets:
        return {}
    return {
        (".".join(fs.path.step) if fs.path.step else fs.name): fs
        for fs in statistics.datasets[0].features
    }


def _valency(
    feature: schema_pb2.Feature, fs: statistics_pb2.FeatureNameStatistics | None
) -> tuple[bool, int]:
    """(is multi-valent, max valency) from the shape, the value count or the statistics."""
    if feature.HasField("shape"):
        size = int(np.prod([d.size for d in feature.shape.dim])) if feature.shape.dim else 1
        return size > 1, max(size, 1)
    if feature.HasField("value_count") and feature.value_count.max > 0:
        return feature.value_count.max > 1, int(feature.value_count.max)
    common = _common_stats(fs)
    if common is not None and common.max_num_values > 0:
        return common.max_num_values > 1, int(common.max_num_values)
    # No shape and no statistics: it parses as a VarLenFeature, so treat it as a list.
    return True, max(int(feature.value_count.min), 1)


def _absent_from_some(
    feature: schema_pb2.Feature, fs: statistics_pb2.FeatureNameStatistics | None
) -> bool:
    """Whether the statistics saw examples without ``feature`` (and no shape overrides them:
    TFDV infers a shape only for a feature present in every example)."""
    common = _common_stats(fs)
    return not feature.HasField("shape") and common is not None and common.num_missing > 0


def _common_stats(fs: statistics_pb2.FeatureNameStatistics | None):
    """The feature's ``CommonStatistics`` (in its string or numeric statistics), or None."""
    which = fs.WhichOneof("stats") if fs is not None else None
    return getattr(fs, which).common_stats if which else None


def _global_domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature):
    if feature.WhichOneof("domain_info") != "domain":
        return None
    for domain in (*schema.string_domain, *schema.int_domain):
        if domain.name == feature.domain:
            return domain
    raise ValueError(
        f"feature {feature.name!r}: references domain {feature.domain!r}, which the schema "
        "does not define; add it to the schema's string_domain or int_domain list."
    )


def _schema_vocabulary(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> list | None:
    domain = _global_domain(schema, feature)
    if feature.HasField("string_domain"):
        domain = feature.string_domain
    if isinstance(domain, schema_pb2.StringDomain):
        return list(domain.value)
    if feature.HasField("bool_domain"):
        return [0, 1]
    return None


def _stats_vocabulary(
    fs: statistics_pb2.FeatureNameStatistics | None, min_count: int = 1
) -> tuple[list | None, int]:
    """(the values counted at least ``min_count`` times when the statistics list every
    value, else None; unique count or 0)."""
    if fs is None or fs.WhichOneof("stats") != "string_stats":
        return None, 0
    s = fs.string_stats
    counted = [(b.label, b.sample_count) for b in s.rank_histogram.buckets] or [
        (v.value, v.frequency) for v in s.top_values
    ]
    if not counted or len(counted) != s.unique:
        return None, int(s.unique)
    frequent = [value for value, count in counted if count >= min_count]
    # Every value rare: keep the most frequent, so the table is valid (as inference does).
    return frequent or [max(counted, key=lambda vc: vc[1])[0]], int(s.unique)


def _categorical_spec(
    schema: schema_pb2.Schema,
    feature: schema_pb2.Feature,
    fs: statistics_pb2.FeatureNameStatistics | None,
    dtype: str,
    max_vocab_size: int,
    min_count: int = 1,
    listed: list | None = None,
    **common,
) -> FeatureSpec:
    vocab = _schema_vocabulary(schema, feature)
    if vocab is None:  # no domain: the statistics pass's listed values, when given
        vocab = listed
    stats_vocab, unique = _stats_vocabulary(fs, min_count)
    domain = (
        feature.int_domain if feature.HasField("int_domain") else _global_domain(schema, feature)
    )
    if vocab is None and isinstance(domain, schema_pb2.IntDomain):
        if domain.HasField("min") and domain.HasField("max"):
            if domain.max - domain.min < max_vocab_size:
                vocab = list(range(domain.min, domain.max + 1))
    vocab = vocab if vocab is not None else stats_vocab
    if vocab is not None and 0 < len(vocab) <= max_vocab_size:
        try:
            vocab = [int(v) for v in vocab] if dtype == "int64" else [str(v) for v in vocab]
        except ValueError:
            raise ValueError(
                f"feature {feature.name!r}: INT feature has non-integer domain values "
                f"{vocab[:5]}; fix its domain in the schema."
            ) from None
        return FeatureSpec(feature.name, dtype=dtype, vocabulary=tuple(vocab), **common)
    buckets = min(max_vocab_size, unique or max_vocab_size)
    return FeatureSpec(feature.name, dtype=dtype, hash_buckets=buckets, **common)


def _quantile_boundaries(
    num_stats: statistics_pb2.NumericStatistics, num_buckets: int
) -> list[float]:
    """Boundaries of ``num_buckets`` equal-mass buckets, interpolated from TFDV's quantiles."""
    for hist in num_stats.histograms:
        if hist.type != statistics_pb2.Histogram.QUANTILES:
            continue
        buckets = [b for b in hist.buckets if b.sample_count > 0]
        if not buckets:
            return []
        mass = np.concatenate([[0.0], np.cumsum([b.sample_count for b in buckets])])
        edges = [buckets[0].low_value] + [b.high_value for b in buckets]
        targets = mass[-1] * np.arange(1, num_buckets) / num_buckets
        bounds = np.unique(np.interp(targets, mass, edges))
        return [float(b) for b in bounds if np.isfinite(b)]
    return []


def _numeric_spec(
    feature: schema_pb2.Feature,
    fs: statistics_pb2.FeatureNameStatistics | None,
    dtype: str,
    num_buckets: int,
    embedding_dim: int,
) -> FeatureSpec:
    mean, std, bounds = 0.0, 1.0, []
    if fs is not None and fs.WhichOneof("stats") == "num_stats":
        mean = float(fs.num_stats.mean)
        std = float(fs.num_stats.std_dev) if fs.num_stats.std_dev > 0 else 1.0
        bounds = _quantile_boundaries(fs.num_stats, num_buckets) if num_buckets > 1 else []
    return FeatureSpec(
        feature.name,
        "numeric",
        dtype=dtype,
        numeric_transform="bucketize" if bounds else "normalize",
        mean=mean,
        std=std,
        boundaries=tuple(bounds) or None,
        embedding_dim=embedding_dim,
    )


def _is_categorical_int(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> bool:
    which = feature.WhichOneof("domain_info")
    if which in ("domain", "string_domain", "bool_domain"):
        return True
    return which == "int_domain" and feature.int_domain.is_categorical


def feature_set_from_schema(
    schema: schema_pb2.Schema,
    label: str,
    statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    embedding_dim: int = 16,
    max_vocab_size: int = 100_000,
    num_buckets: int = 16,
    min_count: int = 1,
    vocabularies: dict[str, list] | None = None,
) -> FeatureSet:
    """Candidate features from a TFMD schema (and optionally its statistics).

    Skips the label, features not in production (``DEPRECATED``, ``DISABLED``, ...) and
    the parts of sparse features (with a warning).
    BYTES features become string categoricals; INT features become int64 categoricals
    when their domain says so (``is_categorical``, a string/bool domain or a named
    domain), else numerics; FLOAT features become numerics. A feature is multi-valent
    when its shape or ``value_count.max`` allows more than one value, or, with neither,
    when the statistics show more than one (without statistics it is assumed to be).

    Vocabularies come from the schema's string domain, else from the statistics when
    they list every value; otherwise (or above ``max_vocab_size`` values) the feature is
    hashed into ``min(max_vocab_size, unique count)`` buckets. Numerics are bucketized on
    quantile boundaries when the statistics have a QUANTILES histogram, else normalized
    with the statistics' mean and standard deviation (0 and 1 without statistics).

    Args:
        schema: The schema, e.g. from ``read_schema``.
        label: Name of the label feature (not a candidate).
        statistics: Optional statistics, e.g. from ``read_statistics``.
        embedding_dim: Full embedding width given to every feature.
        max_vocab_size: Largest vocabulary kept; larger ones are hashed.
        min_count: Vocabulary frequency threshold for vocabularies taken from the
            statistics: values counted fewer times map to OOV (schema domains are kept as
            written). The TFX selector passes ``vocabulary_min_count`` (default 5).
        num_buckets: Buckets for quantile bucketization (below 2: always normalize).
        vocabularies: Vocabularies by feature, used where the schema has no domain: a
            statistics pass's thresholded value lists, which an INT feature's schema
            cannot hold (``recsel.inputs.statistics.feature_set_from_statistics``).

    Returns:
        The candidate feature set, in schema order.

    Raises:
        ValueError: The label is not in the schema, or no candidate feature is left.

    Example:
        >>> features = feature_set_from_schema(read_schema("schema.pbtxt"), "clicked")
    """
    names = [f.name for f in schema.feature]
    if label not in names:
        raise ValueError(
            f"Label {label!r} is not a feature of the schema; its features are: "
            f"{', '.join(names) or '(none)'}. Pass the label's schema name."
        )
    by_name = _stats_by_name(statistics)
    # TFXIO parses these into their SparseFeature, so they never reach the model alone.
    sparse_parts = {
        part: sparse.name
        for sparse in schema.sparse_feature
        if in_production(sparse)
        for part in [*(i.name for i in sparse.index_feature), sparse.value_feature.name]
    }
    specs = []
    for feature in schema.feature:
        if feature.name == label or not in_production(feature):
            continue
        if is_written_index(feature.name):
            warn_written_index(feature.name)
            continue
        if feature.name in sparse_parts:
            warnings.warn(
                f"feature {feature.name!r} is skipped: it is part of sparse_feature "
                f"{sparse_parts[feature.name]!r}, which recsel cannot embed.",
                stacklevel=2,
            )
            continue
        fs = by_name.get(feature.name)
        multi, valency = _valency(feature, fs)
        categorical = feature.type == schema_pb2.BYTES or (
            feature.type == schema_pb2.INT and _is_categorical_int(schema, feature)
        )
        if categorical and not multi and _absent_from_some(feature, fs):
            # An optional feature: a list of at most one value, so that a record without it
            # parses (to an empty bag) rather than failing a fixed-length parse.
            multi = True
        kind = "multi_categorical" if multi else "categorical"
        common = dict(kind=kind, max_valency=valency, embedding_dim=embedding_dim)
        if feature.type == schema_pb2.BYTES:
            specs.append(
                _categorical_spec(
                    schema, feature, fs, "string", max_vocab_size, min_count, **common
                )
            )
        elif categorical:  # an INT category
            specs.append(
                _categorical_spec(
                    schema,
                    feature,
                    fs,
                    "int64",
                    max_vocab_size,
                    min_count,
                    listed=(vocabularies or {}).get(feature.name),
                    **common,
                )
            )
        elif feature.type in (schema_pb2.INT, schema_pb2.FLOAT) and not multi:
            dtype = "int64" if feature.type == schema_pb2.INT else "float32"
            specs.append(_numeric_spec(feature, fs, dtype, num_buckets, embedding_dim))
        else:
            why = "numeric lists are not supported" if multi else "its type is not supported"
            warnings.warn(
                f"feature {feature.name!r} ({schema_pb2.FeatureType.Name(feature.type)}) is "
                f"skipped: {why}. Make it categorical or scalar to select it.",
                stacklevel=2,
            )
    if not specs:
        raise ValueError(f"The schema has no candidate features besides the label {label!r}.")
    return FeatureSet(tuple(specs), label)
