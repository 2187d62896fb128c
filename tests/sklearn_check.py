#!/usr/bin/python3
"""sklearn_check.py DIR — compare pika's metrics and fits (written by tests/test_metrics.c into DIR)
with scikit-learn / scipy. Exit 0 = agree, 1 = disagree, 77 = numpy/sklearn missing (skip).

DIR holds: y.npy, s.npy (scores with ties), p.npy (probabilities), yc.npy (continuous target),
Xtr.npy, ytr.npy, Xte.npy, yte.npy (binary fit data), ctr.npy, cte.npy (continuous targets for ridge),
pika.json {"auroc", "spearman", "pearson", "brier", "ece", "alpha", "logit_pred": [...], "ridge_pred": [...]}.
"""
import json
import os
import sys

try:
    import numpy as np
    from scipy.stats import spearmanr, pearsonr
    from sklearn.calibration import calibration_curve
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
except Exception as e:  # pragma: no cover
    print("sklearn_check: missing dependency:", e)
    sys.exit(77)


def ece_sklearn(y, p, n_bins=10):
    # binning of calibration_curve(strategy="uniform"): bin = searchsorted(edges[1:-1], p) (left side)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    counts = np.bincount(ids, minlength=n_bins)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(y) * np.abs(prob_true - prob_pred)))


def main():
    d = sys.argv[1]
    L = lambda n: np.load(os.path.join(d, n))
    got = json.load(open(os.path.join(d, "pika.json")))
    y, s, p, yc = L("y.npy"), L("s.npy"), L("p.npy"), L("yc.npy")
    ref = {
        "auroc": roc_auc_score(y, s),
        "spearman": spearmanr(s, yc).correlation,
        "pearson": pearsonr(s, yc)[0],
        "brier": brier_score_loss(y, p),
        "ece": ece_sklearn(y, p),
    }
    bad = 0
    for k, v in ref.items():
        diff = abs(float(v) - float(got[k]))
        ok = diff <= 1e-9
        bad += not ok
        print(f"{k:9s} sklearn={v:.15f} pika={got[k]:.15f} diff={diff:.2e} {'ok' if ok else 'FAIL'}")
    Xtr, ytr, Xte, yte, ctr, cte = L("Xtr.npy"), L("ytr.npy"), L("Xte.npy"), L("yte.npy"), L("ctr.npy"), L("cte.npy")
    for alpha, lp, rp in zip(got["alphas"], got["logit_pred"], got["ridge_pred"]):
        lr = make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / alpha, max_iter=5000, tol=1e-8))
        lr.fit(Xtr, ytr)
        a_sk = roc_auc_score(yte, lr.decision_function(Xte))
        a_pk = roc_auc_score(yte, np.array(lp))
        rg = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
        rg.fit(Xtr, ctr)
        r_sk_pred = rg.predict(Xte)
        r_sk = roc_auc_score(yte, r_sk_pred)
        r_pk = roc_auc_score(yte, np.array(rp))
        maxdiff = float(np.max(np.abs(r_sk_pred - np.array(rp))))
        ok = abs(a_sk - a_pk) < 0.002 and abs(r_sk - r_pk) < 0.002 and maxdiff < 1e-6
        bad += not ok
        print(f"alpha={alpha:g}: logistic AUROC sklearn={a_sk:.6f} pika={a_pk:.6f}; ridge AUROC sklearn={r_sk:.6f} "
              f"pika={r_pk:.6f}, max |pred diff|={maxdiff:.2e} {'ok' if ok else 'FAIL'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
