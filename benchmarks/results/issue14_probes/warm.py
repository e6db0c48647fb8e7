"""MovieLens budget runs with a longer first round (warmup_fraction): which feature comes first?"""

import os
import sys
import time
import warnings

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from benchmarks.datasets import load_dataset
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig

warnings.filterwarnings("ignore")
data = load_dataset("movielens", None, 16, 20)
f = data.features
for w in [float(x) for x in sys.argv[2:]]:
    for seed in [int(x) for x in sys.argv[1].split(",")]:
        t = time.time()
        r = select(
            data.train,
            data.valid,
            f,
            SelectionConfig(
                latency_budget_fraction=0.65, seed=seed, serving_batch_size=512, warmup_fraction=w
            ),
            progress=False,
        )
        print(
            "warm",
            w,
            seed,
            [x.selected for x in r.rounds][-1],
            "final",
            r.rounds[r.final_round].selected,
            round(r.rounds[r.final_round].auc, 4),
            round(time.time() - t, 1),
            os.getloadavg(),
            flush=True,
        )
