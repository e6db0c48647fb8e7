"""Per-step CPU of the gated train step vs the plain model, same loop, interleaved blocks."""
import sys, os, time, dataclasses
sys.path.insert(0, os.getcwd())
import numpy as np, tensorflow as tf, tf_keras
from benchmarks import dims
from benchmarks.datasets import load_dataset, to_dataset
from recsel import SelectionConfig
from recsel.selection.trainer import SelectionTrainer
from recsel.selection.train_loop import multi_step_train_function
from recsel.model.ranker import Ranker
from recsel.model.tables import PrunedEmbedding
batch = int(sys.argv[1]) if len(sys.argv) > 1 else 76
data = load_dataset("adult", None); features = data.features
variants = {}
for name, l2 in (("gated", 1e-4), ("gated_l2_0", 0.0)):
    config = SelectionConfig(num_features=7, seed=0, batch_size=batch, l2=l2)
    tr = SelectionTrainer(features, data.train, data.valid, features.label, config, progress=False)
    tr.layer.schedule_selection(7, 3, 100000, warmup_fraction=0.01)
    tr._trace.start(10)
    fn = lambda n, tr=tr: tr._train_fn(tr._iterator, tf.constant(n, tf.int32))
    variants[name] = fn
tf_keras.utils.set_random_seed(0)
model = Ranker(PrunedEmbedding(features, seed=0), (64, 32), seed=0)
model.compile(optimizer=tf_keras.optimizers.Adam(3e-3), loss=tf_keras.losses.BinaryCrossentropy(from_logits=True))
model.optimizer.build(model.trainable_variables)
it = iter(to_dataset(data.train, features, features.label, batch, shuffle=True, seed=0, repeat=True))
plain = multi_step_train_function(model)
variants["plain"] = lambda n: plain(it, tf.constant(n, tf.int32))
for f in variants.values(): f(5)
res = {k: [] for k in variants}
for block in range(5):
    for k, f in variants.items():
        c = time.process_time(); t = time.perf_counter(); f(100); res[k].append(((time.process_time() - c) * 10, (time.perf_counter() - t) * 10))
for k, v in res.items():
    print(f"{k:12s} ms/step cpu {np.median([x[0] for x in v]):.2f} wall {np.median([x[1] for x in v]):.2f}")
print("load", os.getloadavg())
