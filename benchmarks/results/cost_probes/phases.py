"""Phase timings of select() (wall) next to plain runs, after the benchmark's warm-up."""
import sys, os, time, functools, collections, warnings, json
sys.path.insert(0, os.getcwd())
import numpy as np
from benchmarks import dims, baselines as bl
from benchmarks import compare_methods as cm
from recsel import select, SelectionConfig
import recsel.selection.driver as drv, recsel.selection.rounds as rnd, recsel.selection.trainer as trm
import recsel.selection.setup as stp, recsel.selection.explain as ex, recsel.selection.width_value as wv
import recsel.model.ranker as rk

T = collections.defaultdict(float); N = collections.Counter()
def wrap(mod, attr, label=None):
    f = getattr(mod, attr); label = label or attr
    @functools.wraps(f)
    def g(*a, **k):
        t = time.perf_counter()
        try: return f(*a, **k)
        finally: T[label] += time.perf_counter() - t; N[label] += 1
    setattr(mod, attr, g)
wrap(drv, "prepare_run"); wrap(drv, "start_at_base_rate"); wrap(drv, "_run_rounds")
wrap(drv, "_result"); wrap(drv._explain, "dropped_reasons"); wrap(drv._explain, "validation_sample")
wrap(rnd, "finalise_widths"); wrap(rnd, "prune_ranker"); wrap(rnd._explain, "prefix_curve")
wrap(trm.SelectionTrainer, "train"); wrap(trm.SelectionTrainer, "evaluate"); wrap(trm.SelectionTrainer, "__init__", "trainer_init")
wrap(rnd.widths_lib, "align_principal_axes")
name, mode = sys.argv[1], sys.argv[2]
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
rows = int(sys.argv[4]) if len(sys.argv) > 4 else None
protocol = bl.TrainProtocol()
if mode == "widths":
    if name == "planted":
        data, _ = dims.load_planted(rows or 200_000, 0)
    else:
        data = dims.load_dataset(name, rows, dims.FULL_WIDTH[name])
    features = data.features; chunk = dims.CHUNK_SIZE[name]
    config = SelectionConfig(num_features=len(features), dim_fraction=0.3, chunk_size=chunk,
                             dim_multiple=chunk, min_dim=chunk, seed=0)
    dims._warm_up(data, features, protocol, config, 0)
else:
    from benchmarks.datasets import load_dataset
    data = load_dataset(name, rows); features = data.features
    config = SelectionConfig(num_features=int(mode), seed=0)
    cm.warm_up(data, protocol)
out = []
for r in range(reps):
    T.clear(); N.clear()
    _, p1 = bl.train_ranker(data.train, features, protocol, 0)
    t = time.perf_counter(); c = time.process_time()
    res = select(data.train, data.valid, features, config, progress=False)
    s = time.perf_counter() - t; sc = time.process_time() - c
    c = time.process_time()
    _, p2 = bl.train_ranker(data.train, features, protocol, 0)
    pc = time.process_time() - c
    ratio = s / ((p1 + p2) / 2)
    out.append(ratio)
    print(f"rep {r}: select {s:.2f} (cpu {sc:.2f}) plain {p1:.2f}/{p2:.2f} (cpu {pc:.2f}) ratio {ratio:.2f} load {os.getloadavg()[0]:.2f} steps {res.provenance['steps']}")
    print("   ", ", ".join(f"{k} {v:.3f}({N[k]})" for k, v in sorted(T.items(), key=lambda x: -x[1])))
print("selected", res.selected, res.dims)
print("median ratio", float(np.median(out)))
