"""Synthetic data where the embedding width each table needs is planted (issue 15).

Two kinds of categorical tables drive the label:

* **interaction pairs** (think user x item): the logit gets ``u[a] . v[b] / sqrt(r)``
  for latent vectors of rank ``r``, so a model needs width >= ``r`` in *both* tables
  to represent the term (a narrower table can only carry a rank-``width`` part of it);
* **additive** tables: the logit gets a scalar ``w[c]`` per value, which width 1 holds.

Every term has unit variance, so a table's *width* need differs while its *value* does
not: a width rule that follows only cardinality or only importance cannot recover the
ranks. Cardinalities run from 10 to 100,000 with Zipf popularity (value ``k`` has
probability proportional to ``1 / k``), and the largest tables are deliberately *not*
the ones that need the most width, as in production, where the widest table (users)
often needs less width per row than a small context table. Column names (``t00``, ...)
are assigned to roles at random; ``PlantedWidthData.needed_width`` is the truth.

Example:
    >>> data = make_planted_widths(n_rows=20_000, seed=0)
    >>> data.needed_width  # {"t03": 32, "t07": 32, "t01": 1, ...}
    >>> data.frame.shape
    (20000, 11)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from recsel.data.synthetic import solve_bias

# (rank, cardinality of side a, cardinality of side b). The 100k side of the rank-2 pair
# is the largest table but needs only width 2; the rank-32 pair is mid-sized.
DEFAULT_PAIRS: tuple[tuple[int, int, int], ...] = ((2, 100_000, 20), (8, 60, 40), (32, 50, 40))
DEFAULT_ADDITIVE: tuple[int, ...] = (10, 1_000, 30_000, 100_000)
# Logit sd per latent component of an interaction (a rank-r term has sd scale*sqrt(r)),
# and per additive term. Every component carries the same signal, so a table's need
# grows with its rank; a ReLU tower on concatenated embeddings learns products slowly.
_INTERACTION_SCALE = 0.8
_ADDITIVE_SCALE = 0.5
_TARGET_POSITIVE_RATE = 0.4


@dataclasses.dataclass
class PlantedWidthData:
    """A planted-width table and its ground truth.

    Args:
        frame: Candidate columns (sorted by name), then the int64 0/1 label.
        label: Label column name.
        needed_width: Column -> the width its planted term needs (rank, or 1).
        pairs: Interaction pairs ``(column a, column b, rank)``.
        cardinality: Column -> number of distinct raw values it is drawn from.
    """

    frame: pd.DataFrame
    label: str
    needed_width: dict[str, int]
    pairs: list[tuple[str, str, int]]
    cardinality: dict[str, int]

    def feature_columns(self) -> list[str]:
        """All candidate columns, in frame order."""
        return [c for c in self.frame.columns if c != self.label]


def _check(n_rows: int, pairs, additive, zipf_exponent: float) -> None:
    if n_rows < 100:
        raise ValueError(f"make_planted_widths: n_rows must be at least 100, got {n_rows}.")
    if not pairs and not additive:
        raise ValueError("make_planted_widths: give at least one pair or one additive table.")
    for rank, card_a, card_b in pairs:
        if rank < 1 or min(card_a, card_b) < 2:
            raise ValueError(
                f"make_planted_widths: pair (rank {rank}, cardinalities {card_a}, {card_b}) needs "
                "rank >= 1 and cardinalities >= 2."
            )
    if any(c < 2 for c in additive):
        raise ValueError(
            f"make_planted_widths: additive cardinalities must be >= 2, got {additive}."
        )
    if zipf_exponent < 0:
        raise ValueError(f"make_planted_widths: zipf_exponent must be >= 0, got {zipf_exponent}.")


def _zipf_codes(card: int, n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of value ranks 0..card-1 with probability proportional to 1/(k+1)^exponent,
    shuffled so a value's code says nothing about its popularity."""
    weights = 1.0 / np.arange(1, card + 1, dtype=np.float64) ** exponent
    codes = rng.choice(card, size=n, p=weights / weights.sum())
    return rng.permutation(card)[codes]


def _standardise(term: np.ndarray) -> np.ndarray:
    return (term - term.mean()) / max(float(term.std()), 1e-12)


def make_planted_widths(
    n_rows: int = 60_000,
    seed: int = 0,
    pairs: tuple[tuple[int, int, int], ...] = DEFAULT_PAIRS,
    additive: tuple[int, ...] = DEFAULT_ADDITIVE,
    zipf_exponent: float = 1.0,
    interaction_scale: float = _INTERACTION_SCALE,
    additive_scale: float = _ADDITIVE_SCALE,
) -> PlantedWidthData:
    """Draws a table whose tables need known embedding widths.

    Args:
        n_rows: Rows.
        seed: Seed of values, latent vectors, name assignment and labels.
        pairs: ``(rank, cardinality a, cardinality b)`` per interaction pair.
        additive: Cardinality per additive table (needs width 1).
        zipf_exponent: Popularity exponent of every table's values (0: uniform).
        interaction_scale: Logit standard deviation of each latent component of an
            interaction (a rank-r term has ``interaction_scale * sqrt(r)``).
        additive_scale: Logit standard deviation of each additive term.

    Returns:
        The ``PlantedWidthData``; values are strings ``"v<code>"``.

    Raises:
        ValueError: Too few rows, no table, or a bad rank, cardinality or exponent.

    Example:
        >>> data = make_planted_widths(n_rows=5_000, pairs=((8, 500, 100),), additive=(10,))
        >>> sorted(data.needed_width.values())
        [1, 8, 8]
    """
    _check(n_rows, pairs, additive, zipf_exponent)
    rng = np.random.default_rng(seed)
    n_tables = 2 * len(pairs) + len(additive)
    names = [f"t{i:02d}" for i in rng.permutation(n_tables)]
    columns: dict[str, np.ndarray] = {}
    needed: dict[str, int] = {}
    cardinality: dict[str, int] = {}
    planted_pairs: list[tuple[str, str, int]] = []
    logit = np.zeros(n_rows)
    taken = iter(names)
    for rank, card_a, card_b in pairs:
        name_a, name_b = next(taken), next(taken)
        codes_a = _zipf_codes(card_a, n_rows, zipf_exponent, rng)
        codes_b = _zipf_codes(card_b, n_rows, zipf_exponent, rng)
        u = rng.standard_normal((card_a, rank))
        v = rng.standard_normal((card_b, rank))
        # Row-wise dot product of the two sides' latent vectors: rank-r bilinear term.
        term = np.einsum("ij,ij->i", u[codes_a], v[codes_b]) / np.sqrt(rank)
        logit += interaction_scale * np.sqrt(rank) * _standardise(term)
        columns[name_a], columns[name_b] = codes_a, codes_b
        needed[name_a] = needed[name_b] = int(rank)
        cardinality[name_a], cardinality[name_b] = int(card_a), int(card_b)
        planted_pairs.append((name_a, name_b, int(rank)))
    for card in additive:
        name = next(taken)
        codes = _zipf_codes(card, n_rows, zipf_exponent, rng)
        logit += additive_scale * _standardise(rng.standard_normal(card)[codes])
        columns[name], needed[name], cardinality[name] = codes, 1, int(card)
    bias = solve_bias(logit, _TARGET_POSITIVE_RATE)
    label = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-(logit + bias)))).astype(np.int64)
    frame = pd.DataFrame(
        {name: np.char.add("v", columns[name].astype(str)) for name in sorted(columns)}
    )
    frame["label"] = label
    return PlantedWidthData(frame, "label", needed, planted_pairs, cardinality)
