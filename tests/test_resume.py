"""Resumable selection: a run killed part way and re-run reaches the same selection."""

import pytest

from recsel.data.synthetic import make_synthetic
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig


class Preempted(RuntimeError):
    pass


def _kill_at(step_to_die: int):
    def callback(step: int) -> None:
        if step == step_to_die:
            raise Preempted(f"simulated preemption at step {step}")

    return callback


@pytest.fixture(scope="module")
def prepared():
    data = make_synthetic(
        n_rows=6000, n_informative=3, n_duplicates=1, n_noise=4, n_traps=1, seed=4
    )
    train, valid = split_frame(data.frame, 0.2, seed=0)
    features = infer_feature_set(train, data.label, embedding_dim=16)
    return (
        validate_frame(train, features, data.label),
        validate_frame(valid, features, data.label),
        features,
    )


@pytest.mark.parametrize("die_at", [33, 61])  # inside the first round; inside the second
def test_killed_run_resumes_to_the_same_selection(prepared, tmp_path, die_at):
    train, valid, features = prepared
    config = SelectionConfig(
        num_features=4,
        batch_size=64,
        seed=7,
        memory_budget_bytes=1e9,
        features_per_round=2,
        finetune_steps=5,
    )
    reference = select(train, valid, features, config, progress=False)
    assert len(reference.rounds) >= 2 and reference.provenance["steps"] > die_at
    checkpoints = tmp_path / "ckpt"
    with pytest.raises(Preempted):
        select(
            train,
            valid,
            features,
            config,
            progress=False,
            checkpoint_dir=str(checkpoints),
            checkpoint_every=10,
            step_callback=_kill_at(die_at),
        )
    assert list(checkpoints.glob("ckpt-*.index")), "no checkpoint was written before the kill"
    resumed = select(
        train,
        valid,
        features,
        config,
        progress=False,
        checkpoint_dir=str(checkpoints),
        checkpoint_every=10,
    )
    assert resumed.selected == reference.selected
    assert resumed.dims == reference.dims
    assert [r.selected for r in resumed.rounds] == [r.selected for r in reference.rounds]
    assert resumed.provenance["steps"] == reference.provenance["steps"]
    assert not checkpoints.exists(), "checkpoints should be removed after a successful run"


def test_checkpoint_of_a_different_run_is_refused(prepared, tmp_path):
    train, valid, features = prepared
    config = SelectionConfig(num_features=2, batch_size=64, seed=1)
    with pytest.raises(Preempted):
        select(
            train,
            valid,
            features,
            config,
            progress=False,
            checkpoint_dir=str(tmp_path / "c"),
            checkpoint_every=5,
            step_callback=_kill_at(12),
        )
    with pytest.raises(ValueError, match="different settings"):
        select(
            train,
            valid,
            features,
            SelectionConfig(num_features=2, batch_size=64, seed=2),
            progress=False,
            checkpoint_dir=str(tmp_path / "c"),
        )


def test_budget_rounds_resume_with_the_features_that_left_the_selection(
    prepared, tmp_path, monkeypatch
):
    """Killed after a round's new features failed their masked check and left the
    selection, the resumed run must still know they left (never eligible again), the
    rounds' masked gains and so the plateau streak: it then reaches the same selection.

    The failure is forced on round 2 (index 1) and every other round is made to pass,
    whatever they pick, so the test does not depend on which synthetic column is weak
    (the masked passes still run, so their cost and order are as in a real run).
    """
    from recsel.selection.budget import BudgetController

    measure = BudgetController.measure_round

    def round_two_fails(self, record, pruned, kept):
        real = self._masked_gains
        gain = -1.0 if record.index == 1 else 1.0
        self._masked_gains = lambda new: {n: (gain, 0.0) for n in real(new)}
        try:
            return measure(self, record, pruned, kept)
        finally:
            del self._masked_gains

    monkeypatch.setattr(BudgetController, "measure_round", round_two_fails)
    train, valid, features = prepared
    config = SelectionConfig(
        num_features=6,
        batch_size=64,
        seed=3,
        memory_budget_bytes=1e9,
        features_per_round=2,
        finetune_steps=3,
        plateau_patience=2,
    )
    reference = select(train, valid, features, config, progress=False)
    left = reference.cost_model["rejected"]
    assert len(reference.rounds) == 3 and len(left) == 2, reference.cost_model
    assert not set(left) & set(reference.rounds[2].selected)
    # Inside the third round: the second round (and its drop) is behind the checkpoint.
    die_at = (reference.rounds[1].steps + reference.rounds[2].steps) // 2
    checkpoints = tmp_path / "ckpt"
    run = dict(progress=False, checkpoint_dir=str(checkpoints), checkpoint_every=10)
    with pytest.raises(Preempted):
        select(train, valid, features, config, step_callback=_kill_at(die_at), **run)
    resumed = select(train, valid, features, config, **run)
    assert [r.selected for r in resumed.rounds] == [r.selected for r in reference.rounds]
    assert resumed.selected == reference.selected and resumed.dims == reference.dims
    for key in ("rejected", "discarded_rounds", "round_marginal_auc", "round_marginal_se"):
        assert resumed.cost_model[key] == reference.cost_model[key], key
    assert resumed.provenance["steps"] == reference.provenance["steps"]


def test_no_checkpoint_is_written_after_the_last_round(prepared, tmp_path, monkeypatch):
    """select() removes its checkpoints on the way out, so the last round ends without a
    save; the rounds before it still end with one (a resume restarts the next round)."""
    from recsel.selection.trainer import SelectionTrainer

    saved: list[dict] = []
    save = SelectionTrainer.save

    def recording_save(self, state):
        saved.append(dict(state))
        return save(self, state)

    monkeypatch.setattr(SelectionTrainer, "save", recording_save)
    train, valid, features = prepared
    config = SelectionConfig(
        num_features=4, batch_size=64, seed=7, memory_budget_bytes=1e9, features_per_round=2
    )
    result = select(
        train, valid, features, config, progress=False,
        checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=10_000,
    )  # fmt: skip
    rounds = len(result.rounds)
    assert rounds >= 2
    # Saves between rounds carry no in-round position (in-round saves count fine-tuning).
    round_ends = [s["round"] for s in saved if "finetune_done" not in s]
    assert round_ends == list(range(1, rounds)), saved
