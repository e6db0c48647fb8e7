"""End-to-end tests of select() on the synthetic data with planted truth."""

import json

import numpy as np
import pytest

from recsel.data.synthetic import make_synthetic
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet
from recsel.spec.widths import target_width


def _prepared(data, embedding_dim=16):
    train, valid = split_frame(data.frame, 0.2, seed=0)
    features = infer_feature_set(train, data.label, embedding_dim=embedding_dim)
    return (
        validate_frame(train, features, data.label),
        validate_frame(valid, features, data.label),
        features,
    )


@pytest.mark.slow
def test_planted_recovery_with_fixed_seed():
    data = make_synthetic(n_rows=40_000, n_informative=8, n_duplicates=6, n_noise=20, seed=0)
    train, valid, features = _prepared(data)
    result = select(train, valid, features, SelectionConfig(num_features=8, seed=0), progress=False)
    group_of = {c: g for g, members in data.groups().items() for c in members}
    groups = [group_of.get(s) for s in result.selected]
    assert None not in groups, (
        f"selected noise: {[s for s in result.selected if s not in group_of]}"
    )
    assert len(set(groups)) == 8, f"two copies of one feature selected: {result.selected}"
    assert not set(result.selected) & set(data.traps)
    assert result.metrics["auc"] > 0.75


def test_small_selection_result_is_complete_and_serialisable(tmp_path):
    data = make_synthetic(
        n_rows=4000, n_informative=3, n_duplicates=1, n_noise=4, n_traps=1, seed=1
    )
    train, valid, features = _prepared(data)
    config = SelectionConfig(num_features=3, batch_size=64, seed=0, log_every=5)
    result = select(train, valid, features, config, progress=False, log_dir=str(tmp_path / "tb"))
    assert len(result.selected) == 3 and set(result.dims) == set(result.selected)
    assert all(d % 8 == 0 and 8 <= d <= 16 for d in result.dims.values())
    assert set(result.selection_weights) == set(result.selected)
    assert all(0 < w < 1 for w in result.selection_weights.values())
    assert len(result.trajectory["steps"]) > 5
    assert len(result.rounds) == 1 and 0.5 < result.rounds[0].auc <= 1
    round_tripped = type(result).from_dict(json.loads(json.dumps(result.to_dict())))
    assert round_tripped == result
    assert list((tmp_path / "tb").glob("events.out.tfevents.*")), (
        "TensorBoard summaries were not written"
    )


def test_same_seed_same_selection():
    data = make_synthetic(
        n_rows=3000, n_informative=3, n_duplicates=1, n_noise=3, n_traps=0, seed=2
    )
    train, valid, features = _prepared(data)
    config = SelectionConfig(num_features=2, batch_size=64, seed=3)
    first = select(train, valid, features, config, progress=False)
    second = select(train, valid, features, config, progress=False)
    assert first.selected == second.selected and first.dims == second.dims


def test_k_larger_than_candidates_is_a_clear_error():
    data = make_synthetic(n_rows=500, n_informative=2, n_duplicates=0, n_noise=1, n_traps=0)
    train, valid, features = _prepared(data)
    with pytest.raises(ValueError, match="only 3 candidates"):
        select(train, valid, features, SelectionConfig(num_features=5), progress=False)


@pytest.mark.parametrize(
    "split, change, message",
    [
        ("train", lambda f, y: f.assign(**{y: 0.0}), r"training rows' label 'label' is 0 in all \d+ rows, so there is nothing to learn"),
        ("valid", lambda f, y: f.assign(**{y: 1.0}), r"validation rows' label 'label' is 1 in all \d+ rows, so AUC is undefined"),
        ("valid", lambda f, y: f.iloc[:0], "The validation frame has no rows"),
        ("train", lambda f, y: f.assign(**{y: True}), r"training rows' label 'label' is 1 in all"),
        ("train", lambda f, y: f.drop(columns=[y]), "training frame has no label column 'label'"),
        ("train", lambda f, y: f.assign(**{y: f[y].map({0.0: "no", 1.0: "yes"})}),
         r"training frame's label 'label' holds object values such as \['(no|yes)', '(no|yes)'\]"),
    ],
)  # fmt: skip
def test_frames_without_both_label_classes_fail_before_training(split, change, message):
    # Before, one class in training trained and "selected" silently; one class or no row
    # in validation failed after the whole training (an empty one with numpy's "need at
    # least one array to concatenate").
    data = make_synthetic(n_rows=500, n_informative=2, n_duplicates=0, n_noise=1, n_traps=0)
    train, valid, features = _prepared(data)
    label = features.label
    frames = {"train": train, "valid": valid}
    frames[split] = change(frames[split], label)
    with pytest.raises(ValueError, match=message):
        select(frames["train"], frames["valid"], features, SelectionConfig(num_features=1),
               progress=False)  # fmt: skip


def test_a_stream_whose_first_rows_hold_one_class_is_warned_of(monkeypatch):
    from types import SimpleNamespace

    from recsel.selection import setup

    monkeypatch.setattr(setup, "first_labels", lambda source, rows: np.zeros(rows))
    trainer = SimpleNamespace(model=SimpleNamespace(logit=None), train_source=None)
    trainer.model.logit = SimpleNamespace(bias=None)  # assigned only for rare labels
    with pytest.warns(UserWarning, match=r"first 4096 training rows' label 'y' is 0 in every"):
        with pytest.raises(AttributeError):  # the all-0 rate is rare: the bias is set next
            setup.start_at_base_rate(trainer, object(), "y")


def test_widths_that_are_not_whole_chunks_are_rejected():
    data = make_synthetic(n_rows=500, n_informative=2, n_duplicates=0, n_noise=1, n_traps=0)
    train, valid, features = _prepared(data, embedding_dim=12)
    with pytest.raises(ValueError, match="multiples of 8"):
        select(train, valid, features, SelectionConfig(num_features=1), progress=False)


def test_feature_set_without_label_is_rejected():
    data = make_synthetic(n_rows=500, n_informative=2, n_duplicates=0, n_noise=1, n_traps=0)
    train, valid, features = _prepared(data)
    with pytest.raises(ValueError, match="no label"):
        select(
            train,
            valid,
            FeatureSet(features.features),
            SelectionConfig(num_features=1),
            progress=False,
        )


@pytest.mark.parametrize(
    ("columns", "full", "kwargs", "expected"),
    [
        (8, 32, {}, 8),
        (0, 32, {}, 8),  # clipped up to min_dim
        (24, 32, {"max_dim": 16}, 16),
        (4, 32, {"chunk_size": 4}, 8),  # rounded up to dim_multiple
        (40, 64, {"min_dim": 16, "dim_multiple": 16}, 48),
    ],
)
def test_target_width_rounds_and_clips(columns, full, kwargs, expected):
    width = target_width(columns, full, SelectionConfig(**kwargs))
    assert width == expected and width % SelectionConfig(**kwargs).dim_multiple == 0


def test_config_rejects_bad_budgets():
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="latency_budget_ms must be a positive number"):
            SelectionConfig(latency_budget_ms=bad)
    with pytest.raises(ValueError, match="num_features or feature_fraction, not both"):
        SelectionConfig(num_features=2, feature_fraction=0.5)
    for bad in (0, 1.5, -0.5, float("nan")):
        with pytest.raises(ValueError, match=r"latency_budget_fraction .* must be in \(0, 1\]"):
            SelectionConfig(latency_budget_fraction=bad)
    with pytest.raises(ValueError, match="latency_budget_ms or latency_budget_fraction, not both"):
        SelectionConfig(latency_budget_ms=3.0, latency_budget_fraction=0.5)
    assert SelectionConfig(latency_budget_fraction=0.5).has_budget
    assert np.isclose(SelectionConfig(memory_budget_bytes=1e9).memory_budget_bytes, 1e9)


@pytest.mark.parametrize(
    "name, value",
    [("epochs", 0), ("batch_size", 0), ("learning_rate", -1e-3), ("chunk_size", 0),
     ("dim_multiple", 0), ("min_dim", 0)],
)  # fmt: skip
def test_config_names_the_setting_that_is_not_positive(name, value):
    # It said "epochs, batch_size and learning_rate must be positive." for any of them.
    with pytest.raises(ValueError, match=rf"^{name} must be positive, got {value}\.$"):
        SelectionConfig(**{name: value})
