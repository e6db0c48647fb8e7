"""Typed description of candidate features: what they are and how to embed them.

A ``FeatureSpec`` says how one raw column becomes an embedding: its kind
(categorical, multi-valent categorical or numeric), the lookup (vocabulary or
hashing), the combiner and the full embedding width. A ``FeatureSet`` is the ordered
collection plus the label. Build one from a TFMD schema (``recsel.inputs.schema_io``), infer
it from data (``recsel.inputs.inference``), or read it from JSON.

Example:
    >>> spec = FeatureSpec("country", "categorical", vocabulary=("de", "fr"), embedding_dim=16)
    >>> features = FeatureSet((spec,), label="clicked")
    >>> features.to_json("features.json")
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from recsel.atomic import atomic_write_text, read_text
from recsel.spec import contract

Kind = Literal["categorical", "multi_categorical", "numeric"]
KINDS = ("categorical", "multi_categorical", "numeric")
COMBINERS = ("mean", "sum", "sqrtn")
NUMERIC_TRANSFORMS = ("normalize", "bucketize")
DTYPES = ("string", "int64", "float32")
# What a missing categorical value reads as in a frame and in a Parquet or CSV stream
# (a null cell), so both look it up as the same row: OOV, as it is never in a vocabulary.
MISSING_CATEGORY = {"string": "", "int64": -1}


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """How one candidate feature is parsed, looked up and embedded.

    Args:
        name: Column / feature name.
        kind: ``categorical``, ``multi_categorical`` (variable-length list) or ``numeric``.
        dtype: Raw value type: ``string``, ``int64`` or ``float32``.
        vocabulary: Known values for a vocabulary lookup (categorical kinds).
        hash_buckets: Number of hash bins instead of a vocabulary (categorical kinds).
        num_oov_buckets: Out-of-vocabulary rows, so serving accepts unseen IDs.
        combiner: How a multi-valent feature pools its values: mean, sum or sqrtn.
        max_valency: Largest number of values per example (1 for scalar features).
        numeric_transform: ``normalize`` ((x - mean) / std, times a learned vector) or
            ``bucketize`` (Discretization on ``boundaries``, then an embedding lookup).
        mean: Training mean, for ``normalize``.
        std: Training standard deviation, for ``normalize``.
        boundaries: Bucket boundaries, for ``bucketize``.
        embedding_dim: Full embedding width before selection.
    """

    name: str
    kind: Kind
    dtype: str = "string"
    vocabulary: tuple[Any, ...] | None = None
    hash_buckets: int | None = None
    num_oov_buckets: int = 1
    combiner: str = "mean"
    max_valency: int = 1
    numeric_transform: str = "normalize"
    mean: float = 0.0
    std: float = 1.0
    boundaries: tuple[float, ...] | None = None
    embedding_dim: int = 16

    def __post_init__(self) -> None:
        where = f"feature {self.name!r}"
        if not self.name:
            raise ValueError("A feature needs a non-empty name.")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"{where}: dtype must be one of {DTYPES}, got {self.dtype!r}.")
        if self.embedding_dim < 1:
            raise ValueError(f"{where}: embedding_dim must be positive, got {self.embedding_dim}.")
        if self.kind == "numeric":
            if self.numeric_transform not in NUMERIC_TRANSFORMS:
                raise ValueError(
                    f"{where}: numeric_transform must be one of {NUMERIC_TRANSFORMS}, "
                    f"got {self.numeric_transform!r}."
                )
            if self.numeric_transform == "bucketize" and not self.boundaries:
                raise ValueError(f"{where}: bucketize needs non-empty boundaries.")
            if self.std <= 0:
                raise ValueError(f"{where}: std must be positive, got {self.std}.")
        else:
            if (self.vocabulary is None) == (self.hash_buckets is None):
                raise ValueError(
                    f"{where}: a categorical feature needs exactly one of vocabulary or hash_buckets."
                )
            if self.vocabulary is not None and len(self.vocabulary) == 0:
                raise ValueError(f"{where}: the vocabulary is empty; use hash_buckets instead.")
            if self.hash_buckets is not None and self.hash_buckets < 1:
                raise ValueError(f"{where}: hash_buckets must be positive.")
        if self.combiner not in COMBINERS:
            raise ValueError(
                f"{where}: combiner must be one of {COMBINERS}, got {self.combiner!r}."
            )
        if self.max_valency < 1:
            raise ValueError(f"{where}: max_valency must be at least 1.")

    @property
    def vocabulary_size(self) -> int:
        """Rows of this feature's embedding table."""
        if self.kind == "numeric":
            if self.numeric_transform == "normalize":
                return 1
            return len(self.boundaries or ()) + 1
        if self.hash_buckets is not None:
            return int(self.hash_buckets)
        return len(self.vocabulary or ()) + self.num_oov_buckets

    @property
    def is_multivalent(self) -> bool:
        return self.kind == "multi_categorical"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "embedding_dim": self.embedding_dim,
        }
        if self.kind == "numeric":
            out["numeric_transform"] = self.numeric_transform
            if self.numeric_transform == "normalize":
                out.update(mean=self.mean, std=self.std)
            else:
                out["boundaries"] = list(self.boundaries or ())
        else:
            if self.vocabulary is not None:
                out["vocabulary"] = list(self.vocabulary)
                out["num_oov_buckets"] = self.num_oov_buckets
            else:
                out["hash_buckets"] = self.hash_buckets
            out["combiner"] = self.combiner
            out["max_valency"] = self.max_valency
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        data = dict(data)
        data.pop("vocabulary_file", None)  # a reference; FeatureSet.from_json resolves it
        for key in ("vocabulary", "boundaries"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)

    def with_dim(self, embedding_dim: int) -> FeatureSpec:
        return dataclasses.replace(self, embedding_dim=int(embedding_dim))


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """An ordered set of candidate features plus the label they predict.

    Args:
        features: Feature specs, in the order the layer concatenates them.
        label: Name of the label column (not a candidate).
    """

    features: tuple[FeatureSpec, ...]
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        seen: set[str] = set()
        for spec in self.features:
            if spec.name in seen:
                raise ValueError(f"Feature {spec.name!r} appears twice in the feature set.")
            if spec.name == self.label:
                raise ValueError(f"The label {self.label!r} cannot also be a candidate feature.")
            seen.add(spec.name)
        if not self.features:
            raise ValueError("A feature set needs at least one candidate feature.")

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(f"No feature named {name!r}; known features: {', '.join(self.names)}.")

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.features]

    def subset(self, names: Iterable[str], dims: dict[str, int] | None = None) -> FeatureSet:
        """The features in ``names`` (kept in this set's order), optionally re-dimensioned."""
        wanted = set(names)
        unknown = wanted - set(self.names)
        if unknown:
            raise KeyError(f"Unknown features {sorted(unknown)}; known: {', '.join(self.names)}.")
        dims = dims or {}
        kept = [
            s.with_dim(dims[s.name]) if s.name in dims else s
            for s in self.features
            if s.name in wanted
        ]
        return FeatureSet(tuple(kept), self.label)

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "label": self.label, "features": [s.to_dict() for s in self.features]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "feature spec") -> FeatureSet:
        contract.validate(data, "feature_spec.schema.json", source)
        return cls(tuple(FeatureSpec.from_dict(f) for f in data["features"]), data.get("label"))

    def to_json(self, path: str) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str) -> FeatureSet:
        from recsel.atomic import read_text

        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}).") from err
        return cls.from_dict(_inline_vocabulary_files(data, path), source=path)


def _inline_vocabulary_files(data: Any, path: str) -> Any:
    """Reads the ``vocabulary_file`` (relative to ``path``'s directory) of each feature
    that has no inline vocabulary."""
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        return data  # the schema check reports it
    import os

    features = []
    for entry in data["features"]:
        if isinstance(entry, dict) and entry.get("vocabulary_file") and "vocabulary" not in entry:
            file = os.path.join(os.path.dirname(path), entry["vocabulary_file"])
            try:
                values = read_vocabulary_file(file, entry.get("dtype", "string"))
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"{path}: feature {entry.get('name')!r} references vocabulary file {file}, "
                    "which does not exist; copy it along with the spec or inline the vocabulary."
                ) from None
            entry = {**entry, "vocabulary": list(values)}
        features.append(entry)
    return {**data, "features": features}


def read_vocabulary_file(path: str, dtype: str) -> tuple[Any, ...]:
    """The values of a vocabulary file, typed by the feature's ``dtype``.

    Raises:
        ValueError: An ``int64`` vocabulary with a line that is not an integer, naming
            the file and the line.

    Example:
        >>> read_vocabulary_file("out/vocabularies/country.txt", "string")
        ('de', 'fr')
    """
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if dtype != "int64":
        return tuple(lines)
    try:
        return tuple(int(line) for line in lines)
    except ValueError:
        bad = next(i for i, line in enumerate(lines, 1) if not re.fullmatch(r"-?\d+", line))
        raise ValueError(
            f"{path}: line {bad} ({lines[bad - 1]!r}) is not an integer, but the feature is "
            "int64; rewrite the file or fix the feature's dtype."
        ) from None
