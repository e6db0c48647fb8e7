import sys
import numpy as np
from benchmarks.dims import load_planted, PRESETS
from recsel.selection import width_value
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig
orig = width_value.joint_drop
def spy(selected, mean, rise, sig):
    out = orig(selected, mean, rise, sig)
    for n, c in selected.items():
        c = sorted(c, key=lambda k: -mean[n][k])
        m1, s1 = rise([(n, [k]) for k in c])
        tail = c[1:]
        jt = (lambda a: a[0][0] / a[1][0])(rise([(n, tail)])) if tail else float("nan")
        each = [k for k, mm, ss in zip(c, m1, s1) if mm > 2 * ss or k == c[0]]
        print(f"{n}: selected {len(c)} each-keeps {len(each)} joint-keeps {len(out[n])} tail-joint-t {jt:.1f} single-t {np.round(m1/s1,1).tolist()}", flush=True)
    return out
width_value.joint_drop = spy
seed = int(sys.argv[1])
data, truth = load_planted(PRESETS["full"]["rows"]["planted"], seed)
print({k: getattr(truth, k) for k in vars(truth) if k != "frame" and not k.startswith("_")} if hasattr(truth, "__dict__") else "")
f = data.features
cfg = SelectionConfig(num_features=len(f), dim_fraction=0.3, chunk_size=1, dim_multiple=1, min_dim=1, seed=seed, chunk_rule="joint")
r = select(data.train, data.valid, f, cfg, progress=False)
print(r.dims)
