"""One definition of a copy: the budget's guard and the report's explanation agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsel.selection._redundancy import REDUNDANCY_THRESHOLD, CopyFinder, redundancy
from recsel.selection.explain import copy_score, dropped_reasons


def _pairs() -> dict[str, tuple[pd.Series, pd.Series]]:
    rng = np.random.default_rng(3)
    rows = 4000
    a = pd.Series(rng.integers(0, 12, rows))
    noisy = a.where(rng.random(rows) > 0.1, rng.integers(0, 12, rows)).map(lambda v: f"v{v}")
    # Two independent, mostly-one-value columns: each "predicts" the other on >85% of
    # rows (purity called them copies), yet knowing one removes no error on the other.
    skew_a = pd.Series(np.where(rng.random(rows) < 0.92, "x", rng.integers(0, 5, rows)))
    skew_b = pd.Series(np.where(rng.random(rows) < 0.92, 0, rng.integers(1, 9, rows)))
    tags = pd.Series([[f"t{v}", "all"] for v in a])
    return {"noisy": (a, noisy), "skewed": (skew_a, skew_b), "tags": (a, tags)}


@pytest.mark.parametrize("name", ["noisy", "skewed", "tags"])
def test_the_report_scores_every_pair_as_the_budget_guard_does(name):
    a, b = _pairs()[name]
    assert copy_score(a, b) == pytest.approx(redundancy(a, b))


def test_skewed_independent_columns_are_no_copy_and_a_noisy_relabelling_is():
    pairs = _pairs()
    assert redundancy(*pairs["skewed"]) < 0.1
    assert redundancy(*pairs["noisy"]) >= REDUNDANCY_THRESHOLD
    assert redundancy(*pairs["tags"]) == pytest.approx(1.0)


def test_dropped_reasons_calls_a_copy_at_the_guards_threshold():
    pairs = _pairs()
    kept, noisy = pairs["noisy"]
    sample = pd.DataFrame({"kept": kept, "noisy": noisy, "skew_a": pairs["skewed"][0]})
    result = type("R", (), {})()
    result.selected, result.dropped = ["kept"], ["noisy", "skew_a"]
    result.rounds, result.final_round, result.provenance = [], 0, {}
    reasons = dropped_reasons(result, None, sample)
    assert reasons["noisy"]["reason"] == "copy" and reasons["noisy"]["of"] == "kept"
    assert reasons["noisy"]["score"] == pytest.approx(redundancy(kept, noisy), abs=1e-4)
    assert reasons["skew_a"]["reason"] == "low_attention"


def test_copy_finder_returns_the_first_copy_in_the_order_asked():
    a, noisy = _pairs()["noisy"]
    skew_a, skew_b = _pairs()["skewed"]
    sample = pd.DataFrame({"a": a, "noisy": noisy, "relabel": a.map(lambda v: f"r{v}"),
                           "skew_a": skew_a, "skew_b": skew_b})  # fmt: skip
    finder = CopyFinder(sample)
    assert finder.first_copy("a", ["skew_a", "relabel", "noisy"]) == "relabel"
    assert finder.first_copy("a", ["skew_a", "noisy", "relabel"]) == "noisy"
    assert finder.first_copy("skew_b", ["skew_a", "a"]) is None
    assert finder.first_copy("a", []) is None


def test_an_exact_relabelling_of_many_values_is_a_copy_where_lambda_gives_no_verdict():
    """200 values on 2,000 rows (10 per value) is past lambda's limit; only a bijection
    on the sample is judged there, and neither independence nor many-to-one is one."""
    rng = np.random.default_rng(7)
    rows = 2000
    source = pd.Series(rng.integers(0, 200, rows)).map(lambda v: f"s{v}")
    relabel = {f"s{v}": f"w{p}" for v, p in enumerate(rng.permutation(200))}
    assert redundancy(source, source.map(relabel)) == 1.0
    independent = pd.Series(rng.integers(0, 200, rows)).map(lambda v: f"i{v}")
    assert redundancy(source, independent) is None
    # Each source value maps to one of 180 "zip codes", 20 of them shared (user -> zip).
    zips = {f"s{v}": f"z{min(v, 179)}" if v < 180 else f"z{v - 180}" for v in range(200)}
    assert redundancy(source, source.map(zips)) is None
    a_few_rows_changed = source.map(relabel).where(rng.random(rows) > 0.001, "w0")
    assert redundancy(source, a_few_rows_changed) is None
    # 1,000 values on 2,000 rows: too few rows per value for any verdict, even a bijection.
    ids = pd.Series(rng.integers(0, 1000, rows)).map(lambda v: f"u{v}")
    assert redundancy(ids, ids.map(lambda v: "x" + v)) is None
