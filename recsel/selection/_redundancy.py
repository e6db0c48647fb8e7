"""Is one column a copy of another? A data check that needs no training.

Under a budget, a copy of a kept feature must never be chosen: it has no marginal value,
yet once a round has trained with it the model leans on it, and masking it off then
costs validation AUC (a noisy copy "added" 0.014 on adversarial data). Copies are
therefore judged on a sample of rows before a round may pick them.

Purity alone (the share of rows whose ``b`` is the most common ``b`` of their ``a``)
calls any two skewed columns copies: on Adult, ``race`` (mostly one value) and
``capital_gain`` (mostly 0) are each >85% "predicted" by the other. Goodman and
Kruskal's lambda removes the share the most common value gets anyway:
``(purity - base) / (1 - base)``, 1 for a relabelling and 0 for independent columns.

Example:
    >>> redundancy(frame["c04"], frame["c11"])   # 1.0 for an exact relabelling
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd

# A copy with 15% of its rows redrawn from its own marginal scores ~0.85; informative but
# distinct columns on Adult and MovieLens score below 0.5.
REDUNDANCY_THRESHOLD = 0.8
# Fewer than 20 rows per value on average: values seen a few times each "predict" any
# other column (MovieLens' user_id and zip_code scored 0.997 on 2,048 rows), so no verdict.
_MAX_DISTINCT_SHARE = 0.05
# Past that share, only an exact relabelling (a bijection on the sample) is judged, while
# there are at least 5 rows per value: adversarial 200-value exact copies on 2,000 rows
# were kept beside their sources for want of a verdict, and columns that are not copies
# (independent, or many-to-one like user -> zip code) almost surely break a bijection once
# most values recur in the sample.
_MAX_EXACT_DISTINCT_SHARE = 0.2


def hashable(series: pd.Series) -> pd.Series:
    """List cells as sorted tuples of strings, so they can be counted and factorized."""
    # Only an object column can hold lists; the scan of every cell is for those alone.
    if (
        series.dtype == object
        and series.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any()
    ):
        return series.map(lambda v: tuple(sorted(map(str, v))))
    return series


@dataclasses.dataclass
class Column:
    """One column, prepared once for every pair it is scored in: the explanation of dropped
    features scores each dropped candidate against each kept feature, and hashing list
    cells per pair was most of its time.

    Example:
        >>> redundancy_of(Column(frame["c04"]), Column(frame["c11"]))
    """

    series: pd.Series

    @functools.cached_property
    def numeric(self) -> bool:
        return pd.api.types.is_numeric_dtype(self.series) and self.series.nunique() > 20

    @functools.cached_property
    def codes(self) -> tuple[np.ndarray, int]:
        """Integer codes of the (hashable) values (-1: missing) and how many values."""
        codes, uniques = pd.factorize(hashable(self.series))
        return codes.astype(np.int64), len(uniques)


def _lambdas(a: Column, b: Column) -> tuple[float, float]:
    """Goodman-Kruskal lambda of ``b`` given ``a`` and of ``a`` given ``b``, from one
    contingency table: the error that knowing one column removes from guessing the other.

    Integer codes and one ``np.bincount`` instead of a pandas group-by: the group-by was
    12% of a selection's wall time (0.7 of 5.8 s, 20 candidates). Rows with a missing
    value in either column form no pair.
    """
    (ca, na), (cb, nb) = a.codes, b.codes
    present = (ca >= 0) & (cb >= 0)
    table = np.bincount(ca[present] * nb + cb[present], minlength=na * nb).reshape(na, nb)
    rows = len(ca)

    def one_way(hits: float, counts: np.ndarray) -> float:
        base = float(counts.max(initial=0))
        if base >= rows:
            return 0.0  # constant: nothing to predict, so no evidence of a copy
        return (hits - base) / (rows - base)

    b_given_a = one_way(float(table.max(axis=1, initial=0).sum()), np.bincount(cb[cb >= 0]))
    a_given_b = one_way(float(table.max(axis=0, initial=0).sum()), np.bincount(ca[ca >= 0]))
    return b_given_a, a_given_b


def _relabels(a: Column, b: Column) -> bool:
    """Whether ``a`` and ``b`` are one column under a renaming of values, on the sample:
    missing in the same rows, and as many distinct value pairs as values on either side."""
    (ca, na), (cb, nb) = a.codes, b.codes
    if na != nb or na < 2 or na > _MAX_EXACT_DISTINCT_SHARE * len(ca):
        return False
    present = ca >= 0
    if not np.array_equal(present, cb >= 0):
        return False
    return np.unique(ca[present] * nb + cb[present]).size == na


def redundancy_of(a: Column, b: Column) -> float | None:
    """``redundancy`` of two prepared columns (see ``redundancy``)."""
    rows = len(a.series)
    if rows < 2:
        return None
    if a.numeric and b.numeric:
        if a.series.std() == 0 or b.series.std() == 0:
            return None
        return abs(float(np.corrcoef(a.series.astype(float), b.series.astype(float))[0, 1]))
    limit = _MAX_DISTINCT_SHARE * rows
    if a.codes[1] > limit or b.codes[1] > limit:
        return 1.0 if _relabels(a, b) else None
    return min(_lambdas(a, b))


def redundancy(a: pd.Series, b: pd.Series) -> float | None:
    """How completely ``a`` and ``b`` determine one another, in [0, 1]; None if unjudgeable.

    The one definition of a copy: the budget's copy guard and the report's dropped-feature
    explanation both call a pair a copy when this is at least ``REDUNDANCY_THRESHOLD``.

    Args:
        a: One column (numeric, categorical or multi-valent cells).
        b: Another column of the same rows.

    Returns:
        Numeric pairs with many values: |Pearson correlation|. Otherwise the smaller of
        the two lambdas (each column predicts the other beyond its most common value).
        None when a column has too many values for the sample (fewer than 20 rows
        per value on average) or the sample is too small; but 1 for an exact
        relabelling with at least 5 rows per value.

    Example:
        >>> redundancy(pd.Series([1, 2, 1, 2]), pd.Series(["x", "y", "x", "y"]))
        1.0
    """
    return redundancy_of(Column(a), Column(b))


class CopyFinder:
    """Finds which of some columns a column copies, on one fixed sample of rows.

    The budget's rounds (``RoundValue``) and every feature event (``CopyGuard``) ask the
    same question of the same rows many times, so prepared columns and pair scores are
    kept.

    Args:
        sample: The rows copies are judged on.

    Example:
        >>> CopyFinder(sample).first_copy("c07", ["c02", "c05"])   # "c02": c07 relabels it
    """

    def __init__(self, sample: pd.DataFrame):
        self.sample = sample
        self._columns: dict[str, Column] = {}
        self._scores: dict[tuple[str, str], float | None] = {}

    def first_copy(self, name: str, others: list[str]) -> str | None:
        """The first of ``others`` (in their order) that ``name`` copies, if any."""
        for other in others:
            score = self.score(name, other)
            if score is not None and score >= REDUNDANCY_THRESHOLD:
                return other
        return None

    def score(self, name: str, other: str) -> float | None:
        """``redundancy`` of the two columns on the sample (computed once per pair)."""
        key = (name, other)
        if key not in self._scores:
            self._scores[key] = redundancy_of(self._column(name), self._column(other))
        return self._scores[key]

    def _column(self, name: str) -> Column:
        if name not in self._columns:
            self._columns[name] = Column(self.sample[name])
        return self._columns[name]
