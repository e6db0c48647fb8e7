"""Selection on adversarial data it was never tuned on (issue 14).

The generator (``recsel.data.adversarial``) plants ID-like noise columns (1k-10k values),
exact and noisy copies of informative columns and low-cardinality noise. A selection
must keep every informative group, no copy of a kept one, no ID-like and no noise
column, in count mode and under a roomy latency budget; and under a budget the order
must not depend on the machine's speed (a scaled cost model).
"""

import numpy as np
import pytest

from benchmarks.adversarial_recovery import ROOMY_FRACTION, mode_config, prepared, select_on
from recsel.cost import COEFFICIENTS, CostModel
from recsel.data.adversarial import make_adversarial
from recsel.selection import budget as budget_module
from recsel.selection.driver import select
from recsel.selection.explain import dropped_reasons
from recsel.spec.config import SelectionConfig


@pytest.fixture(scope="module")
def adversarial():
    data = make_adversarial(n_rows=20_000, variant="balanced", seed=0)
    return data, *prepared(data, seed=0)


def test_generator_plants_what_it_reports():
    data = make_adversarial(n_rows=20_000, variant="rare", seed=4)
    frame = data.frame
    assert 0.02 <= frame[data.label].mean() <= 0.03
    assert all(1_000 <= frame[c].nunique() <= 10_000 for c in data.id_like)
    for copy, source in data.exact_copies.items():  # a bijection of the source's values
        pairs = frame[[copy, source]].drop_duplicates()
        assert len(pairs) == frame[source].nunique() == frame[copy].nunique()
    for copy, source in data.noisy_copies.items():
        assert len(frame[[copy, source]].drop_duplicates()) > frame[source].nunique()
    assert data.score_selection(data.sources())["clean"]
    score = data.score_selection([*data.sources(), *data.id_like[:1], *data.exact_copies])
    assert score["id_like"] == data.id_like[:1] and len(score["copies"]) == 2
    with pytest.raises(ValueError, match="variant must be one of"):
        make_adversarial(variant="skewed")


def _check_clean(data, result):
    score = data.score_selection(result.selected)
    assert score["clean"], f"selection {result.selected} scored {score}"


def test_count_mode_recovers_every_group_without_copies_or_ids(adversarial):
    data, train, valid, features = adversarial
    config = mode_config("count", len(data.groups), seed=0)
    with pytest.warns(UserWarning, match="batch size is lowered"):  # 16k rows, one pass
        result = select(train, valid, features, config, progress=False)
    _check_clean(data, result)
    assert result.provenance["train_rows_seen"] <= len(train)  # no example repeated


def test_roomy_budget_recovers_every_group_without_copies_or_ids(adversarial):
    data, train, valid, features = adversarial
    config = mode_config("budget", len(data.groups), seed=0)
    assert config.latency_budget_fraction == ROOMY_FRACTION and config.num_features is None
    with pytest.warns(UserWarning, match="rounds are planned for"):
        result = select(train, valid, features, config, progress=False)
    _check_clean(data, result)
    assert result.provenance["train_rows_seen"] <= len(train)
    # It stopped on value, not on the budget: a later round added less than the tolerance.
    gains = result.cost_model["round_marginal_auc"]
    assert any(g < config.plateau_tolerance for g in gains.values())


@pytest.mark.slow
def test_short_rows_budget_selects_in_one_merged_round_and_vets_each_feature():
    # 8k training rows: one-feature rounds would hold 3 features (3 of 6 groups kept on
    # every seed before); one merged round of 7 holds all 6 groups and one more pick,
    # which masking off the trained model shows adds nothing, so it leaves.
    data, train, result, caught = select_on("balanced", 1, "budget", 10_000)
    assert any("one round selects up to 7 features" in str(w.message) for w in caught)
    _check_clean(data, result)
    assert len(result.rounds) == 1 and result.provenance["train_rows_seen"] <= len(train)
    gains = result.cost_model["merged_round_gains"]
    dropped = sorted(set(gains) - set(result.selected))
    assert len(gains) == 7 and len(dropped) == 1
    reason = dropped_reasons(result)[dropped[0]]
    assert reason["reason"] == "no_value" and "one merged round" in reason["detail"]


def _fixed_cost_model(features, scale: float, skew: float = 1.0) -> CostModel:
    """A cost model of the shape calibration fits; ``skew`` makes categoricals dearer."""
    coefficients = dict.fromkeys(COEFFICIENTS, 0.0)
    coefficients.update(
        {
            "base_ms": 0.5 * scale,
            "per_feature_ms[categorical]": 0.05 * scale * skew,
            "per_feature_ms[numeric]": 0.02 * scale,
            "per_lookup_column_ms": 0.002 * scale,
            "per_dense_input_column_ms": 0.001 * scale,
        }
    )
    return CostModel(coefficients, batch_size=512, hidden_units=(64, 32))


def test_selection_order_does_not_depend_on_machine_speed(monkeypatch):
    data = make_adversarial(n_rows=10_000, variant="balanced", n_noise=2, seed=1)
    train, valid, features = prepared(data, seed=1)
    orders = {}
    for scale, skew in ((0.5, 1.0), (2.0, 1.0), (1.0, 4.0)):
        model = _fixed_cost_model(features, scale, skew)
        monkeypatch.setattr(budget_module, "calibrate", lambda *a, model=model, **k: model)
        config = SelectionConfig(num_features=4, latency_budget_fraction=1.0, seed=1)
        result = select(train, valid, features, config, progress=False)
        assert result.cost_model["coefficients"]["base_ms"] == pytest.approx(0.5 * scale)
        orders[(scale, skew)] = [r.selected for r in result.rounds]
    reference = orders[(0.5, 1.0)]
    assert len(reference) >= 2, "expected several budget rounds"
    # x0.5 and x2 (a faster and a slower machine), and categoricals 4x dearer: every
    # candidate fits, so the marginal-value order is the same.
    for key, order in orders.items():
        shared = min(len(order), len(reference))
        assert order[:shared] == reference[:shared], f"{key}: {order} != {reference}"
    assert np.all([len(o) == len(reference) for o in orders.values()])
