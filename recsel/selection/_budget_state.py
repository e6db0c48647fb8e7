"""What a budget run reports (``describe``) and what its checkpoints carry (``state``).

``BudgetController`` mixes this in. The rounds' judgement lives in the controller, not
in the layer: which features failed their masked check or went over budget and left
the selection (never eligible again), each round's masked gain and its error (the
plateau streak and the final round are computed from them), the features the last
round kept and whether it measured within its limit, and a merged round's per-feature
gains. A run killed and resumed must get all of it back, or it re-admits a dropped
feature, skips the next round's masked check (every feature looks new), counts the
streak afresh and so ends on another selection, or reports no reason for what a merged
round dropped. ``rounds.run_round`` and the driver put ``state()`` into the trainer's
checkpoint bookkeeping under ``"budget"``; the driver hands it to ``restore_state``.

Example:
    >>> bookkeeping = {"rounds": [...], "budget": controller.state()}
    >>> BudgetController.for_config(trainer, config).restore_state(bookkeeping["budget"])
"""

from __future__ import annotations


def _plain(value: float | None) -> float | None:
    """A timing as a Python float (numpy's float32 is not JSON-able), or None."""
    return None if value is None else float(value)


class BudgetState:
    """Reporting and checkpoint state; the host sets the attributes ``state`` names."""

    def describe(self) -> dict:
        """The cost model and the budget rounds' judgement, for ``SelectionResult.cost_model``."""
        out = {
            "cost_rule": self.config.cost_rule,
            "full_model_latency_ms_at_start": self.full_model_latency_ms,
            "full_model_predicted_ms": (
                self.cost_model.predict_ms(self.features) if self.cost_model else None
            ),
            "minimum_achievable": self.minimum,
            "over_budget_rounds": getattr(self, "over_budget_rounds", []),
            "round_marginal_auc": {str(i): round(g, 6) for i, g in self.marginal_auc.items()},
            "skipped_copies": dict(self.skipped_copies),
            "rejected": sorted(self.rejected),
            "discarded_rounds": sorted(self.discarded),
            "skipped_constant": sorted(set(self.skipped_constant)),
            "round_marginal_se": {str(i): round(e, 6) for i, e in self.marginal_se.items()},
            # A merged first round's features, each masked off alone: (gain, error).
            "merged_round_gains": {
                n: [round(g, 6), round(e, 6)] for n, (g, e) in self.merged_gains.items()
            },
        }
        if self.cost_model is not None:
            out.update(self.cost_model.describe())
        return out

    def state(self) -> dict:
        """The rounds' judgement so far, JSON-able, for the checkpoint bookkeeping.

        Gains are stored unrounded (JSON keeps a float exactly), so a resumed run
        judges the plateau on the very numbers the uninterrupted one has.

        Example:
            >>> trainer.save({"round": 3, "budget": controller.state()})
        """
        return {
            "marginal_auc": {str(i): float(g) for i, g in self.marginal_auc.items()},
            "marginal_se": {str(i): float(e) for i, e in self.marginal_se.items()},
            "rejected": sorted(self.rejected),
            "discarded": sorted(self.discarded),
            "previous": list(self._previous),
            "last_round_fits": self._last_round_fits,
            "skipped_copies": dict(self.skipped_copies),
            "skipped_constant": list(self.skipped_constant),
            # Full-model timings the load-spike test compares a round's against.
            "latest_full_model_ms": _plain(self._latest_full_model_ms),
            "quietest_full_model_ms": _plain(self._quietest_full_model_ms),
            # A merged round's masked gains: the report's reasons for the features it
            # dropped, lost if a run resumed in that round's fine-tuning forgot them.
            "merged_gains": {n: [float(g), float(e)] for n, (g, e) in self.merged_gains.items()},
        }

    def restore_state(self, state: dict | None) -> None:
        """Takes back ``state()`` from a checkpoint (None or empty: a fresh run).

        Args:
            state: What ``state()`` returned when the checkpoint was written.

        Raises:
            ValueError: ``state`` names a feature this run does not have.

        Example:
            >>> controller.restore_state(trainer.restore().get("budget"))
        """
        if not state:
            return
        named = set(state["rejected"]) | set(state["previous"])
        unknown = sorted(named - set(self.features.names))
        if unknown:
            raise ValueError(
                f"The checkpoint's budget state names features {unknown} that this run's "
                "feature set does not have; remove the checkpoint directory to start afresh."
            )
        self.marginal_auc = {int(i): float(g) for i, g in state["marginal_auc"].items()}
        self.marginal_se = {int(i): float(e) for i, e in state["marginal_se"].items()}
        self.rejected = set(state["rejected"])
        self.discarded = {int(i) for i in state["discarded"]}
        self._previous = list(state["previous"])
        self._last_round_fits = bool(state["last_round_fits"])
        self.skipped_copies = dict(state["skipped_copies"])
        self.skipped_constant = list(state["skipped_constant"])
        self._latest_full_model_ms = state["latest_full_model_ms"]
        self._quietest_full_model_ms = state["quietest_full_model_ms"]
        # Checkpoints written before merged gains were saved lack the key.
        self.merged_gains = {n: (g, e) for n, (g, e) in state.get("merged_gains", {}).items()}
