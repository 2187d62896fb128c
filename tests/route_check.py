#!/usr/bin/python3
"""route_check.py — an independent numpy implementation of `pika route eval` (always, utility, max_prob,
min_cost, random, oracle, oracle_utility, cascade, Pareto frontier, savings, AIQ, APGR/CPT), compared with
the JSON that pika printed.

usage: route_check.py TABLE.jsonl PIKA.json SPLIT [WEAK,STRONG|-] [CASCADE_ORDER|-] [final|all]
Exit 0 = agree, 1 = disagree (differences printed), 77 = numpy missing.
"""
import json
import math
import sys

try:
    import numpy as np
except ImportError:
    print("numpy missing")
    sys.exit(77)

M64 = (1 << 64) - 1


def splitmix(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def load(path):
    ids, arms, rows = [], [], {}
    split = {}
    for line in open(path):
        if not line.strip():
            continue
        r = json.loads(line)
        i = str(r["id"])
        if i not in split:
            ids.append(i)
            split[i] = r["split"]
        if r["arm"] not in arms:
            arms.append(r["arm"])
        c = r["correct"]
        rows[(i, r["arm"])] = (float(r["p"]), float(c), float(r["cost"]))
    Q, A = len(ids), len(arms)
    P, Y, C = (np.zeros((Q, A)) for _ in range(3))
    for q, i in enumerate(ids):
        for a, m in enumerate(arms):
            P[q, a], Y[q, a], C[q, a] = rows[(i, m)]
    S = np.array([split[i] for i in ids])
    return arms, P, Y, C, S


def first_argmax(U):
    return np.argmax(U, axis=1)  # numpy returns the first maximum: ties -> table order


def score(Y, C, ch):
    q = np.arange(len(ch))
    return Y[q, ch].mean(), C[q, ch].sum(), np.bincount(ch, minlength=Y.shape[1])


def pareto(cost, acc):
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -acc[i], i))
    keep, best = [], -math.inf
    for i in order:
        if acc[i] > best + 1e-12:
            keep.append(i)
            best = acc[i]
    return keep


def hull_value(cost, acc, x):
    """Best accuracy reachable at cost <= x by mixing two points (0 when nothing is that cheap)."""
    best = 0.0
    n = len(cost)
    for i in range(n):
        if cost[i] <= x:
            best = max(best, acc[i])
        for j in range(n):
            if cost[i] <= x <= cost[j] and cost[j] > cost[i]:
                w = (x - cost[i]) / (cost[j] - cost[i])
                best = max(best, (1 - w) * acc[i] + w * acc[j])
    return best


def aiq(cost, acc, lo, hi):
    xs = sorted(set([lo, hi] + [c for c in cost if lo <= c <= hi]))
    area = 0.0
    for a, b in zip(xs[:-1], xs[1:]):
        # the hull is linear between consecutive point costs and jumps (0 -> acc) only at the cheapest
        # point, so evaluate just inside the interval at both ends
        eps = (b - a) * 1e-12
        area += 0.5 * (hull_value(cost, acc, a + eps) + hull_value(cost, acc, b - eps)) * (b - a)
    return area / (hi - lo)


def main():
    table, pj, split = sys.argv[1], sys.argv[2], sys.argv[3]
    pair = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[4] != "-" else None
    corder = sys.argv[5].split(",") if len(sys.argv) > 5 and sys.argv[5] != "-" else None
    pay_all = len(sys.argv) > 6 and sys.argv[6] == "all"
    arms, P, Y, C, S = load(table)
    out = json.load(open(pj))
    A = len(arms)
    train = S == "train"
    mc = C[train].mean(axis=0) if train.any() else C.mean(axis=0)
    lo, hi = mc.min(), mc.max()
    ct = (mc - lo) / (hi - lo) if hi > lo else np.zeros(A)
    sel = S == split if split != "all" else np.ones(len(S), bool)
    P, Y, C = P[sel], Y[sel], C[sel]
    n = len(P)
    lams = np.linspace(0, 1, 50)
    seed = 42
    exp = []
    for a in range(A):
        exp.append(("always", a, None, None, score(Y, C, np.full(n, a))))
    for l in lams:
        exp.append(("utility", None, l, None, score(Y, C, first_argmax(P - l * ct))))
    exp.append(("max_prob", None, None, None, score(Y, C, first_argmax(P))))
    exp.append(("min_cost", None, None, None, score(Y, C, np.full(n, int(np.argmin(ct))))))
    st, ch = seed, []
    for _ in range(n):
        st, z = splitmix(st)
        ch.append(z % A)
    exp.append(("random", None, None, None, score(Y, C, np.array(ch, dtype=int))))
    order = sorted(range(A), key=lambda a: (ct[a], a))
    orc = []
    for q in range(n):
        c = order[0]
        for a in order:
            if Y[q, a] >= 0.5:
                c = a
                break
        orc.append(c)
    exp.append(("oracle", None, None, None, score(Y, C, np.array(orc))))
    for l in lams:
        exp.append(("oracle_utility", None, l, None, score(Y, C, first_argmax(Y - l * ct))))
    if A >= 2:
        cord = [arms.index(a) for a in corder] if corder else order
        for th in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]:
            ch, paid = [], 0.0
            for q in range(n):
                j = 0
                while j < len(cord) - 1 and P[q, cord[j]] <= th:
                    j += 1
                ch.append(cord[j])
                paid += sum(C[q, cord[i]] for i in range(j + 1)) if pay_all else C[q, cord[j]]
            acc, _, calls = score(Y, C, np.array(ch))
            exp.append(("cascade", None, None, th, (acc, paid, calls)))
    bad = []

    def close(x, y, what):
        if x is None or y is None:
            if x is not y:
                bad.append(f"{what}: pika {x} vs check {y}")
            return
        if abs(x - y) > 1e-9 * max(1.0, abs(y)):
            bad.append(f"{what}: pika {x} vs check {y}")

    if corder and out["cascade_order"] != corder:
        bad.append(f"cascade order {out['cascade_order']} vs {corder}")
    pts = out["points"]
    if len(pts) != len(exp):
        bad.append(f"{len(pts)} points vs {len(exp)}")
    for k, (pt, e) in enumerate(zip(pts, exp)):
        pol, a, l, th, (acc, cost, calls) = e
        w = f"point {k} ({pol})"
        if pt["policy"] != pol:
            bad.append(f"{w}: policy {pt['policy']}")
            continue
        if a is not None and pt["arm"] != arms[a]:
            bad.append(f"{w}: arm {pt['arm']}")
        if l is not None:
            close(pt["lambda"], float(l), w + " lambda")
        if th is not None:
            close(pt["thresholds"][0], th, w + " threshold")
        close(pt["accuracy"], float(acc), w + " accuracy")
        close(pt["cost"], float(cost), w + " cost")
        for i, m in enumerate(arms):
            if pt["calls"][m] != int(calls[i]):
                bad.append(f"{w}: calls[{m}] {pt['calls'][m]} vs {calls[i]}")
    # best single: highest accuracy, cheapest on ties
    singles = [(e[4][0], e[4][1], e[1]) for e in exp[:A]]
    bi = 0
    for i in range(1, A):
        if singles[i][0] > singles[bi][0] + 1e-12 or (abs(singles[i][0] - singles[bi][0]) <= 1e-12 and singles[i][1] < singles[bi][1]):
            bi = i
    if out["best_single"]["arm"] != arms[bi]:
        bad.append(f"best_single {out['best_single']['arm']} vs {arms[bi]}")
    bacc, bcost = singles[bi][0], singles[bi][1]
    ucost = [float(e[4][1]) for e in exp[A:A + 50]]
    uacc = [float(e[4][0]) for e in exp[A:A + 50]]
    fr = pareto(ucost, uacc)
    got = [(p["cost"], p["accuracy"]) for p in out["pareto"]]
    if len(got) != len(fr):
        bad.append(f"pareto has {len(got)} points vs {len(fr)}")
    else:
        for (gc, ga), i in zip(got, fr):
            close(gc, ucost[i], "pareto cost")
            close(ga, uacc[i], "pareto accuracy")

    def saving(frac):
        ok = [i for i in range(50) if uacc[i] >= frac * bacc - 1e-12]
        if not ok or bcost <= 0:
            return None
        i = min(ok, key=lambda i: (ucost[i], i))
        return 1 - ucost[i] / bcost

    close(out["savings"]["at_best_accuracy"], saving(1.0), "savings")
    close(out["savings"]["at_99pct"], saving(0.99), "savings at 99%")
    zc = [float(e[4][1]) for e in exp[:A]]
    za = [float(e[4][0]) for e in exp[:A]]
    lo_c, hi_c = min(zc + ucost), max(zc + ucost)
    if hi_c > lo_c:
        close(out["aiq"]["utility"], aiq(ucost, uacc, lo_c, hi_c), "AIQ utility")
        close(out["aiq"]["zero_router"], aiq(zc, za, lo_c, hi_c), "AIQ zero router")
    if pair:
        w, s = arms.index(pair[0]), arms.index(pair[1])
        rw, rs = Y[:, w].mean(), Y[:, s].mean()
        ordq = sorted(range(n), key=lambda q: (P[q, w], q))
        r = [rw]
        cur = Y[:, w].sum()
        for q in ordq:
            cur += Y[q, s] - Y[q, w]
            r.append(cur / n)
        pgr = [(x - rw) / (rs - rw) for x in r]
        ap = np.mean([pgr[min(n, math.ceil(i / 10 * n - 1e-9))] for i in range(1, 11)])
        c50 = next(m / n for m in range(n + 1) if pgr[m] >= 0.5 - 1e-12)
        c80 = next(m / n for m in range(n + 1) if pgr[m] >= 0.8 - 1e-12)
        close(out["pair"]["apgr"], float(ap), "APGR")
        close(out["pair"]["cpt50"], c50, "CPT50")
        close(out["pair"]["cpt80"], c80, "CPT80")
    if bad:
        print("\n".join(bad[:40]))
        sys.exit(1)
    print(f"agree: {len(exp)} points, {len(fr)} Pareto points, n={n}")


main()
