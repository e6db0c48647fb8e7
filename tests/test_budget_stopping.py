"""Budget rounds' stopping rule and copy guard (issue 14), on stand-in records.

The rule: a round passes when its new feature, masked off the trained model, costs at
least ``plateau_tolerance`` validation AUC; rounds stop after ``plateau_patience``
failing rounds in a row (or over budget), and the result is the last passing round.
"""

import numpy as np
import pandas as pd
import pytest

from recsel.selection._redundancy import REDUNDANCY_THRESHOLD, redundancy
from recsel.selection.budget import BudgetController
from recsel.spec.config import SelectionConfig
from recsel.spec.result import RoundRecord


def _controller(
    gains: list[float | None], errors: list[float] | None = None, **config
) -> tuple[BudgetController, list]:
    """A controller with no trainer or cost model; only the value rule is exercised."""
    controller = BudgetController.__new__(BudgetController)
    controller.config = SelectionConfig(memory_budget_bytes=1e9, **config)
    controller.minimum, controller.marginal_auc, controller.marginal_se = {}, {}, {}
    controller.merged_gains = {}
    rounds = []
    for index, gain in enumerate(gains):
        if gain is not None:
            controller.marginal_auc[index] = gain
            controller.marginal_se[index] = errors[index] if errors else 0.0
        rounds.append(
            RoundRecord(
                index=index,
                selected=[f"f{i}" for i in range(index + 1)],
                dims={f"f{i}": 8 for i in range(index + 1)},
                steps=10 * (index + 1),
                embedding_bytes=100,
                auc=0.7,
                log_loss=0.5,
            )
        )
    return controller, rounds


def _stop_round(controller, rounds) -> int:
    """The round after which the driver would stop (the last one if none)."""
    for position in range(len(rounds)):
        if controller.should_stop(rounds[: position + 1]):
            return position
    return len(rounds) - 1


def test_one_failing_round_does_not_stop_and_a_later_pass_keeps_it():
    # Adult-like: age fails in its own round (-0.0004), then educational_num adds 0.018.
    controller, rounds = _controller([None, 0.08, 0.002, -0.0004, 0.018, 0.0001, -0.0002])
    assert _stop_round(controller, rounds) == 6  # two failures in a row: rounds 5 and 6
    assert controller.final_round(rounds) == 4


def test_patience_one_stops_at_the_first_failure():
    controller, rounds = _controller([None, 0.08, -0.0004, 0.018], plateau_patience=1)
    assert _stop_round(controller, rounds) == 2
    assert controller.final_round(rounds) == 1


def test_tolerance_is_the_threshold():
    controller, rounds = _controller([None, 0.0006, 0.0004, 0.0004], plateau_tolerance=0.0005)
    assert controller.final_round(rounds) == 1
    controller, rounds = _controller([None, 0.0006, 0.0004, 0.0004], plateau_tolerance=0.0003)
    assert controller.final_round(rounds) == 3


def test_a_noisy_check_of_a_used_feature_does_not_fail_its_round():
    # Rare-positive seed 1: group c07 masked at -0.0092 +- 0.0151 (about 100 validation
    # positives), then ID-like c09 at -0.0005 +- 0.0003; c07's round now stays in.
    gains, errors = (
        [None, 0.12, 0.019, 0.067, 0.035, -0.0092, -0.0005],
        [0.0] * 5 + [0.0151, 0.0003],
    )
    controller, rounds = _controller(gains, errors)
    assert controller.final_round(rounds) == 5
    # Rare-positive seed 0's ID-like c06 (+0.0002 +- 0.0004) and a precise negative gain
    # (-0.003 +- 0.001) still fail: their errors are small or rule the tolerance out.
    for gain, error in ((0.0002, 0.0004), (-0.003, 0.001), (-0.02, 0.004)):
        controller, rounds = _controller([None, 0.05, gain, -0.0005], [0.0, 0.0, error, 0.0003])
        assert controller.final_round(rounds) == 1, (gain, error)


def test_patience_must_be_positive():
    with pytest.raises(ValueError, match="plateau_patience"):
        SelectionConfig(plateau_patience=0)


def test_redundancy_finds_relabellings_and_noisy_copies_but_not_skewed_columns():
    rng = np.random.default_rng(0)
    rows = 4000
    source = pd.Series(rng.integers(0, 30, rows))
    relabelled = source.map(lambda v: f"v{(7 * v) % 30}")
    noisy = source.where(rng.random(rows) > 0.15, pd.Series(rng.integers(0, 30, rows)))
    assert redundancy(source, relabelled) == pytest.approx(1.0)
    assert redundancy(source, noisy) >= REDUNDANCY_THRESHOLD
    # Two skewed, independent columns: each "predicts" the other's common value (purity
    # ~0.9), which is no evidence of a copy.
    skew_a = pd.Series(np.where(rng.random(rows) < 0.9, "white", rng.choice(["a", "b"], rows)))
    skew_b = pd.Series(np.where(rng.random(rows) < 0.92, 0, rng.integers(1, 9, rows)))
    assert redundancy(skew_a, skew_b) < 0.1
    # Too many values for the sample (a few rows each): no verdict.
    ids = pd.Series([f"u{i % 1000}" for i in range(rows)])
    assert redundancy(ids, pd.Series([f"z{i % 999}" for i in range(rows)])) is None


def test_redundancy_of_multivalent_cells():
    tags = pd.Series([["a", "b"], ["b"], ["a", "b"], ["c"]] * 50)
    same = tags.map(lambda v: list(reversed(v)))
    assert redundancy(tags, same) == pytest.approx(1.0)


def test_output_bias_starts_at_the_training_base_rate():
    from recsel.data.adversarial import make_adversarial
    from recsel.inputs.inference import infer_feature_set
    from recsel.selection.setup import start_at_base_rate as _start_at_base_rate
    from recsel.selection.trainer import SelectionTrainer

    data = make_adversarial(n_rows=4000, variant="rare", seed=0)
    frame = data.frame
    features = infer_feature_set(frame, data.label, embedding_dim=8)
    trainer = SelectionTrainer(
        features, frame, frame, data.label, SelectionConfig(num_features=2), progress=False
    )
    assert float(trainer.model.logit.bias.numpy()[0]) == 0.0
    _start_at_base_rate(trainer, frame, data.label)
    rate = frame[data.label].mean()
    assert float(trainer.model.logit.bias.numpy()[0]) == pytest.approx(
        np.log(rate / (1 - rate)), rel=1e-5
    )
    # A balanced label keeps Keras' zero start (the base-rate start cost Adult its
    # strongest feature at k=4).
    balanced = make_adversarial(n_rows=4000, variant="balanced", seed=0).frame
    trainer = SelectionTrainer(
        features, balanced, balanced, data.label, SelectionConfig(num_features=2), progress=False
    )
    _start_at_base_rate(trainer, balanced, data.label)
    assert float(trainer.model.logit.bias.numpy()[0]) == 0.0


class _Sample:
    """Stands in for a trainer: only its serving sample is read by the copy guard."""

    def __init__(self, frame):
        self.serving_sample = frame


def test_copies_of_a_kept_feature_are_found_and_recorded():
    rng = np.random.default_rng(3)
    source = rng.integers(0, 12, 3000)
    frame = pd.DataFrame(
        {
            "kept": [f"k{v}" for v in source],
            "copy": [f"c{(5 * v) % 12}" for v in source],
            "other": [f"o{v}" for v in rng.integers(0, 12, 3000)],
        }
    )
    controller = BudgetController.__new__(BudgetController)
    controller.trainer = _Sample(frame)
    controller._copy_finder, controller.skipped_copies = None, {}
    assert controller._copy_of("copy", {"kept"}) == "kept"
    assert controller._copy_of("other", {"kept"}) is None
    assert controller.skipped_copies == {"copy": "kept"}


def test_no_round_at_all_is_a_budget_error_not_an_index_error():
    from recsel.selection.budget import BudgetError

    controller, _ = _controller([])
    with pytest.raises(BudgetError, match="No round ran"):
        controller.final_round([])


def test_a_column_the_lookup_maps_to_oov_is_constant_and_never_eligible():
    from recsel.spec.features import FeatureSet, FeatureSpec

    frame = pd.DataFrame(
        {
            "ids": [f"u{i}" for i in range(2000)],  # one value known, 1,999 OOV
            "tags": [["a", "b"] if i % 2 else ["z"] for i in range(2000)],
        }
    )
    controller = BudgetController.__new__(BudgetController)
    controller.trainer = _Sample(frame)
    controller.features = FeatureSet(
        [
            FeatureSpec("ids", "categorical", vocabulary=("u0",), embedding_dim=8),
            FeatureSpec("tags", "multi_categorical", vocabulary=("a",), embedding_dim=8,
                        max_valency=2),
        ]
    )  # fmt: skip
    controller.skipped_constant = []
    assert controller._constant("ids")
    assert not controller._constant("tags")  # half the rows hold a known tag
    assert controller.skipped_constant == ["ids"]


def test_a_feature_that_fails_its_masked_check_leaves_the_selection(monkeypatch):
    # Rare-positive seed 0: ID-like c06 failed its round (+0.0002 +- 0.0004), the next
    # round's c03 passed, and c06 sat inside that round's set and the result.
    from types import SimpleNamespace

    from recsel.model.layer import SequentialAttentionEmbedding
    from recsel.spec.features import FeatureSet, FeatureSpec

    features = FeatureSet(
        tuple(
            FeatureSpec(n, "categorical", vocabulary=("a", "b", "c"), embedding_dim=16)
            for n in ("c01", "c03", "c06", "c09")
        )
    )
    layer = SequentialAttentionEmbedding(features, chunk_size=8)
    layer.feature_attention.force_select([0, 2])  # c01, then c06
    layer.chunk_attention.force_select(layer.chunks_of("c01") + layer.chunks_of("c06"))
    controller, _ = _controller([])
    controller.trainer = SimpleNamespace(layer=layer, serving_sample=None)
    controller.features, controller._previous = features, ["c01"]
    controller.skipped_copies, controller.rejected, controller.discarded = {}, set(), set()
    monkeypatch.setattr(controller, "_masked_gains", lambda names: {"c06": (0.0002, 0.0004)})
    record = RoundRecord(
        index=1,
        selected=["c01", "c06"],
        dims={"c01": 16, "c06": 16},
        steps=20,
        embedding_bytes=100,
        auc=0.7,
        log_loss=0.5,
    )
    controller.measure_round(record, pruned=None, kept=None)
    assert not controller._adds_value(record)  # the round itself still fails
    assert layer.selected_features() == ["c01"]
    assert sorted(layer.selected_chunks()) == ["c01"]
    assert set(layer.chunk_attention.selected_indices()) == set(layer.chunks_of("c01"))
    assert controller.rejected == {"c06"}
    monkeypatch.setattr(controller, "_constant", lambda name: False)
    monkeypatch.setattr(controller, "_copy_of", lambda name, kept: None)
    controller.cost_model = None
    controller.full_model_latency_ms, controller.skipped_constant = None, []
    assert controller.describe()["rejected"] == ["c06"]
    plan = controller.plan_round(["c01"], {"c01": 16}, planned=1)
    assert plan.eligible.tolist() == [0.0, 1.0, 0.0, 1.0]  # c06 never again, c03 and c09 may


def test_a_passing_or_inconclusive_new_feature_stays(monkeypatch):
    from types import SimpleNamespace

    from recsel.model.layer import SequentialAttentionEmbedding
    from recsel.spec.features import FeatureSet, FeatureSpec

    features = FeatureSet(
        tuple(
            FeatureSpec(n, "categorical", vocabulary=("a", "b"), embedding_dim=8)
            for n in ("a", "b", "c")
        )
    )
    layer = SequentialAttentionEmbedding(features, chunk_size=8)
    layer.feature_attention.force_select([0, 1, 2])
    controller, _ = _controller([])
    controller.trainer = SimpleNamespace(layer=layer)
    controller.features, controller._previous, controller.rejected = features, ["a"], set()
    controller.discarded = set()
    # b adds 0.01; c's check is too noisy to tell (-0.009 +- 0.015): both stay.
    gains = {"b": (0.01, 0.001), "c": (-0.009, 0.015)}
    monkeypatch.setattr(controller, "_masked_gains", lambda names: gains)
    record = RoundRecord(
        index=1,
        selected=["a", "b", "c"],
        dims=dict.fromkeys("abc", 8),
        steps=20,
        embedding_bytes=100,
        auc=0.7,
        log_loss=0.5,
    )
    controller.measure_round(record, pruned=None, kept=None)
    assert layer.selected_features() == ["a", "b", "c"] and controller.rejected == set()


@pytest.mark.parametrize(
    "gain, se, alone, together",
    [
        (0.0006, 0.0005, True, False),  # ID-like pick of a merged round (balanced seed 20)
        (0.00066, 0.00027, True, False),  # noise pick (balanced seed 4)
        (0.007, 0.0034, True, True),  # an informative pick well above its error
        (0.0002, 0.0065, True, True),  # inconclusive: the model leans on it heavily
        (-0.0027, 0.0014, False, False),
    ],
)
def test_a_merged_round_asks_each_gain_to_clear_the_tolerance_by_one_error(
    gain, se, alone, together
):
    controller, _ = _controller([])
    assert controller._passes(gain, se) is alone
    assert controller._passes_together(gain, se) is together
