"""Paired AUC differences with DeLong's variance, for masked evaluations.

A round's new feature is judged by the validation AUC it adds on the trained model
(the model with it minus the model with it masked off). Both scores come from the same
rows, so their difference has a far smaller error than either AUC; DeLong's structural
components (DeLong, DeLong and Clarke-Pearson, 1988; the O(n log n) form of Sun and Xu,
2014) give that error without resampling.

Example:
    >>> gain, se = paired_auc_gain(labels, with_feature, without_feature)
    >>> gain > 2 * se   # the feature adds more than validation noise
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _components(
    positives: np.ndarray, negatives: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and its structural components (one per positive, one per negative)."""
    m, n = len(positives), len(negatives)
    within_pos = rankdata(positives)
    within_neg = rankdata(negatives)
    overall = rankdata(np.concatenate([positives, negatives]))
    auc = (overall[:m].sum() - m * (m + 1) / 2) / (m * n)
    v_pos = (overall[:m] - within_pos) / n  # share of negatives each positive outranks
    v_neg = 1.0 - (overall[m:] - within_neg) / m  # share of positives outranking each negative
    return float(auc), v_pos, v_neg


def paired_auc_gain(
    labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray
) -> tuple[float, float]:
    """AUC of ``scores_a`` minus AUC of ``scores_b`` on the same rows, and its standard error.

    Args:
        labels: 0/1 labels, one per row.
        scores_a: Scores (logits or probabilities) of the first model.
        scores_b: Scores of the second model on the same rows.

    Returns:
        ``(difference, standard_error)``; the error is 0 when it cannot be estimated
        (fewer than two rows of a class).

    Raises:
        ValueError: The label has a single class, or the arrays differ in length.

    Example:
        >>> paired_auc_gain(np.array([0, 1, 0, 1]), np.array([.1, .9, .2, .8]), np.zeros(4))
        (0.5, 0.0...)
    """
    labels = np.asarray(labels).astype(bool)
    a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    if not (len(labels) == len(a) == len(b)):
        raise ValueError(f"Lengths differ: {len(labels)} labels, {len(a)} and {len(b)} scores.")
    m, n = int(labels.sum()), int((~labels).sum())
    if m == 0 or n == 0:
        raise ValueError("The labels have a single class; an AUC difference is undefined.")
    auc_a, pos_a, neg_a = _components(a[labels], a[~labels])
    auc_b, pos_b, neg_b = _components(b[labels], b[~labels])
    if m < 2 or n < 2:
        return auc_a - auc_b, 0.0
    # Var(A - B) = Var(A) + Var(B) - 2 Cov(A, B), each from the two sets of components.
    variance = (np.var(pos_a - pos_b, ddof=1) / m) + (np.var(neg_a - neg_b, ddof=1) / n)
    return auc_a - auc_b, float(np.sqrt(max(variance, 0.0)))
