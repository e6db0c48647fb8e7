"""Recommender-like synthetic data with a planted ground truth for feature selection.

``make_synthetic`` draws a table of categorical, numeric and multi-hot columns in
which only some columns drive the label. It also plants traps a selector should
avoid: duplicates of informative columns (exact copies under a relabelling, and noisy
copies), pure-noise columns, and high-cardinality ID-like noise columns that a model
can memorise. Column names (``f00``, ``f01``, ...) are assigned to roles at random,
so nothing in a name or a value reveals its role; the roles are reported on the
returned ``SyntheticData``.

Example:
    >>> data = make_synthetic(n_rows=5_000, seed=1)
    >>> data.frame.shape
    (5000, 35)
    >>> sorted(data.groups())[:2]  # informative columns; each maps to itself and its copies
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator

import numpy as np
import pandas as pd

# Per-feature logit scale at signal_strength=1. With the 8 default informative
# features the logit has standard deviation ~2.3: every feature moves the AUC of a
# model that misses it, yet the label is far from deterministic.
_EFFECT_SCALE = 0.8
_TARGET_POSITIVE_RATE = 0.4
_ZIPF_EXPONENT = 1.0  # value popularity falls off like 1 / rank, as item and user IDs do
_NUMERIC_GRID = 512  # numeric values are multiples of 1/512, so 2x + 1 is exact in float32


@dataclasses.dataclass
class SyntheticData:
    """A synthetic table plus the roles of its columns.

    Args:
        frame: Candidate columns (sorted by name) followed by the label column; rows
            are in random order.
        label: Name of the int64 0/1 label column.
        informative: The planted informative features.
        duplicates: Duplicate column -> the informative column it copies.
        noise: Pure-noise columns, traps included.
        traps: High-cardinality, ID-like noise columns (a subset of ``noise``).
        exact_duplicates: Duplicates that are exact copies under a bijective relabelling
            (the others have a fraction of their rows resampled).
        kinds: Column -> ``categorical``, ``numeric`` or ``multi_categorical`` (the
            ``FeatureSpec`` kinds).
    """

    frame: pd.DataFrame
    label: str
    informative: list[str]
    duplicates: dict[str, str]
    noise: list[str]
    traps: list[str]
    exact_duplicates: list[str] = dataclasses.field(default_factory=list)
    kinds: dict[str, str] = dataclasses.field(default_factory=dict)

    def groups(self) -> dict[str, list[str]]:
        """Informative column -> ``[it, *its duplicates]``: columns that carry one signal."""
        out = {name: [name] for name in self.informative}
        for dup, source in self.duplicates.items():
            out[source].append(dup)
        return out

    def feature_columns(self) -> list[str]:
        """All candidate columns (everything but the label), in frame order."""
        return [c for c in self.frame.columns if c != self.label]


def _check_args(
    n_rows: int,
    n_informative: int,
    n_duplicates: int,
    n_noise: int,
    n_traps: int,
    vocab_size: int,
    max_valency: int,
    noisy_duplicate_rate: float,
    signal_strength: float,
) -> None:
    if n_rows < 10:
        raise ValueError(f"make_synthetic: n_rows must be at least 10, got {n_rows}.")
    if n_informative < 1:
        raise ValueError(f"make_synthetic: n_informative must be at least 1, got {n_informative}.")
    if n_duplicates < 0 or n_noise < 0 or n_traps < 0:
        raise ValueError(
            "make_synthetic: n_duplicates, n_noise and n_traps must be non-negative, got "
            f"{n_duplicates}, {n_noise} and {n_traps}."
        )
    if n_traps > n_noise:
        raise ValueError(
            f"make_synthetic: traps are noise columns, so n_traps ({n_traps}) cannot exceed "
            f"n_noise ({n_noise}); raise n_noise."
        )
    if vocab_size < 2:
        raise ValueError(f"make_synthetic: vocab_size must be at least 2, got {vocab_size}.")
    if not 1 <= max_valency <= vocab_size:
        raise ValueError(
            f"make_synthetic: max_valency must be in [1, vocab_size={vocab_size}], got {max_valency}."
        )
    if not 0.0 <= noisy_duplicate_rate <= 1.0:
        raise ValueError(
            f"make_synthetic: noisy_duplicate_rate must be in [0, 1], got {noisy_duplicate_rate}."
        )
    if signal_strength < 0:
        raise ValueError(f"make_synthetic: signal_strength must be >= 0, got {signal_strength}.")


def _kind_mix(n: int) -> list[str]:
    """~1/2 categorical, ~1/4 numeric, ~1/4 multi-hot, interleaved.

    Interleaving (cat, num, multi, cat, num, multi, cat, ...) means duplicates, which
    cycle through the informative features and alternate exact / noisy, cover every
    kind in both flavours with the defaults.
    """
    if n == 0:
        return []
    if n < 3:
        return ["categorical", "numeric"][:n]
    n_num = max(1, round(n / 4))
    n_multi = max(1, round(n / 4))
    left = {"categorical": n - n_num - n_multi, "numeric": n_num, "multi_categorical": n_multi}
    out: list[str] = []
    while len(out) < n:
        for kind in ("categorical", "numeric", "multi_categorical"):
            if left[kind]:
                out.append(kind)
                left[kind] -= 1
    return out


def _zipf_probs(size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** _ZIPF_EXPONENT
    return weights / weights.sum()


@dataclasses.dataclass
class _Column:
    """Raw codes of one column, before they are rendered to strings / lists.

    ``codes`` holds int codes (categorical), an ``(n, max_valency)`` code matrix
    (multi-hot, of which the first ``lengths[i]`` are used) or standard-normal floats
    (numeric).
    """

    kind: str
    codes: np.ndarray
    lengths: np.ndarray | None = None


def _draw(kind: str, n: int, rng: np.random.Generator, vocab: int, max_valency: int) -> _Column:
    probs = _zipf_probs(vocab)
    if kind == "categorical":
        return _Column(kind, rng.choice(vocab, size=n, p=probs))
    if kind == "numeric":
        return _Column(kind, rng.standard_normal(n))
    # Weighted sampling without replacement, vectorised: the k smallest Exp(1) / p keys
    # are k distinct tokens drawn by popularity (equivalent to Gumbel top-k).
    keys = rng.standard_exponential((n, vocab), dtype=np.float32) / probs.astype(np.float32)
    top = np.argpartition(keys, max_valency - 1, axis=1)[:, :max_valency]
    order = np.argsort(np.take_along_axis(keys, top, axis=1), axis=1)
    codes = np.take_along_axis(top, order, axis=1)
    lengths = rng.integers(1, max_valency + 1, size=n)
    return _Column(kind, codes, lengths)


def _effect(col: _Column, rng: np.random.Generator, vocab: int) -> np.ndarray:
    """A standardised (mean 0, sd 1 on this sample) nonlinear effect of one column."""
    if col.kind == "categorical":
        raw = rng.standard_normal(vocab)[col.codes]
    elif col.kind == "numeric":
        freq, threshold = rng.uniform(1.5, 2.5), rng.uniform(-0.5, 0.5)
        raw = np.sin(freq * col.codes) + 1.5 * (col.codes > threshold)
    else:
        token_effect = rng.standard_normal(vocab)[col.codes]
        mask = np.arange(col.codes.shape[1]) < col.lengths[:, None]
        raw = (token_effect * mask).sum(axis=1) / col.lengths
    return (raw - raw.mean()) / max(raw.std(), 1e-12)


def _noisy_copy(
    col: _Column, rate: float, rng: np.random.Generator, vocab: int, max_valency: int
) -> _Column:
    """Copies ``col`` with a ``rate`` fraction of rows redrawn from the same distribution."""
    n = col.codes.shape[0]
    fresh = _draw(col.kind, n, rng, vocab, max_valency)
    resample = rng.random(n) < rate
    codes = col.codes.copy()
    codes[resample] = fresh.codes[resample]
    lengths = None
    if col.lengths is not None:
        lengths = col.lengths.copy()
        lengths[resample] = fresh.lengths[resample]
    return _Column(col.kind, codes, lengths)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pauses the cyclic GC: building millions of small lists triggers it over and over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _render(col: _Column, name: str, rng: np.random.Generator, vocab: int) -> np.ndarray:
    """Turns codes into column values, relabelled by a random bijection.

    Every column gets its own value names (``f07_12``) and a random code permutation,
    and every numeric column its own affine map, so a duplicate is a relabelling of its
    source rather than the same values. Numerics lie on a 1/512 grid and the map uses a
    power-of-two scale, so it stays exactly invertible in float32.
    """
    if col.kind == "numeric":
        scale = float(rng.choice([0.5, 1.0, 2.0, 4.0]))
        loc = float(np.round(rng.uniform(-5, 5) * 4) / 4)
        grid = np.round(col.codes * _NUMERIC_GRID) / _NUMERIC_GRID
        return (loc + scale * grid).astype(np.float32)
    perm = rng.permutation(vocab)
    labels = np.array([f"{name}_{k}" for k in range(vocab)], dtype=object)[perm]
    if col.kind == "categorical":
        return labels[col.codes]
    out = np.empty(col.codes.shape[0], dtype=object)
    with _gc_paused():
        rows = labels[col.codes].tolist()  # one tolist call: per-row numpy slicing is slow
        out[:] = [row[:k] for row, k in zip(rows, col.lengths.tolist(), strict=True)]
    return out


def make_synthetic(
    n_rows: int = 20_000,
    n_informative: int = 8,
    n_duplicates: int = 6,
    n_noise: int = 20,
    n_traps: int = 2,
    vocab_size: int = 50,
    max_valency: int = 5,
    noisy_duplicate_rate: float = 0.1,
    signal_strength: float = 1.0,
    seed: int = 0,
    concept_seed: int | None = None,
) -> SyntheticData:
    """Draws a labelled table whose informative, duplicate and noise columns are known.

    The label is Bernoulli(sigmoid(bias + signal_strength * 0.8 * sum of effects)),
    one standardised effect per informative feature: random per-value effects for a
    categorical, a sine-plus-threshold function for a numeric, and the mean of random
    per-token effects for a multi-hot list. The bias puts the positive rate near 0.4.

    Column kinds: categoricals are ``str`` (object dtype), numerics ``float32``,
    multi-hot cells Python lists of 1..``max_valency`` distinct ``str`` tokens. Values
    follow a Zipf-like popularity over ``vocab_size`` values. Half the duplicates
    (the first, third, ...) are exact copies under a bijective relabelling (value
    names permuted, numerics mapped by ``scale * x + loc``); the others also have a
    ``noisy_duplicate_rate`` fraction of rows redrawn. Traps are categorical noise
    columns with about ``n_rows / 3`` distinct values, three rows each.

    Args:
        n_rows: Number of rows.
        n_informative: Columns that drive the label.
        n_duplicates: Copies of informative columns (cycling through them).
        n_noise: Columns independent of the label, traps included.
        n_traps: How many of the noise columns are high-cardinality IDs.
        vocab_size: Distinct values of each categorical and multi-hot column.
        max_valency: Most tokens in a multi-hot cell.
        noisy_duplicate_rate: Fraction of rows redrawn in a noisy duplicate.
        signal_strength: Multiplies every informative effect (0 gives a label that is
            independent of all columns).
        seed: Seed of the numpy Generator; the output is a function of the arguments.
        concept_seed: Seed of the *concept* alone: the column names and roles, the
            kinds, every effect, and the value names and numeric maps. With it, ``seed``
            draws only the rows (values, noisy copies, traps and labels), so chunks with
            one ``concept_seed`` and their own ``seed`` are fresh rows of one problem, as
            shards of one data set are. None (the default) draws both from ``seed``, as
            before (the outputs for a given ``seed`` are unchanged).

    Returns:
        The table and the roles of its columns.

    Raises:
        ValueError: An argument is out of range (the message names it).

    Example:
        >>> data = make_synthetic(n_rows=2_000, n_informative=4, n_noise=6, seed=3)
        >>> data.groups()  # {'f03': ['f03', 'f09'], ...}
        >>> shards = [make_synthetic(n_rows=1_000, seed=s, concept_seed=7) for s in (1, 2)]
        >>> shards[0].informative == shards[1].informative  # one concept, new rows
        True
    """
    _check_args(
        n_rows,
        n_informative,
        n_duplicates,
        n_noise,
        n_traps,
        vocab_size,
        max_valency,
        noisy_duplicate_rate,
        signal_strength,
    )
    rng = np.random.default_rng(seed)
    # Without a concept seed one generator draws everything, in the order it always did
    # (so existing seeds keep their data); with one, the concept's draws never depend
    # on n_rows or on the row seed (each is a fixed number of draws per column).
    concept = rng if concept_seed is None else np.random.default_rng(concept_seed)
    n_cols = n_informative + n_duplicates + n_noise
    width = max(2, len(str(n_cols - 1)))
    names = [f"f{i:0{width}d}" for i in concept.permutation(n_cols)]
    inf_names = names[:n_informative]
    dup_names = names[n_informative : n_informative + n_duplicates]
    noise_names = names[n_informative + n_duplicates :]
    trap_names = noise_names[:n_traps]

    values: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    logit = np.zeros(n_rows)
    inf_cols: list[_Column] = []
    for name, kind in zip(inf_names, _kind_mix(n_informative), strict=True):
        col = _draw(kind, n_rows, rng, vocab_size, max_valency)
        logit += _effect(col, concept, vocab_size)
        values[name] = _render(col, name, concept, vocab_size)
        kinds[name] = kind
        inf_cols.append(col)

    duplicates: dict[str, str] = {}
    exact: list[str] = []
    for i, name in enumerate(dup_names):
        source = inf_cols[i % n_informative]
        if i % 2 == 0:
            col = source
            exact.append(name)
        else:
            col = _noisy_copy(source, noisy_duplicate_rate, rng, vocab_size, max_valency)
        values[name] = _render(col, name, concept, vocab_size)
        kinds[name] = source.kind
        duplicates[name] = inf_names[i % n_informative]

    for name in trap_names:
        ids = rng.permutation(n_rows) // 3
        values[name] = np.array([f"{name}_{k}" for k in range(ids.max() + 1)], dtype=object)[ids]
        kinds[name] = "categorical"
    for name, kind in zip(noise_names[n_traps:], _kind_mix(n_noise - n_traps), strict=True):
        col = _draw(kind, n_rows, rng, vocab_size, max_valency)
        values[name] = _render(col, name, concept, vocab_size)
        kinds[name] = kind

    logit *= signal_strength * _EFFECT_SCALE
    prob = 1.0 / (1.0 + np.exp(-(logit + solve_bias(logit, _TARGET_POSITIVE_RATE))))
    label = (rng.random(n_rows) < prob).astype(np.int64)

    frame = pd.DataFrame({name: values[name] for name in sorted(values)})
    frame["label"] = label
    return SyntheticData(
        frame=frame,
        label="label",
        informative=inf_names,
        duplicates=duplicates,
        noise=noise_names,
        traps=trap_names,
        exact_duplicates=exact,
        kinds={name: kinds[name] for name in sorted(kinds)},
    )


def solve_bias(logit: np.ndarray, rate: float) -> float:
    """The bias b with mean(sigmoid(logit + b)) == rate, by bisection (monotone in b)."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(logit + mid)))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
