"""Whether a budget can be met at all, and how many features any in-budget set can hold.

``BudgetController`` mixes this in; the host sets ``features``, ``config``,
``cost_model`` and ``minimum`` and provides the latency timing (``_measure``,
``latency_limit_ms``, ``planning_budget_ms``, ``requested_fraction``). A budget no
single feature fits raises ``BudgetError`` before any training, with the minimum
achievable figure to raise it to.

Example:
    >>> controller.check_achievable()   # BudgetError if the cheapest feature cannot fit
    >>> controller.most_that_fit()      # rounds are planned for this many features
"""

from __future__ import annotations

import numpy as np

from recsel.model.layer import PrunedEmbedding
from recsel.model.ranker import Ranker
from recsel.spec.widths import embedding_bytes, target_width


class BudgetError(ValueError):
    """The budget cannot be met even by the cheapest useful selection."""

    def __init__(
        self,
        message: str,
        minimum_latency_ms: float | None = None,
        minimum_memory_bytes: int | None = None,
    ):
        super().__init__(message)
        self.minimum_latency_ms = minimum_latency_ms
        self.minimum_memory_bytes = minimum_memory_bytes


class Feasibility:
    """The budget's up-front checks (see the module docstring)."""

    def _min_width(self, name: str) -> int:
        return target_width(0, self.features[name].embedding_dim, self.config)

    def check_achievable(self) -> None:
        """Raises ``BudgetError`` if no single feature at its minimum width fits."""
        config = self.config
        if config.memory_budget_bytes is not None:
            sizes = {
                n: embedding_bytes(self.features.subset([n], {n: self._min_width(n)}))
                for n in self.features.names
            }
            cheapest = min(sizes, key=sizes.get)
            self.minimum["memory_bytes"] = sizes[cheapest]
            if sizes[cheapest] > config.memory_budget_bytes:
                raise BudgetError(
                    f"Memory budget {config.memory_budget_bytes:.0f} bytes cannot be met: the smallest "
                    f"useful selection ({cheapest!r} at width {self._min_width(cheapest)}) needs "
                    f"{sizes[cheapest]} bytes of embedding tables. Raise the budget to at least that.",
                    minimum_memory_bytes=sizes[cheapest],
                )
        if config.latency_budget_ms is not None:
            predicted = {
                n: self.cost_model.feature_cost_ms(self.features[n], self._min_width(n))
                for n in self.features.names
            }
            cheapest = min(predicted, key=predicted.get)
            kept = self.features.subset([cheapest], {cheapest: self._min_width(cheapest)})
            cheapest_model = Ranker(PrunedEmbedding(kept), config.hidden_units, tower=config.tower)
            measured, full = self._measure(cheapest_model, kept)
            self.minimum.update(latency_ms=measured.p50_ms, latency_feature=cheapest)
            limit = self.latency_limit_ms(full.p50_ms if full is not None else None)
            if measured.p50_ms > limit:
                asked = f"Latency budget {limit:.3f} ms"
                floor = f"{measured.p50_ms:.3f} ms"
                if self.requested_fraction is not None and full is not None:
                    full = full.p50_ms
                    asked += f" ({self.requested_fraction:.0%} of the full model's {full:.3f} ms)"
                    floor += f", {measured.p50_ms / full:.0%} of the full model"
                raise BudgetError(
                    f"{asked} cannot be met: the cheapest useful "
                    f"selection ({cheapest!r} at width {self._min_width(cheapest)}) measures "
                    f"{measured.p50_ms:.3f} ms p50 at batch {config.serving_batch_size} on this machine. "
                    f"The minimum achievable latency is {floor}; raise the budget to at least that.",
                    minimum_latency_ms=measured.p50_ms,
                )

    def most_that_fit(self) -> int:
        """The most features any in-budget selection can hold: the cheapest ones at their
        minimum width, added until the budget is spent (on the cost model's scale).

        Rounds are planned for this many features, not for every candidate: a budget
        that stops after a few rounds would otherwise leave most of the planned data
        unused and give each round's events too few steps. It depends on the cost
        model only through cost *ratios*, so a uniformly faster or slower machine plans
        the same rounds.

        Example:
            >>> plan_rounds(controller.most_that_fit(), len(features), config)
        """
        counts = [len(self.features)]
        if self.config.latency_budget_ms is not None and self.cost_model is not None:
            room = self.planning_budget_ms() - self.cost_model.coefficients["base_ms"]
            costs = [
                self.cost_model.feature_cost_ms(s, self._min_width(s.name)) for s in self.features
            ]
            counts.append(int(np.sum(np.cumsum(np.sort(costs)) <= room)))
        if self.config.memory_budget_bytes is not None:
            sizes = [
                embedding_bytes(self.features.subset([n], {n: self._min_width(n)}))
                for n in self.features.names
            ]
            counts.append(int(np.sum(np.cumsum(np.sort(sizes)) <= self.config.memory_budget_bytes)))
        return max(1, min(counts))
