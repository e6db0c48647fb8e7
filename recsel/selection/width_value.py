"""Held-out value of embedding chunks: does a width earn its keep on rows not trained on?

``select()`` decides widths with it after a round's chunk phase (issue 15). A chunk's
value is the validation log-loss increase when its columns are replaced by their mean
(all other selected chunks kept): what a narrower table would lose. Energy at the first
layer (``recsel.widths.chunk_values``) is fitted on training rows, so it counts the noise
that rows seen a few times carry as value: on planted-width data (seed 0) a width-1
additive table's second direction outweighed a rank-8 table's, and Spearman(chosen,
needed width) was 0.63. Ablated on held-out rows, a direction that only fits noise is
worth ~0.

``drop_idle_chunks`` then keeps a chunk when its value is ``significance`` standard
errors above zero. (Ablating a feature's tail of chunks jointly instead, and keeping the
shortest prefix whose tail is not significant, kept about as many columns and ranked the
planted tables worse: Spearman 0.84 and 0.87 on seeds 0-2 and 3-5, against 0.88 and 0.88.
A lower ``significance`` keeps more columns but does not rank or pay better: on planted
seeds 0 and 3 (200k rows), significance 2 / 1 / 0 gave Spearman 0.81 / 0.77 / 0.78 and
0.92 / 0.63 / 0.54, and recsel minus PEP at equal parameters -0.001 / +0.000 / +0.023 and
+0.000 / +0.001 / -0.002 AUC: seed 0's gain at 0 did not hold on seed 3.)

Judging the dropped chunks *together* was also tried and removed (rules "joint": drop a
feature's least valuable chunks while their joint ablation rise stays within 2 SE, and
"tail": the same, but only among chunks not significant alone; code at c96cbc4 / f758d75,
data and script in benchmarks/results/issue15_probes/compare_rules*, planted seeds 0-5,
MovieLens and Adult seeds 0-2, 2026-12-02, load 5-8). Neither paid: on planted seed 3,
where recsel trails full width most, the rank-32 tables' chunk phase had selected 8 of 16
chunks, 6 significant alone and the other 2 not significant together either (t 0.7 / -1.1
and 1.5 / 1.2), so the widths are set by what the one-pass selection model learned, not by
judging chunks alone. "joint" was stingier (planted 0.8425 vs 0.8472, recsel - PEP -0.0033
vs +0.0042, Spearman 0.884 vs 0.891); "tail" chose the same widths on 5 of 6 planted seeds
and every MovieLens and Adult seed, and on planted seed 1 kept one more column and scored
0.8550 against 0.8625. Neither moved planted seeds 3-5 (recsel - full width -0.0143 under
the per-chunk rule and "tail", -0.0214 under "joint").

Example:
    >>> mean, se = ablation_values(trainer.model, sample, "clicked", 8)
    >>> kept = drop_idle_chunks(layer.selected_chunks(), mean, se, 2.0)
"""

from __future__ import annotations

import numpy as np

from recsel.selection.widths import keep_chunks

# Validation rows a widths-only run ablates on (``select`` draws them; feature runs use
# ``explain.SAMPLE_ROWS``, 5000). A wide table's principal-axis tail chunks are each worth
# little, so 5000 rows could not tell them from noise. On planted seeds 0 and 3 (200k rows,
# all 32000 validation rows against 5000) the rank-32 tables kept 7/6 and 6/6 columns, not
# 5/4 and 4/4, and recsel - PEP at equal parameters was +0.011 and +0.004 AUC, not -0.001
# and +0.000.
SAMPLE_ROWS = 32_000
# Rows per block of the numpy ablation (``_ablate``): small enough to stay in cache.
ABLATE_BLOCK_ROWS = 1024


def drop_idle_chunks(
    selected: dict[str, list[int]],
    mean: dict[str, np.ndarray],
    se: dict[str, np.ndarray],
    significance: float,
) -> dict[str, list[int]]:
    """Drops selected chunks whose held-out value is not ``significance`` standard errors
    above zero (``ablation_values``).

    Each feature keeps its most valuable selected chunk whatever its value: dropping a
    feature is the feature gates' decision, not the widths'.

    Args:
        selected: Per feature, its selected chunk positions.
        mean: Per feature, the mean loss increase of ablating each chunk.
        se: Per feature, that increase's standard error.
        significance: Standard errors a chunk's value must exceed (0: keep positive ones).

    Returns:
        Per feature, the chunk positions kept (in the given order).

    Example:
        >>> drop_idle_chunks({"a": [0, 1]}, {"a": np.array([0.05, 1e-4])},
        ...                  {"a": np.array([0.01, 1e-3])}, 2.0)
        {'a': [0]}
    """
    return keep_chunks(
        selected, mean, lambda name, c: mean[name][c] > max(significance * se[name][c], 0.0)
    )


def _log_loss_rows(model, embedded: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row log loss of the ranker's tower on an embedding matrix."""
    from recsel.selection.explain import _head

    logits = _head(model, embedded).numpy()[:, 0].astype(np.float64)
    # log(1 + e^-z) for positives, log(1 + e^z) for negatives, without overflow.
    return np.logaddexp(0.0, np.where(labels > 0.5, -logits, logits))


def _embedded(model, sample, rows: int = 8192) -> np.ndarray:
    """The layer's output on ``sample`` as the pruned model sees it: selected chunks only."""
    from recsel.inputs.frame_dataset import numpy_blocks

    layer = model.embedding
    with layer.hard_gates():
        return np.concatenate(
            [layer(b, training=False).numpy() for b in numpy_blocks(sample, layer.features, rows)]
        )


def _dense_stack(model) -> list[tuple[np.ndarray, np.ndarray, bool]] | None:
    """``(kernel, bias, relu)`` per layer of a Ranker-layout tower, or None for others."""
    import tf_keras

    if getattr(model, "custom_tower", None) is not None or model.logit is None:
        return None
    stack = []
    for layer in [*model.tower, model.logit]:
        relu = layer.activation is tf_keras.activations.relu
        if not relu and layer.activation is not tf_keras.activations.linear:
            return None
        stack.append((layer.kernel.numpy().astype(np.float64), layer.bias.numpy(), relu))
    return stack


def _rows_loss_after_first(stack, hidden: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row log loss from the first layer's pre-activation ``hidden`` onwards."""
    x = hidden
    for i, (kernel, bias, relu) in enumerate(stack):
        if i:
            x = x @ kernel + bias
        if relu:
            x = np.maximum(x, 0.0)
    logits = x[:, 0]
    return np.logaddexp(0.0, np.where(labels > 0.5, -logits, logits))


def _ablate(
    model,
    embedded: np.ndarray,
    labels: np.ndarray,
    jobs: list[np.ndarray],
    max_floats: int,
    shortcut: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the per-row loss increase when each job's columns are
    replaced by their mean.

    A Ranker-layout tower (Dense layers) is evaluated in numpy from the first layer's
    pre-activation, which an ablation changes by a rank-``len(cols)`` term: one
    ``rows x width`` product is shared by all jobs. Other towers score the ablated
    copies in a few large calls.
    """
    rows = embedded.shape[0]
    means = embedded.mean(axis=0)
    mean, se = np.zeros(len(jobs)), np.zeros(len(jobs))
    stack = _dense_stack(model) if shortcut else None

    def record(j: int, delta: np.ndarray) -> None:
        mean[j] = delta.mean()
        se[j] = delta.std(ddof=1) / np.sqrt(rows) if rows > 1 else np.inf

    if stack is not None:
        deltas = np.empty((len(jobs), rows))
        kernel, bias = stack[0][0], stack[0][1]
        # Blocks of rows keep each job's [block, units] temporaries in cache: on planted
        # widths (32,000 rows, 48 one-column jobs) 0.7 s CPU instead of 2.1 s. Every row is
        # computed as over all rows at once, so the values agree to rounding (BLAS may
        # pick another kernel for another row count); the block size is a constant.
        for lo in range(0, rows, ABLATE_BLOCK_ROWS):
            x = embedded[lo : lo + ABLATE_BLOCK_ROWS].astype(np.float64)
            block_labels = labels[lo : lo + ABLATE_BLOCK_ROWS]
            first = x @ kernel + bias
            base = _rows_loss_after_first(stack, first, block_labels)
            for j, cols in enumerate(jobs):
                shifted = first + (means[cols] - x[:, cols]) @ kernel[cols]
                loss = _rows_loss_after_first(stack, shifted, block_labels)
                deltas[j, lo : lo + ABLATE_BLOCK_ROWS] = loss - base
        for j in range(len(jobs)):
            record(j, deltas[j])
        return mean, se
    base = _log_loss_rows(model, embedded, labels)
    per_call = max(1, max_floats // max(1, embedded.size))
    for start in range(0, len(jobs), per_call):
        group = jobs[start : start + per_call]
        ablated = np.tile(embedded, (len(group), 1))
        for j, cols in enumerate(group):
            ablated[j * rows : (j + 1) * rows, cols] = means[cols]
        losses = _log_loss_rows(model, ablated, np.tile(labels, len(group)))
        for j in range(len(group)):
            record(start + j, losses[j * rows : (j + 1) * rows] - base)
    return mean, se


def _chunk_columns(layer, name: str, chunk: int, chunk_size: int) -> np.ndarray:
    return layer.output_columns_of(name)[chunk * chunk_size : (chunk + 1) * chunk_size]


def ablation_values(
    model,
    sample,
    label: str,
    chunk_size: int,
    max_floats: int = 8_000_000,
    shortcut: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Held-out value of every selected chunk, ablated one at a time.

    Args:
        model: A ``Ranker`` around a ``SequentialAttentionEmbedding`` (any tower).
        sample: Cleaned validation rows (``recsel._explain.validation_sample``).
        label: Label column of ``sample``.
        chunk_size: Columns per chunk.
        max_floats: Largest ablated batch (rows x columns) scored in one tower call.
        shortcut: Evaluate a Dense tower in numpy from its first layer (same values,
            several times faster); False always calls the tower.

    Returns:
        ``(mean, standard_error)``: per selected feature, per chunk of its full width, the
        mean per-row loss increase and its standard error (NaN for unselected chunks).

    Example:
        >>> mean, se = ablation_values(trainer.model, sample, "clicked", 8)
        >>> keep = mean["user_id"] > 2 * se["user_id"]
    """
    labels = sample[label].to_numpy(np.float64)
    layer = model.embedding
    embedded = _embedded(model, sample)
    jobs = [(n, c) for n, chunks in layer.selected_chunks().items() for c in chunks]
    columns = [_chunk_columns(layer, n, c, chunk_size) for n, c in jobs]
    values, errors = _ablate(model, embedded, labels, columns, max_floats, shortcut)
    mean, se = {}, {}
    for name in layer.selected_chunks():
        n_chunks = -(-layer.features[name].embedding_dim // chunk_size)
        mean[name], se[name] = np.full(n_chunks, np.nan), np.full(n_chunks, np.nan)
    for (name, c), value, error in zip(jobs, values, errors):
        mean[name][c], se[name][c] = value, error
    return mean, se
