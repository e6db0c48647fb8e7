"""Which feature does round 1 pick on MovieLens, budget vs count k=1, and is any eligibility cut?"""

import os
import sys
import time
import warnings

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
import recsel.selection.budget as bm
from benchmarks.datasets import load_dataset
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig

warnings.filterwarnings("ignore")

data = load_dataset("movielens", None, 16, 20)
f = data.features
print({s.name: (s.kind, s.vocabulary_size) for s in f}, flush=True)
orig = bm.BudgetController.plan_round


def plan(self, selected, widths, planned):
    p = orig(self, selected, widths, planned)
    costs = {
        s.name: round(self.cost_model.feature_cost_ms(s, self._min_width(s.name)), 4)
        for s in self.features
    }
    used = (
        self.cost_model.predict_ms(self._current(selected, widths))
        if selected
        else self.cost_model.coefficients["base_ms"]
    )
    print(
        "plan",
        selected,
        "elig",
        [n for n, e in zip(f.names, p.eligible) if e],
        "room",
        round(self.planning_budget_ms() - used, 4),
        "costs",
        costs,
        flush=True,
    )
    return p


bm.BudgetController.plan_round = plan
for seed in [int(x) for x in sys.argv[1:]]:
    for cfg in (
        SelectionConfig(latency_budget_fraction=0.65, seed=seed, serving_batch_size=512),
        SelectionConfig(num_features=1, seed=seed),
    ):
        t = time.time()
        r = select(data.train, data.valid, f, cfg, progress=False)
        print(
            seed,
            "budget" if cfg.num_features is None else "k1",
            [x.selected for x in r.rounds],
            "final",
            r.final_round,
            [(x.latency_ms_p50, x.full_model_latency_ms) for x in r.rounds],
            round(time.time() - t, 1),
            os.getloadavg(),
            flush=True,
        )
