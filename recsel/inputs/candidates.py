"""The candidates of a selection, from whichever source a shell has, and the options
that say how (``recsel.params`` defaults): one ``build_features`` for every shell.

Example:
    >>> build_features(InputOptions("clicked"), frame=train_frame)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tensorflow_metadata.proto.v0 import schema_pb2

from recsel import params
from recsel.inputs import schema_io
from recsel.inputs.statistics import feature_set_from_statistics
from recsel.spec.features import FeatureSet


@dataclasses.dataclass(frozen=True)
class InputOptions:
    """How a shell's rows are read and its candidates built (``recsel.params`` defaults).

    Args:
        label: The binary label column.
        embedding_dim: Full width of inferred features.
        vocabulary_min_count: Values seen fewer times in training map to OOV.
        nan_policy: ``raise`` or ``impute`` NaN/inf in numeric features.
        validation_fraction: Share of the rows (frames) or shards (streams) held out.
        exclude: Columns that are not candidates.
        categorical: Integer columns that are categorical.
        list_columns: Frames from CSV only: columns whose text cells are lists.
        list_separator: The separator of those cells.
        time_column: Frames only: validate on the latest rows by this column (excluded).
        seed: Seed of the row split (frames) and of the training stream's shuffle.
    """

    label: str
    embedding_dim: int = params.default("embedding_dim")
    vocabulary_min_count: int = params.default("vocabulary_min_count")
    nan_policy: str = params.default("nan_policy")
    validation_fraction: float = params.default("validation_fraction")
    exclude: tuple[str, ...] = params.default("exclude")
    categorical: tuple[str, ...] = params.default("categorical")
    list_columns: tuple[str, ...] = params.default("list_columns")
    list_separator: str = params.default("list_separator")
    time_column: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "vocabulary_min_count", "nan_policy"):
            params.get(name).check(getattr(self, name))
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}."
            )
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        object.__setattr__(self, "list_columns", tuple(self.list_columns))
        if self.list_columns and not self.list_separator:
            raise ValueError("list_columns need a list_separator (e.g. '|').")

    @classmethod
    def from_values(cls, label: str, values: dict, **extra) -> InputOptions:
        """The options among ``values`` (``recsel.params`` names; None: the default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in values.items() if k in names and v is not None}
        return cls(label, **{**given, **extra})


def build_features(
    options: InputOptions,
    *,
    features: FeatureSet | None = None,
    schema: schema_pb2.Schema | None = None,
    statistics: Any = None,
    frame: Any = None,
) -> FeatureSet:
    """The candidates, from the first source given: a spec, a schema, statistics, a frame.

    Args:
        options: Label, widths, vocabulary threshold, excluded and categorical columns.
        features: A feature spec to use as is (a missing label is set to ``options.label``).
        schema: A TFMD schema (with ``statistics`` for vocabularies and valencies).
        statistics: TFDV statistics of the training rows.
        frame: Training rows to infer the candidates from.

    Returns:
        The ``FeatureSet``.

    Raises:
        ValueError: No source given, or one the builders reject (they name the column).

    Example:
        >>> build_features(InputOptions("clicked"), frame=train_frame)
    """
    if features is not None:
        return (
            features if features.label is not None else FeatureSet(features.features, options.label)
        )
    if schema is not None:
        return schema_io.feature_set_from_schema(
            schema,
            options.label,
            statistics,
            embedding_dim=options.embedding_dim,
            min_count=options.vocabulary_min_count,
        )
    exclude = [*options.exclude, *([options.time_column] if options.time_column else [])]
    if statistics is not None:
        return feature_set_from_statistics(
            statistics,
            options.label,
            embedding_dim=options.embedding_dim,
            categorical=options.categorical,
            exclude=exclude,
        )
    if frame is None:
        raise ValueError("build_features needs a feature spec, a schema, statistics or a frame.")
    from recsel.inputs.inference import infer_feature_set

    return infer_feature_set(
        frame,
        options.label,
        embedding_dim=options.embedding_dim,
        min_count=options.vocabulary_min_count,
        categorical=list(options.categorical),
        exclude=exclude,
    )
