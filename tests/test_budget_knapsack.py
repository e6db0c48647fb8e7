"""Budget rounds by value among the candidates that fit, judged on measurements (issue 14).

An over-budget round's new feature leaves the selection and the rounds go on; when the
cost model's predictions fit no candidate but the last round measured within its limit,
the cheapest candidates are tried. Stand-in trainers and cost models: only the rule runs.
"""

import types

import numpy as np
import pytest

from recsel.cost.latency import LatencyStats
from recsel.model.layer import SequentialAttentionEmbedding
from recsel.selection.budget import BudgetController
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet, FeatureSpec
from recsel.spec.result import RoundRecord

NAMES = ("movie_id", "genres", "user_id", "zip_code")
FEATURES = FeatureSet(
    tuple(FeatureSpec(n, "categorical", vocabulary=("a", "b"), embedding_dim=8) for n in NAMES)
)
# Predicted marginal ms per feature: genres (multivalent) is dear, the others tie.
COSTS = {"movie_id": 0.06, "genres": 0.30, "user_id": 0.06, "zip_code": 0.061}


FULL_MS = 1.47  # the all-features model, measured beside every round
FRACTION = 0.9  # limit 1.323 ms; on the predictions' scale 0.9 * 0.981 = 0.883


def _cost_model(scale: float):
    def predict(kept):
        return scale * (0.5 + sum(COSTS[n] for n in kept.names))

    return types.SimpleNamespace(
        coefficients={"base_ms": 0.5 * scale},
        feature_cost_ms=lambda spec, width: scale * COSTS[spec.name],
        predict_ms=predict,
    )


def _controller(p50s: list[float], scale: float = 1.0, gain: float = 0.01):
    """A relative-budget controller; ``scale`` is the machine's slowness (cost model and
    every measured p50 alike)."""
    layer = SequentialAttentionEmbedding(FEATURES, chunk_size=8)
    trainer = types.SimpleNamespace(features=FEATURES, layer=layer)
    config = SelectionConfig(latency_budget_ms=FRACTION * FULL_MS * scale)
    controller = BudgetController(trainer, config, _cost_model(scale), "/tmp")
    controller.requested_fraction = FRACTION
    controller.full_model_latency_ms = FULL_MS * scale
    controller._constant = lambda name: False
    controller._copy_of = lambda name, kept: None
    controller._masked_gains = lambda names: {n: (gain, 0.001) for n in names}
    timings = iter(p50s)

    def measure(model, kept, passes=3):
        p50, full = next(timings) * scale, FULL_MS * scale
        return LatencyStats(p50, p50, p50, 10, 8), LatencyStats(full, full, full, 10, 8)

    controller._measure = measure
    return controller, layer


def _round(controller, layer, index: int, names: list[str]) -> RoundRecord:
    """Selects ``names`` on the layer as a round would, then measures the round."""
    layer.feature_attention.set_selection([NAMES.index(n) for n in names])
    record = RoundRecord(index, list(names), dict.fromkeys(names, 8), 10, 100, 0.7, 0.6)
    controller.measure_round(record, pruned=None, kept=FEATURES.subset(names))
    return record


def _widths(names):
    return dict.fromkeys(names, 8)


def test_an_over_budget_round_drops_its_feature_and_the_rounds_go_on():
    controller, layer = _controller([0.6, 0.9, 2.0, 1.0])
    rounds = [_round(controller, layer, 0, ["movie_id"])]
    rounds.append(_round(controller, layer, 1, ["movie_id", "zip_code"]))
    rounds.append(_round(controller, layer, 2, ["movie_id", "zip_code", "genres"]))
    assert not controller.within_budget(rounds[-1])  # 2.0 ms of 1.323
    assert layer.selected_features() == ["movie_id", "zip_code"]  # genres left
    assert controller.discarded == {2} and controller.rejected == {"genres"}
    assert not controller.should_stop(rounds)  # one round in a row added nothing
    plan = controller.plan_round(["movie_id", "zip_code"], _widths(["movie_id", "zip_code"]), 1)
    assert plan.eligible.tolist() == [0.0, 0.0, 1.0, 0.0]  # user_id; genres never again
    rounds.append(_round(controller, layer, 3, ["movie_id", "zip_code", "user_id"]))
    assert not controller.should_stop(rounds)
    assert controller.final_round(rounds) == 3


def test_two_rounds_in_a_row_that_add_nothing_stop_the_run():
    controller, layer = _controller([0.6, 0.9, 2.0, 2.1])
    rounds = [_round(controller, layer, 0, ["movie_id"])]
    rounds.append(_round(controller, layer, 1, ["movie_id", "zip_code"]))
    rounds.append(_round(controller, layer, 2, ["movie_id", "zip_code", "genres"]))
    assert not controller.should_stop(rounds)
    rounds.append(_round(controller, layer, 3, ["movie_id", "zip_code", "user_id"]))
    assert controller.should_stop(rounds) and controller.final_round(rounds) == 1


def test_a_first_round_over_budget_still_stops_the_run():
    controller, layer = _controller([2.0])
    rounds = [_round(controller, layer, 0, ["genres"])]
    assert controller.should_stop(rounds) and controller.discarded == set()


def _plan_after_two(controller, layer):
    """Plans round 3 after rounds ``movie_id`` and ``movie_id, genres``."""
    _round(controller, layer, 0, ["movie_id"])
    _round(controller, layer, 1, ["movie_id", "genres"])
    return controller.plan_round(layer.selected_features(), _widths(layer.selected_features()), 1)


def test_when_predictions_fit_none_but_the_round_measured_within_the_cheapest_are_tried():
    # Predicted: 0.5 + 0.06 + 0.30 = 0.86 used of 0.883, so no candidate (>= 0.06) fits;
    # measured: 0.8 ms of 1.323 allowed.
    controller, layer = _controller([0.5, 0.8])
    plan = _plan_after_two(controller, layer)
    # user_id and zip_code tie within CHEAPEST_TIE: the attention chooses between them.
    assert plan.eligible.tolist() == [0.0, 0.0, 1.0, 1.0] and plan.count == 1


def test_no_cheapest_try_after_a_round_measured_over_its_limit():
    controller, layer = _controller([0.5, 2.0])
    plan = _plan_after_two(controller, layer)  # genres' round is over budget: it left
    assert layer.selected_features() == ["movie_id"]
    assert plan.eligible.tolist() == [0.0, 0.0, 1.0, 1.0]  # by the predictions, now
    controller._last_round_fits = False
    kept = ["movie_id", "user_id", "zip_code"]
    plan = controller.plan_round(kept, _widths(kept), 1)
    assert not plan.eligible.any() and plan.count == 0  # nothing left to try


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_the_cheapest_try_does_not_depend_on_machine_speed(scale):
    expected = _plan_after_two(*_controller([0.5, 0.8])).eligible
    got = _plan_after_two(*_controller([0.5, 0.8], scale)).eligible
    assert np.array_equal(expected, got) and got.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_why_dropped_names_the_round_a_feature_left_the_selection_in():
    from recsel.selection.explain import dropped_reasons

    rounds = [
        RoundRecord(i, names, _widths(names), 10, 100, 0.7, 0.6)
        for i, names in enumerate(
            [["c05"], ["c05", "c06"], ["c05", "c03"], ["c05", "c03", "c09"], ["c05", "c03", "c11"]]
        )
    ]
    result = types.SimpleNamespace(
        selected=["c05", "c03", "c11"],
        dropped=["c06", "c09", "c12"],
        rounds=rounds,
        final_round=4,
        provenance={},
        cost_model={
            "rejected": ["c06", "c09"],
            "discarded_rounds": [3],
            "round_marginal_auc": {"1": 0.0002, "2": 0.009, "3": 0.004, "4": 0.01},
        },
    )
    reasons = dropped_reasons(result)
    assert reasons["c06"]["reason"] == "no_value" and reasons["c06"]["round"] == 2
    assert "+0.0002 AUC" in reasons["c06"]["detail"]
    assert reasons["c09"]["reason"] == "over_budget" and reasons["c09"]["round"] == 4
    assert reasons["c12"]["reason"] == "low_attention"


def test_a_fresh_controller_restored_from_the_checkpoint_state_judges_the_same():
    """What a resumed run rebuilds: a new controller given ``state()`` through JSON (as
    the checkpoint stores it) plans, stops and picks the final round as the first does."""
    import json

    controller, layer = _controller([0.6, 0.9, 2.0, 1.0])
    rounds = [_round(controller, layer, 0, ["movie_id"])]
    rounds.append(_round(controller, layer, 1, ["movie_id", "zip_code"]))
    rounds.append(_round(controller, layer, 2, ["movie_id", "zip_code", "genres"]))
    saved = json.loads(json.dumps(controller.state()))
    fresh, _ = _controller([1.0])
    fresh.trainer = controller.trainer  # the restored layer: genres already left it
    # With movie_id alone kept, genres fits by cost: only its rejection keeps it out.
    alone = (["movie_id"], _widths(["movie_id"]), 1)
    assert fresh.plan_round(*alone).eligible[NAMES.index("genres")] == 1.0  # forgotten
    fresh.restore_state(saved)
    assert fresh.plan_round(*alone).eligible[NAMES.index("genres")] == 0.0
    assert fresh.state() == controller.state()
    assert fresh.rejected == {"genres"} and fresh.discarded == {2}
    assert fresh.marginal_auc == controller.marginal_auc and fresh.marginal_auc  # gains back
    assert fresh.merged_gains == {} == controller.merged_gains
    controller.merged_gains = {"zip_code": (0.0004, 0.0003), "genres": (-0.001, 0.0005)}
    fresh.restore_state(json.loads(json.dumps(controller.state())))
    assert fresh.merged_gains == controller.merged_gains  # the merged round's reasons too
    controller.merged_gains = {}
    fresh.restore_state({k: v for k, v in saved.items() if k != "merged_gains"})  # older
    assert fresh.merged_gains == {}
    kept = ["movie_id", "zip_code"]
    plan = fresh.plan_round(kept, _widths(kept), 1)
    assert plan.eligible.tolist() == [0.0, 0.0, 1.0, 0.0]
    assert fresh._failing_streak(rounds) == 1  # the over-budget round counts in the streak
    rounds.append(_round(fresh, layer, 3, ["movie_id", "zip_code", "user_id"]))
    assert fresh.marginal_auc[3] == 0.01  # judged as new: the last kept set came back
    assert fresh.final_round(rounds) == 3


def test_a_checkpoint_state_naming_an_unknown_feature_is_refused():
    controller, _ = _controller([])
    state = {**controller.state(), "rejected": ["age"]}
    with pytest.raises(ValueError, match=r"\['age'\].*remove the checkpoint directory"):
        controller.restore_state(state)
