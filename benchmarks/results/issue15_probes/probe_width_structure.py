"""Probe: which width structure wins on MovieLens at ~equal params (interleaved seeds).

Run from the repository root: ``PYTHONPATH=. python <this file> 3,4,5``. probe_seeds012.json
was measured with an earlier config set (uni8, hs, big8_s2, big8_s4, big8_s1 = user/movie/zip
8 and small tables 2/4/1, m12_s2 = user 8, movie 12, zip 4, small 2, u8m10z6_s2), and
probe_seeds345.json with the set below.
"""
import os, sys, json, time
import numpy as np
from benchmarks import baselines as bl
from benchmarks.datasets import load_dataset
from benchmarks.dims import embedding_params

data = load_dataset("movielens", None, 32)
f = data.features
print({s.name: s.vocabulary_size for s in f}, flush=True)
small = ["age", "gender", "occupation", "genres", "release_year"]
def cfg(u, m, z, sm):
    d = {"user_id": u, "movie_id": m, "zip_code": z}
    d.update({n: sm for n in small}); return d
configs = {
    "uni8": cfg(8, 8, 8, 8),
    "hs": {"user_id": 8, "movie_id": 9, "age": 3, "gender": 2, "occupation": 3, "zip_code": 7, "genres": 3, "release_year": 3},
    "u8m9z7_s8": cfg(8, 9, 7, 8),
    "u8m8z8_s3": cfg(8, 8, 8, 3),
    "u9m9z9_s3": cfg(9, 9, 9, 3),
    "u8m8z8_s8g3": {**cfg(8, 8, 8, 8), "gender": 3},
}
for k, d in configs.items():
    print(k, embedding_params(f, d), flush=True)
seeds = [int(s) for s in sys.argv[1].split(",")]
res = {k: [] for k in configs}
protocol = bl.TrainProtocol()
for seed in seeds:
    for k, d in configs.items():
        kept = f.subset(f.names, d)
        model, _ = bl.train_ranker(data.train, kept, protocol, seed)
        auc = bl.evaluate(model, data.test, kept)["auc"]
        res[k].append(auc)
        print(seed, k, round(auc, 4), flush=True)
print("load", os.getloadavg())
for k, v in res.items():
    v = np.array(v)
    print(f"{k:12s} {v.mean():.4f} ± {v.std(ddof=1) if len(v)>1 else 0:.4f}  diff vs hs: {np.round(v - np.array(res['hs']),4)}")
json.dump(res, open(f"/tmp/w15/probe_{sys.argv[1]}.json", "w"))
