"""Measured serving cost: time real SavedModels and fit a per-feature latency model.

A latency budget ("score 512 examples in 3 ms") is only meaningful on the machine that
serves, so nothing here is a guessed constant. ``calibrate`` exports a dozen pruned
rankers over random feature subsets and widths, times their ``serving_default``
signature (tf.Example parsing included; each model's latency is the least p50 of three
interleaved timing passes) and fits, by non-negative least squares, a linear model of
that latency in the kept set's structure:

- ``base_ms``: intercept (signature call, tower after the first layer, sigmoid);
- ``per_feature_ms[<kind>]``: fixed parse + lookup cost of one feature of that kind;
- ``per_value_ms``: each parsed value beyond the first (``max_valency - 1``);
- ``per_lookup_column_ms``: embedding values gathered and pooled per example,
  ``width * max_valency``;
- ``per_dense_input_column_ms``: columns entering the first dense layer, ``width``. It
  covers the concat and the ``width * hidden_units[0]`` multiply-adds, so the model is
  specific to ``hidden_units`` (which is part of the cache key).

Fitted models are cached as JSON per machine, TensorFlow version, batch size, tower and
feature structure.

Example:
    >>> cost = calibrate(features, hidden_units=(64, 32), batch_size=512, sample_frame=train)
    >>> cost.predict_ms(features.subset(["country", "tags"], {"tags": 16}))
    >>> cost.feature_cost_ms(features["country"], width=8)
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from recsel.atomic import atomic_write_text, read_text
from recsel.cost.cache_key import VERSION
from recsel.spec import contract
from recsel.spec.features import KINDS, FeatureSet, FeatureSpec

__all__ = ["COEFFICIENTS", "CostModel"]

COEFFICIENTS = (
    "base_ms",
    *(f"per_feature_ms[{kind}]" for kind in KINDS),
    "per_value_ms",
    "per_lookup_column_ms",
    "per_dense_input_column_ms",
)


def design_row(kept: FeatureSet) -> np.ndarray:
    """One row of the regression: the structure counts that ``COEFFICIENTS`` multiply."""
    counts = [sum(s.kind == kind for s in kept) for kind in KINDS]
    return np.asarray(
        [
            1.0,
            *counts,
            sum(s.max_valency - 1 for s in kept),
            sum(s.embedding_dim * s.max_valency for s in kept),
            sum(s.embedding_dim for s in kept),
        ],
        np.float64,
    )


@dataclasses.dataclass
class CostModel:
    """Fitted serving latency (p50, ms) of a pruned ranker as a function of its kept set.

    Args:
        coefficients: Non-negative coefficients named as in ``COEFFICIENTS``.
        batch_size: Batch size the latencies were measured at.
        hidden_units: The ranker tower the latencies were measured with.
        provenance: Machine, TensorFlow version, date, calibration size, fit R^2,
            residuals, wall time and cache status.
    """

    coefficients: dict[str, float]
    batch_size: int
    hidden_units: tuple[int, ...]
    provenance: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [n for n in COEFFICIENTS if n not in self.coefficients]
        if missing:
            raise ValueError(f"CostModel: coefficients {missing} are missing.")
        negative = {n: v for n, v in self.coefficients.items() if v < 0}
        if negative:
            raise ValueError(f"CostModel: coefficients must be non-negative, got {negative}.")
        self.hidden_units = tuple(int(u) for u in self.hidden_units)

    def _per_column_ms(self, spec: FeatureSpec) -> float:
        c = self.coefficients
        return c["per_lookup_column_ms"] * spec.max_valency + c["per_dense_input_column_ms"]

    def feature_cost_ms(self, spec: FeatureSpec, width: int) -> float:
        """Marginal latency (ms) of adding ``spec`` at ``width`` columns to a model.

        Its fixed parse + lookup cost (by kind and valency) plus ``width`` times its
        per-column cost (lookup columns and first-dense-layer input columns).

        Args:
            spec: The feature (its kind and ``max_valency`` matter, not its name).
            width: Kept embedding columns, at least 1.

        Example:
            >>> cost.feature_cost_ms(features["tags"], width=16)
        """
        if width < 1:
            raise ValueError(f"feature {spec.name!r}: width must be at least 1, got {width}.")
        c = self.coefficients
        fixed = c[f"per_feature_ms[{spec.kind}]"] + c["per_value_ms"] * (spec.max_valency - 1)
        return float(fixed + width * self._per_column_ms(spec))

    def chunk_cost_ms(self, spec: FeatureSpec, columns: int) -> float:
        """Marginal latency (ms) of widening an already kept ``spec`` by ``columns``.

        Args:
            spec: The kept feature.
            columns: Extra embedding columns, at least 0.

        Example:
            >>> cost.chunk_cost_ms(features["tags"], columns=8)
        """
        if columns < 0:
            raise ValueError(f"feature {spec.name!r}: columns must be >= 0, got {columns}.")
        return float(columns * self._per_column_ms(spec))

    def predict_ms(self, kept: FeatureSet) -> float:
        """Predicted p50 latency (ms) of a ranker over ``kept`` at their widths.

        Args:
            kept: The kept features, each with its kept ``embedding_dim``.

        Example:
            >>> cost.predict_ms(features.subset(["country"], {"country": 8}))
        """
        return float(
            self.coefficients["base_ms"]
            + sum(self.feature_cost_ms(s, s.embedding_dim) for s in kept)
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready coefficients, measurement settings and provenance.

        Example:
            >>> json.dumps(cost.describe())
        """
        return {
            "version": VERSION,
            "coefficients": {n: float(self.coefficients[n]) for n in COEFFICIENTS},
            "batch_size": int(self.batch_size),
            "hidden_units": list(self.hidden_units),
            "provenance": self.provenance,
        }

    def to_json(self, path: str) -> None:
        """Writes ``describe()`` to ``path`` atomically (local or ``gs://``).

        Example:
            >>> cost.to_json("cost.json")
        """
        atomic_write_text(path, json.dumps(self.describe(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "cost model") -> CostModel:
        """Builds a model from ``describe()`` output, validated against the JSON Schema."""
        contract.validate(data, "cost_model.schema.json", source)
        return cls(
            dict(data["coefficients"]),
            data["batch_size"],
            tuple(data["hidden_units"]),
            dict(data["provenance"]),
        )

    @classmethod
    def from_json(cls, path: str) -> CostModel:
        """Reads a model written by ``to_json``.

        Raises:
            ValueError: The file is not JSON or breaks ``cost_model.schema.json`` (the
                message names ``path`` and the field).

        Example:
            >>> cost = CostModel.from_json("cost.json")
        """
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}).") from err
        return cls.from_dict(data, source=path)
