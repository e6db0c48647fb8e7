"""Adversarial data for feature selection: memorisable IDs, copies and rare positives.

``make_adversarial`` is built to break a selector rather than to look like a real log,
and it differs from ``make_synthetic`` on purpose: one informative *group* per signal
(the source column plus exact and noisy copies), several ID-like noise columns with
1k-10k values (a handful of rows each, the shape that memorisation exploits), signal
carried by additive per-value tables and by numeric shapes (threshold, bump), and an
optional rare-positive variant (2-3% positives, as click logs are). Column names
(``c00``, ``c01``, ...) are assigned to roles at random; ``AdversarialData`` records the
roles so tests and benchmarks can score a selection (``score_selection``).

Example:
    >>> data = make_adversarial(n_rows=20_000, seed=3)
    >>> score = data.score_selection(["c04", "c11"])
    >>> score["recovered"], score["id_like"]
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from recsel.data.synthetic import solve_bias

VARIANTS = ("balanced", "rare")
_POSITIVE_RATE = {"balanced": 0.3, "rare": 0.025}
# Logit scale per informative group. The rare variant has fewer positives, so each
# signal is made stronger to stay detectable at 20k rows (~500 positives).
_EFFECT = {"balanced": 0.9, "rare": 1.2}
# Distinct values of the ID-like noise columns: the range (1k-10k).
_ID_VOCABS = (1_000, 4_000, 10_000)


@dataclasses.dataclass
class AdversarialData:
    """An adversarial table and the roles of its columns.

    Args:
        frame: Candidate columns sorted by name, then the int64 label column.
        label: Label column name.
        groups: Informative source column -> ``[source, *copies]`` (one signal each).
        exact_copies: Copy -> source, exact under a bijective relabelling.
        noisy_copies: Copy -> source, with a share of rows redrawn.
        id_like: High-cardinality noise columns (1k-10k values).
        noise: Low-cardinality noise columns.
        categorical: Columns that are categorical (strings); the rest are numeric.
        variant: ``balanced`` or ``rare``.
    """

    frame: pd.DataFrame
    label: str
    groups: dict[str, list[str]]
    exact_copies: dict[str, str]
    noisy_copies: dict[str, str]
    id_like: list[str]
    noise: list[str]
    categorical: list[str]
    variant: str

    def score_selection(self, selected: list[str]) -> dict:
        """Scores a selection against the ground truth.

        Args:
            selected: Kept column names.

        Returns:
            ``recovered`` (groups with at least one kept member), ``groups``, ``missed``
            (group sources), ``copies`` (kept columns beyond one per group),
            ``id_like`` and ``noise`` (kept traps), and ``clean`` (all groups, no copy,
            no ID-like and no noise column).

        Example:
            >>> data.score_selection(data.sources())["clean"]
            True
        """
        kept = set(selected)
        member = {c: g for g, cols in self.groups.items() for c in cols}
        hits: dict[str, list[str]] = {}
        for name in selected:
            if name in member:
                hits.setdefault(member[name], []).append(name)
        copies = sorted(c for cols in hits.values() for c in cols[1:])
        id_like = sorted(kept & set(self.id_like))
        noise = sorted(kept & set(self.noise))
        missed = sorted(set(self.groups) - set(hits))
        return {
            "recovered": len(hits),
            "groups": len(self.groups),
            "missed": missed,
            "copies": copies,
            "id_like": id_like,
            "noise": noise,
            "clean": not missed and not copies and not id_like and not noise,
        }

    def sources(self) -> list[str]:
        """The informative source columns (one per group)."""
        return list(self.groups)


def _standardise(effect: np.ndarray) -> np.ndarray:
    return (effect - effect.mean()) / max(effect.std(), 1e-9)


def _categorical(rng: np.random.Generator, n: int, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes with a mild popularity skew, and their standardised per-value effect."""
    popularity = 1.0 / np.arange(1, vocab + 1) ** 0.5
    codes = rng.choice(vocab, size=n, p=popularity / popularity.sum())
    return codes, _standardise(rng.normal(size=vocab)[codes])


def _numeric(rng: np.random.Generator, n: int, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """A numeric column and a standardised non-linear effect of it."""
    # On a 1/512 grid, so a copy's 3x - 2 is exact in float32 (a true bijection).
    x = np.round(rng.normal(size=n) * 512) / 512
    effect = (x > 0.3).astype(float) if shape == "threshold" else np.exp(-((x - 0.5) ** 2))
    return x, _standardise(effect)


def make_adversarial(
    n_rows: int = 20_000,
    variant: str = "balanced",
    n_categorical: int = 4,
    n_numeric: int = 2,
    n_noise: int = 4,
    id_vocab_sizes: tuple[int, ...] = _ID_VOCABS,
    noisy_copy_rate: float = 0.15,
    seed: int = 0,
) -> AdversarialData:
    """Draws an adversarial table whose groups, copies and ID-like columns are known.

    Every informative group is one source column with a standardised effect on the
    label logit (scaled by 0.9, or 1.2 in the ``rare`` variant). Categorical sources
    have 8-200 values; numeric ones act through a threshold or a bump. The first and
    second groups each get an exact copy (values renamed bijectively, or ``3x - 2`` for
    a numeric), the third a noisy copy with ``noisy_copy_rate`` of its rows redrawn.
    ID-like columns are uniform over ``id_vocab_sizes`` values (strings) and carry no
    signal; at 20k rows a 10k-value column has two rows per value, which a model can
    memorise once examples repeat. ``balanced`` puts the positive rate near 30%,
    ``rare`` near 2.5%.

    Args:
        n_rows: Rows (the issue's range is 10k-50k).
        variant: ``balanced`` or ``rare``.
        n_categorical: Informative categorical groups.
        n_numeric: Informative numeric groups.
        n_noise: Low-cardinality noise columns (half categorical, half numeric).
        id_vocab_sizes: Distinct values of each ID-like noise column.
        noisy_copy_rate: Share of rows redrawn in the noisy copy.
        seed: Seed of the numpy Generator; the output is a function of the arguments.

    Returns:
        The table and its ground truth.

    Raises:
        ValueError: An argument is out of range (the message names it).

    Example:
        >>> data = make_adversarial(n_rows=10_000, variant="rare", seed=1)
        >>> data.frame["label"].mean()  # about 0.025
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    if n_rows < 1_000:
        raise ValueError(f"n_rows must be at least 1000, got {n_rows}.")
    if n_categorical < 1 or n_numeric < 0 or n_categorical + n_numeric < 3 or n_noise < 0:
        raise ValueError(
            "Need n_categorical >= 1, n_numeric >= 0, at least 3 informative groups (the "
            f"copies need three sources) and n_noise >= 0; got {n_categorical}, {n_numeric}, "
            f"{n_noise}."
        )
    if any(v < 2 for v in id_vocab_sizes) or not 0 < noisy_copy_rate < 1:
        raise ValueError("id_vocab_sizes must be >= 2 and noisy_copy_rate in (0, 1).")
    rng = np.random.default_rng(seed)
    n_groups = n_categorical + n_numeric
    n_cols = n_groups + 3 + len(id_vocab_sizes) + n_noise
    names = [f"c{i:02d}" for i in rng.permutation(n_cols)]
    sources, rest = names[:n_groups], names[n_groups:]
    copy_names, rest = rest[:3], rest[3:]
    id_names, noise_names = rest[: len(id_vocab_sizes)], rest[len(id_vocab_sizes) :]

    columns: dict[str, np.ndarray] = {}
    categorical: list[str] = []
    logit = np.zeros(n_rows)
    raw: dict[str, np.ndarray] = {}
    cat_vocabs = rng.choice([8, 20, 60, 200], size=n_categorical)
    for i, name in enumerate(sources):
        if i < n_categorical:
            codes, effect = _categorical(rng, n_rows, int(cat_vocabs[i]))
            raw[name] = codes
            columns[name] = np.array([f"v{c}" for c in range(codes.max() + 1)], object)[codes]
            categorical.append(name)
        else:
            x, effect = _numeric(rng, n_rows, ("threshold", "bump")[i % 2])
            raw[name] = x
            columns[name] = x.astype(np.float32)
        logit += _EFFECT[variant] * effect

    # Copies: groups 0 and 1 exact (one categorical, one numeric when there is one).
    copy_sources = [sources[0], sources[n_categorical] if n_numeric else sources[1], sources[2]]
    exact, noisy = {}, {}
    for index, (copy, source) in enumerate(zip(copy_names, copy_sources, strict=True)):
        values = raw[source]
        if index == 2:  # noisy: redraw a share of rows from the column's own marginal
            values = values.copy()
            redraw = rng.random(n_rows) < noisy_copy_rate
            values[redraw] = rng.permutation(values)[redraw]
            noisy[copy] = source
        else:
            exact[copy] = source
        if source in categorical:
            relabel = rng.permutation(int(raw[source].max()) + 1)
            columns[copy] = np.array([f"w{r}" for r in relabel], object)[values.astype(int)]
            categorical.append(copy)
        else:
            columns[copy] = (3.0 * values - 2.0).astype(np.float32)

    for name, vocab in zip(id_names, id_vocab_sizes, strict=True):
        ids = rng.integers(0, vocab, size=n_rows)
        columns[name] = np.array([f"id{k}" for k in range(vocab)], object)[ids]
        categorical.append(name)
    for i, name in enumerate(noise_names):
        if i % 2 == 0:
            codes, _ = _categorical(rng, n_rows, int(rng.choice([10, 50])))
            columns[name] = np.array([f"n{c}" for c in range(codes.max() + 1)], object)[codes]
            categorical.append(name)
        else:
            columns[name] = rng.normal(size=n_rows).astype(np.float32)

    bias = solve_bias(logit, _POSITIVE_RATE[variant])
    label = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-(logit + bias)))).astype(np.int64)
    frame = pd.DataFrame({name: columns[name] for name in sorted(columns)})
    frame["label"] = label
    groups = {s: [s] for s in sources}
    for copy, source in {**exact, **noisy}.items():
        groups[source].append(copy)
    return AdversarialData(
        frame=frame,
        label="label",
        groups=groups,
        exact_copies=exact,
        noisy_copies=noisy,
        id_like=id_names,
        noise=noise_names,
        categorical=sorted(categorical),
        variant=variant,
    )
