"""DeLong's paired AUC difference (recsel.selection._delong), used by the budget's masked check."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from recsel.selection._delong import paired_auc_gain


def _scores(seed: int, rows: int = 3000):
    rng = np.random.default_rng(seed)
    labels = rng.random(rows) < 0.25
    base = rng.normal(size=rows) + 0.8 * labels
    better = base + 0.6 * labels * rng.random(rows)  # a model that adds some signal
    return labels, better, base


def test_difference_matches_sklearn_and_error_matches_the_bootstrap():
    labels, better, base = _scores(0)
    gain, error = paired_auc_gain(labels, better, base)
    assert gain == pytest.approx(roc_auc_score(labels, better) - roc_auc_score(labels, base))
    rng = np.random.default_rng(1)
    boot = []
    for _ in range(300):
        rows = rng.integers(0, len(labels), len(labels))
        boot.append(
            roc_auc_score(labels[rows], better[rows]) - roc_auc_score(labels[rows], base[rows])
        )
    assert error == pytest.approx(np.std(boot), rel=0.2)
    # Paired: far smaller than the error of either AUC alone (~0.01 at these rows).
    assert error < 0.5 * np.std(
        [
            roc_auc_score(labels[r], base[r])
            for r in (rng.integers(0, len(labels), len(labels)) for _ in range(100))
        ]
    )


def test_identical_scores_have_no_difference_and_no_error():
    labels, _, base = _scores(2)
    assert paired_auc_gain(labels, base, base) == (0.0, 0.0)


def test_ties_count_half():
    labels = np.array([0, 1, 0, 1])
    gain, _ = paired_auc_gain(labels, np.array([0.1, 0.9, 0.2, 0.8]), np.zeros(4))
    assert gain == pytest.approx(0.5)  # 1.0 against the all-tied 0.5


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="single class"):
        paired_auc_gain(np.ones(5), np.arange(5.0), np.arange(5.0))
    with pytest.raises(ValueError, match="Lengths differ"):
        paired_auc_gain(np.array([0, 1]), np.arange(3.0), np.arange(2.0))
