"""Width selection that sees what a table carries and what it costs (issue 15).

Two steps around the chunk phase of ``select()``:

* **Principal axes before the chunk phase.** A chunk is a fixed slice of columns, but a
  trained table spreads whatever it carries over all of its columns: an additive
  feature's one useful direction sits a little in every chunk, so every chunk looks
  useful and additive tables got the widest widths (planted-width data, seed 0:
  Spearman -0.73 between chosen and needed width). ``align_principal_axes`` rotates
  each newly selected table, and the matching rows of the tower's first Dense kernel,
  to the table's principal axes ordered by their contribution to the tower input.
  ``E W == (E R)(R^T W)`` for an orthogonal ``R``, and the ℓ2 penalty on rows is
  rotation invariant, so the model's function and loss do not change; but chunk 0 now
  holds the strongest directions and a rank-r table's value ends after r columns,
  which is what chunk attention can then see.
* **Memory budget on widths.** ``trim_to_memory_budget`` removes chunks, lowest value
  per byte first, where a chunk's bytes are ``rows x chunk_size x 4`` and its value is
  its held-out loss increase when ablated (``recsel.selection.width_value``). At equal value the
  biggest table's chunks cost the most bytes, so it shrinks first, and features are
  only lost when every kept table is at its minimum width (the budget controller then
  keeps fewer features).

Example:
    >>> align_principal_axes(trainer.model, ["user_id", "movie_id"])
    >>> widths = trim_to_memory_budget(widths, features, 2**20, values, 8, min_widths)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tf_keras

from recsel.model.tower import leading_dense
from recsel.spec.features import FeatureSet

DTYPE_BYTES = 4


def first_dense(model) -> tf_keras.layers.Dense | None:
    """The Dense layer that reads the embedding output, or None for other towers."""
    if getattr(model, "custom_tower", None) is not None:
        return leading_dense(model.custom_tower)
    return model.tower[0] if model.tower else model.logit


def _slot(optimizer, variable, kind: str):
    """Adam's first (``m``) or second (``v``) moment of ``variable``, or None if unbuilt."""
    slots = getattr(optimizer, "_momentums" if kind == "m" else "_velocities", None)
    index = getattr(optimizer, "_index_dict", {}).get(optimizer._var_key(variable))
    return None if slots is None or index is None else slots[index]


def principal_rotation(
    table: np.ndarray, row_weight: np.ndarray, kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Orthogonal ``R`` whose columns are the table's principal axes, strongest first.

    Directions are the right singular vectors of ``sqrt(w) E``; direction ``k`` adds
    ``s_k^2 ||R_k^T W||^2`` to ``||sqrt(w) E W||_F^2`` (exactly: the left singular vectors
    are orthonormal), so that is its contribution, and the order.

    Args:
        table: ``[rows, width]`` embedding table ``E``.
        row_weight: Non-negative weight per row (how much the data uses it).
        kernel: ``[width, units]`` rows of the first Dense kernel that read the table.

    Returns:
        ``(R, contribution)``: ``[width, width]`` rotation and per-direction contribution.

    Example:
        >>> R, c = principal_rotation(np.eye(3), np.ones(3), np.eye(3))
    """
    weighted = np.sqrt(np.maximum(row_weight, 0.0))[:, None] * table.astype(np.float64)
    # Only V is used. With rows >= width the reduced SVD gives the same (bitwise, on the
    # planted tables) square V without the rows x rows U: for a 2,931-row table that U
    # took most of 1.8 s per run. A table with fewer rows than columns needs the full V.
    rows, width = weighted.shape
    _, singular, vt = np.linalg.svd(weighted, full_matrices=rows < width)
    axes = vt.T  # [width, width]
    strength = np.zeros(axes.shape[1])
    strength[: singular.size] = singular**2
    contribution = strength * np.sum((axes.T @ kernel.astype(np.float64)) ** 2, axis=1)
    order = np.argsort(-contribution, kind="stable")
    return axes[:, order], contribution[order]


class _StackReader:
    """Reads each stacked table, and its Adam second moment, once per pass over features:
    a per-feature read would copy the whole stack once per feature."""

    def __init__(self, model):
        self.model = model
        self._tables: dict[int, np.ndarray] = {}
        self._usage: dict[int, np.ndarray | None] = {}

    def table(self, name: str) -> np.ndarray:
        stack, start, rows = _block(self.model, name)
        if id(stack) not in self._tables:
            self._tables[id(stack)] = stack.table.numpy()
        return self._tables[id(stack)][start : start + rows]

    def usage(self, name: str) -> np.ndarray:
        stack, start, rows = _block(self.model, name)
        if id(stack) not in self._usage:
            v = _slot(self.model.optimizer, stack.table, "v")
            self._usage[id(stack)] = None if v is None else v.numpy().mean(axis=1)
        usage = self._usage[id(stack)]
        return np.ones(rows) if usage is None else usage[start : start + rows].astype(np.float64)


def row_usage(model, name: str) -> np.ndarray:
    """Per-row usage weight of feature ``name``'s table: Adam's second moment, row mean.

    Adam decays every row's second moment each step and adds a looked-up row's squared
    gradient, so it grows with how often the data looks the row up; rows never looked
    up weigh 0. This weights rows by the data without another pass over it.

    Example:
        >>> row_usage(trainer.model, "user_id").shape  # (vocabulary_size,)
    """
    return _StackReader(model).usage(name)


def _block(model, name: str) -> tuple:
    """(stack, first row, rows) of feature ``name``'s block in its stacked table."""
    stack = model.embedding._stack_of[name]
    j = stack.names.index(name)
    return stack, int(stack.offsets[j]), stack.specs[j].vocabulary_size


def align_principal_axes(model, names: list[str]) -> dict[str, np.ndarray]:
    """Rotates each named feature's table (and kernel rows, and their Adam moments) to
    its principal axes, so its chunks hold its directions strongest first.

    The model's outputs are unchanged wherever the feature's columns share one gate
    (chunk gates are uniform before a chunk phase). A tower whose first layer is not a
    Dense reading the embedding cannot absorb the rotation: nothing is changed then.

    Args:
        model: A ``recsel.model.ranker.Ranker`` around a ``SequentialAttentionEmbedding``.
        names: Features to rotate.

    Returns:
        Per rotated feature, the contribution of each of its columns after rotation.

    Example:
        >>> align_principal_axes(trainer.model, trainer.layer.selected_features())
    """
    dense = first_dense(model)
    if dense is None or not names:
        return {}
    layer, optimizer = model.embedding, model.optimizer
    kernel = dense.kernel.numpy()
    reader = _StackReader(model)
    rotations, out = {}, {}
    for name in names:
        columns = layer.output_columns_of(name)
        rotations[name], out[name] = principal_rotation(
            reader.table(name), reader.usage(name), kernel[columns]
        )
    # m is linear in the gradient, so it rotates exactly; v (per-coordinate squared
    # gradients) goes to the squared-rotation mix, which keeps it positive.
    mixes = {"w": lambda r: r, "m": lambda r: r, "v": lambda r: r**2}
    for kind, mix in mixes.items():
        target = dense.kernel if kind == "w" else _slot(optimizer, dense.kernel, kind)
        if target is None:
            continue
        values = target.numpy()
        for name, rotation in rotations.items():
            columns = layer.output_columns_of(name)
            values[columns] = mix(rotation).T @ values[columns]
        target.assign(values)
    for stack in {id(_block(model, n)[0]): _block(model, n)[0] for n in names}.values():
        mine = [n for n in names if _block(model, n)[0] is stack]
        for kind, mix in mixes.items():
            target = stack.table if kind == "w" else _slot(optimizer, stack.table, kind)
            if target is None:
                continue
            values = target.numpy()  # one read and one write per stack and variable
            for name in mine:
                _, start, rows = _block(model, name)
                block = values[start : start + rows]
                values[start : start + rows] = block @ mix(rotations[name])
            target.assign(values)
    return out


def chunk_values(model, names: list[str], chunk_size: int) -> dict[str, np.ndarray]:
    """Energy of each chunk of the named features: its usage-weighted contribution to
    the tower's first layer, ``sum_rows w ||E[row, chunk] W[chunk]||^2``.

    Fitted on training rows, it counts noise as value, so widths are no longer chosen by
    it (``recsel.selection.width_value`` measures held-out value); it shows what the
    principal-axis rotation orders.

    Args:
        model: A ``Ranker`` around a ``SequentialAttentionEmbedding``.
        names: Features to measure.
        chunk_size: Columns per chunk.

    Returns:
        Per feature, one value per chunk (all ones for a tower that is not Dense-first:
        then only bytes decide).

    Example:
        >>> chunk_values(trainer.model, ["user_id"], 8)["user_id"]
    """
    dense = first_dense(model)
    full_kernel = dense.kernel.numpy() if dense is not None else None
    reader = _StackReader(model)
    out = {}
    for name in names:
        spec = model.embedding.features[name]
        n_chunks = -(-spec.embedding_dim // chunk_size)
        if dense is None:
            out[name] = np.ones(n_chunks)
            continue
        table = reader.table(name).astype(np.float64)
        kernel = full_kernel[model.embedding.output_columns_of(name)].astype(np.float64)
        weight = reader.usage(name)
        weight = weight / max(weight.sum(), 1e-30)
        values = []
        for c in range(n_chunks):
            cols = slice(c * chunk_size, (c + 1) * chunk_size)
            projected = table[:, cols] @ kernel[cols]
            values.append(float(np.sum(weight * np.sum(projected**2, axis=1))))
        out[name] = np.asarray(values)
    return out


def rank_selected_chunks(layer, ranked: dict[str, list[int]]) -> None:
    """Reorders the chunk selection so each feature's chunks in ``ranked`` come first,
    in that order: ``set_chunk_counts`` keeps a feature's *earliest* selected chunks, so
    a width cut then drops its least valuable ones, not its latest.

    Args:
        layer: The ``SequentialAttentionEmbedding``.
        ranked: Per feature, selected chunk positions (0-based within the feature), most
            valuable first; its other selected chunks follow them.

    Example:
        >>> rank_selected_chunks(layer, {"user_id": [2, 0]})
    """
    att = layer.chunk_attention
    order = att.selected_indices()
    queues = {}
    for name, chunks in ranked.items():
        ids = layer.chunks_of(name)
        first = [ids[c] for c in chunks]
        queues[name] = first + [g for g in order if g in ids and g not in first]
    owner = {g: n for n, q in queues.items() for g in q}
    att.set_selection([queues[owner[g]].pop(0) if g in owner else g for g in order])


# Feature-selection runs (chunks not rotated): a selected chunk holding under this share
# of all selected chunks' first-layer energy is idle. 0.3% is last session's measured
# default (``chunk_value_tolerance``), under which the TFX demo kept 8 of 8 groups.
ENERGY_TOLERANCE = 0.003


def drop_low_energy_chunks(
    selected: dict[str, list[int]], energy: dict[str, np.ndarray]
) -> dict[str, list[int]]:
    """Drops selected chunks under ``ENERGY_TOLERANCE`` of the total selected energy.

    Each feature keeps its most energetic selected chunk whatever its value: dropping a
    feature is the feature gates' decision, not the widths'.

    Args:
        selected: Per feature, its selected chunk positions.
        energy: Per feature, the first-layer energy of every chunk (``chunk_values``).

    Returns:
        Per feature, the chunk positions kept (in the given order).

    Example:
        >>> drop_low_energy_chunks({"a": [0, 1]}, {"a": np.array([1.0, 1e-6])})
        {'a': [0]}
    """
    total = sum(float(energy[n][c]) for n, chunks in selected.items() for c in chunks)
    return keep_chunks(
        selected, energy, lambda name, c: energy[name][c] >= ENERGY_TOLERANCE * total
    )


def keep_chunks(
    selected: dict[str, list[int]],
    value: dict[str, np.ndarray],
    passes: Callable[[str, int], bool],
) -> dict[str, list[int]]:
    """Per feature, its most valuable selected chunk and the others that ``passes``.

    The best chunk stays whatever its value: dropping a feature is the feature gates'
    decision, not the widths'. Both drop rules (energy share here, held-out significance
    in ``width_value.drop_idle_chunks``) decide through this.

    Args:
        selected: Per feature, its selected chunk positions.
        value: Per feature, a value per chunk (the best one is kept).
        passes: ``(feature, chunk) -> keep it``, for the other chunks.

    Returns:
        Per feature, the chunk positions kept (in the given order).

    Example:
        >>> keep_chunks({"a": [0, 1]}, {"a": np.array([2.0, 1.0])}, lambda n, c: False)
        {'a': [0]}
    """
    out = {}
    for name, chunks in selected.items():
        best = max(chunks, key=lambda c: value[name][c]) if chunks else None
        out[name] = [c for c in chunks if c == best or passes(name, c)]
    return out


def trim_to_memory_budget(
    widths: dict[str, int],
    features: FeatureSet,
    budget_bytes: float,
    values: dict[str, np.ndarray],
    chunk_size: int,
    min_widths: dict[str, int],
) -> dict[str, int]:
    """Cuts chunks off the widths until the tables fit ``budget_bytes``, lowest value per
    byte first (a chunk costs ``rows x chunk_size x 4`` bytes).

    A feature loses its last kept chunk each time (its chunks are ordered strongest
    first by ``align_principal_axes``), never going below ``min_widths``. When every
    feature is at its minimum and the tables still do not fit, the widths are returned
    as they are: then the selection holds too many features, which the budget
    controller handles by keeping an earlier round.

    Args:
        widths: Chosen width per kept feature (multiples of ``chunk_size``).
        features: The candidates (table rows).
        budget_bytes: Memory budget for all kept tables.
        values: Per feature, the values of its kept chunks (held-out, ``width_value``).
        chunk_size: Columns per chunk.
        min_widths: Smallest allowed width per feature.

    Returns:
        The trimmed widths.

    Example:
        >>> trim_to_memory_budget({"user": 32, "age": 16}, features, 4e5, values, 8,
        ...                       {"user": 8, "age": 8})
    """
    widths = dict(widths)

    def total() -> int:
        return sum(features[n].vocabulary_size * w * DTYPE_BYTES for n, w in widths.items())

    while total() > budget_bytes:
        best, best_ratio = None, None
        for name, width in widths.items():
            if width - chunk_size < min_widths[name]:
                continue
            # The weakest kept chunk goes first (values need not be in chunk order).
            ordered = sorted((float(v) for v in values.get(name, ())), reverse=True)
            chunk = width // chunk_size - 1
            value = ordered[chunk] if chunk < len(ordered) else 0.0
            cost = features[name].vocabulary_size * chunk_size * DTYPE_BYTES
            # Ties (e.g. zero value) go to the bigger table: it frees more bytes.
            ratio = (value / cost, -cost)
            if best is None or ratio < best_ratio:
                best, best_ratio = name, ratio
        if best is None:
            break
        widths[best] -= chunk_size
    return widths
