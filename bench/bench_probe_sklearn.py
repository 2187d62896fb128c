#!/usr/bin/python3
"""bench_probe_sklearn.py — the same (layer x position x alpha x fold) sweep as bench/bench_probe.c,
done the standard scikit-learn way: for each (layer, position): StratifiedKFold(5, shuffle, seed 42)
(KFold for a continuous target), for each alpha a Pipeline(StandardScaler, Ridge(alpha) or
LogisticRegression(C=1/alpha, lbfgs, max_iter=1000)) fit on the fold, scored by AUROC / Spearman.

  bench_probe_sklearn.py DIR --task binary|continuous [--max-configs K] [--start-layer S] [--start-pos Q]

DIR is a store written by bench_probe (layer_XX.npy float16 [n, P, d] + y_<task>.npy). Only the
first K (layer, position) pairs are timed (from layer index S, position index Q within that first
layer); the full-sweep time is extrapolated linearly. Run it
under OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 (lowest CPU time: multithreaded BLAS only adds spin
time on these skinny products) and compare cpu_seconds (process CPU time of the timed sweep, all
threads; imports excluded) with bench_probe's cpu_seconds.
"""
import json
import os
import sys
import time

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ALPHAS = [1, 10, 100, 1000, 10000]


def main():
    d = sys.argv[1]
    task = sys.argv[sys.argv.index("--task") + 1] if "--task" in sys.argv else "binary"
    kmax = int(sys.argv[sys.argv.index("--max-configs") + 1]) if "--max-configs" in sys.argv else 0
    start = int(sys.argv[sys.argv.index("--start-layer") + 1]) if "--start-layer" in sys.argv else 0
    spos = int(sys.argv[sys.argv.index("--start-pos") + 1]) if "--start-pos" in sys.argv else 0
    meta = json.load(open(os.path.join(d, "meta.json")))
    L, P = meta["layers"], meta["positions"]
    y = np.load(os.path.join(d, f"y_{task}.npy")).astype(np.float64)
    total = len(L) * len(P)
    k = kmax if 0 < kmax < total else total
    cv = (StratifiedKFold(5, shuffle=True, random_state=42) if task == "binary" else KFold(5, shuffle=True, random_state=42))
    t0, c0 = time.time(), time.process_time()
    done, best = 0, (-1, None)
    for li, layer in enumerate(L):
        if li < start:
            continue
        arr = np.load(os.path.join(d, f"layer_{layer:02d}.npy"), mmap_mode="r")
        for pi, pos in enumerate(P):
            if done >= k:
                break
            if li == start and pi < spos:
                continue
            X = np.asarray(arr[:, pi, :], dtype=np.float64)
            for a in ALPHAS:
                scores = []
                for tr, te in cv.split(X, y if task == "binary" else None):
                    if task == "binary":
                        m = make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / a, max_iter=1000))
                        m.fit(X[tr], y[tr])
                        scores.append(roc_auc_score(y[te], m.decision_function(X[te])))
                    else:
                        m = make_pipeline(StandardScaler(), Ridge(alpha=a))
                        m.fit(X[tr], y[tr])
                        scores.append(spearmanr(m.predict(X[te]), y[te]).correlation)
                s = float(np.mean(scores))
                if s > best[0]:
                    best = (s, (layer, pos, a))
            done += 1
        if done >= k:
            break
    t, ct = time.time() - t0, time.process_time() - c0
    print(f"bench_probe_sklearn task={task} n={len(y)} configs={done} (of {total}) seconds={t:.2f} cpu_seconds={ct:.2f} "
          f"per_config={t / done:.3f} full_sweep_est={t / done * total:.1f} best={best}")


if __name__ == "__main__":
    main()
