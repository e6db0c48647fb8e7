"""Per-table joint rule vs an all-tables cumulative rule, on one planted seed (widths only)."""
import sys
import numpy as np
from benchmarks.dims import load_planted, PRESETS
from recsel.selection import width_value
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig
orig = width_value.joint_drop
def spy(selected, mean, rise, sig):
    out = orig(selected, mean, rise, sig)
    layer = rise.model.embedding
    cols = lambda n, k: width_value._chunk_columns(layer, n, k, rise.chunk_size)
    best = {n: max(c, key=lambda k: mean[n][k]) for n, c in selected.items() if c}
    cand = sorted([(mean[n][k], n, k) for n, c in selected.items() for k in c if k != best[n]])
    dropped = []
    for _, n, k in cand:
        trial = dropped + [(n, k)]
        m, s = width_value._ablate(rise.model, rise.embedded, rise.labels, [np.concatenate([cols(a, b) for a, b in trial])], 8_000_000)
        if m[0] > max(sig * s[0], 0.0):
            break
        dropped = trial
    glob = {n: [k for k in c if (n, k) not in dropped] for n, c in selected.items()}
    print("per-table joint:", {n: len(v) for n, v in out.items()}, flush=True)
    print("global joint:   ", {n: len(v) for n, v in glob.items()}, flush=True)
    return glob if MODE == "global" else out
width_value.joint_drop = spy
seed, MODE = int(sys.argv[1]), sys.argv[2]
data, truth = load_planted(PRESETS["full"]["rows"]["planted"], seed)
print("needed", truth.needed_width)
f = data.features
cfg = SelectionConfig(num_features=len(f), dim_fraction=0.3, chunk_size=1, dim_multiple=1, min_dim=1, seed=seed, chunk_rule="joint")
r = select(data.train, data.valid, f, cfg, progress=False)
print("dims", r.dims)
